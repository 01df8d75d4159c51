// CUDA kernel of resize_crop_normalize: one thread per output pixel (all channels) of a
// variable-size batch in one launch (a table of per-image descriptors). The taps of each axis are
// computed on the fly with the same formulas as csrc/ops/cpu/resample.cpp (cv2 / Pillow
// conventions, border replicate), then accumulated vertical-then-horizontal like the CPU kernel.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ops/cuda/cuda_utils.cuh"
#include "ops/resize_crop_normalize.h"

namespace hubcls {
namespace {

constexpr int MAXT = kCudaMaxTaps;

struct Params {
  int64_t out_h, out_w;
  float a[3], b[3];
  int interp;
  bool antialias, nchw, swap_rb;
};

__device__ __forceinline__ double cubic_d(double x, double a) {
  x = fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

__device__ __forceinline__ double pil_filter_d(int interp, double x) {
  if (interp == 3) return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
  if (interp == 1) { x = fabs(x); return x < 1.0 ? 1.0 - x : 0.0; }
  return cubic_d(x, -0.5);
}

__device__ __forceinline__ int64_t clampi(int64_t i, int64_t n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

// Taps (index clamped into [0, in), weight) of output index d along one axis; returns the count
// (at most MT: the launcher picks MT >= the taps any image of the batch needs).
template <int MT>
__device__ int axis_taps(int64_t in, double box0, double len, int64_t out, int64_t d, int interp, bool aa,
                         bool area_up, int* idx, float* w) {
  const double scale = aa ? len / static_cast<double>(out) : 1.0 / (static_cast<double>(out) / len);
  int n = 0;
  if (interp == 0) {
    double src;
    if (aa) {  // Pillow accumulates the position
      const double a0 = ((box0 + len) - box0) / static_cast<double>(out);
      src = box0 + a0 * 0.5;
      for (int64_t k = 0; k < d; ++k) src += a0;
    } else {
      src = box0 + d * scale;
    }
    idx[0] = static_cast<int>(clampi(static_cast<int64_t>(floor(src)), in));
    w[0] = 1.f;
    return 1;
  }
  if (!aa && interp == 3 && area_up) {
    const double pos = box0 + d * scale;
    const int64_t sx = static_cast<int64_t>(floor(pos));
    const double inv = static_cast<double>(out) / len;
    float fx = static_cast<float>((d + 1) - (static_cast<double>(sx) + 1 - box0) * inv);
    fx = fx <= 0 ? 0.f : fx - floorf(fx);
    idx[0] = static_cast<int>(clampi(sx, in)); w[0] = 1.f - fx;
    idx[1] = static_cast<int>(clampi(sx + 1, in)); w[1] = fx;
    return 2;
  }
  if (!aa && interp == 3) {
    const double a = box0 + d * scale, b = a + scale;
    const int64_t i0 = static_cast<int64_t>(floor(a)), i1 = static_cast<int64_t>(ceil(b));
    for (int64_t i = i0; i < i1 && n < MT; ++i) {
      const double ov = fmin(b, i + 1.0) - fmax(a, static_cast<double>(i));
      if (ov > 1e-12) { idx[n] = static_cast<int>(clampi(i, in)); w[n] = static_cast<float>(ov / scale); ++n; }
    }
    return n;
  }
  if (!aa) {
    const float fx = static_cast<float>(box0 + (d + 0.5) * scale - 0.5);
    const int64_t sx = static_cast<int64_t>(floorf(fx));
    const double t = static_cast<double>(fx) - static_cast<double>(sx);
    if (interp == 1) {
      idx[0] = static_cast<int>(clampi(sx, in)); w[0] = static_cast<float>(1.0 - t);
      idx[1] = static_cast<int>(clampi(sx + 1, in)); w[1] = static_cast<float>(t);
      return 2;
    }
    for (int k = -1; k <= 2 && n < MT; ++k) {
      idx[n] = static_cast<int>(clampi(sx + k, in));
      w[n] = static_cast<float>(cubic_d(t - k, -0.75));
      ++n;
    }
    return n;
  }
  const double fs = fmax(scale, 1.0);
  const double support = (interp == 3 ? 0.5 : (interp == 1 ? 1.0 : 2.0)) * fs;
  const double center = box0 + (d + 0.5) * scale;
  const int64_t xmin = max(static_cast<int64_t>(center - support + 0.5), static_cast<int64_t>(0));
  const int64_t xmax = min(static_cast<int64_t>(center + support + 0.5), in);
  double total = 0.0;
  for (int64_t i = xmin; i < xmax; ++i) total += pil_filter_d(interp, (static_cast<double>(i) - center + 0.5) / fs);
  if (xmax <= xmin || total == 0.0) {
    idx[0] = static_cast<int>(clampi(static_cast<int64_t>(floor(center)), in));
    w[0] = 1.f;
    return 1;
  }
  for (int64_t i = xmin; i < xmax && n < MT; ++i) {
    idx[n] = static_cast<int>(i);
    w[n] = static_cast<float>(pil_filter_d(interp, (static_cast<double>(i) - center + 0.5) / fs) / total);
    ++n;
  }
  return n;
}

__device__ __forceinline__ void store(float* o, int64_t i, float v) { o[i] = v; }
__device__ __forceinline__ void store(__half* o, int64_t i, float v) { o[i] = __float2half_rn(v); }
__device__ __forceinline__ void store(uint8_t* o, int64_t i, float v) {
  v = fminf(fmaxf(v, 0.f), 255.f);
  o[i] = static_cast<uint8_t>(static_cast<int>(v + 0.5f));
}

// MT: tap capacity per axis; 4 covers the cv2 modes (2x2 bilinear, 4x4 bicubic) in registers.
template <class OutT, int MT>
__global__ void rcn_kernel(const DeviceImage* imgs, OutT* out, Params p) {
  const int64_t i = blockIdx.y;
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t H = p.out_h, W = p.out_w;
  if (pix >= H * W) return;
  const int64_t y = pix / W, x = pix % W;
  const DeviceImage im = imgs[i];
  const bool area_up = !p.antialias && p.interp == 3 && (im.box[2] < W || im.box[3] < H);
  int iy[MT], ix[MT];
  float wy[MT], wx[MT];
  const int ny = axis_taps<MT>(im.h, im.box[1], im.box[3], H, y, p.interp, p.antialias, area_up, iy, wy);
  const int64_t sxo = im.flip ? W - 1 - x : x;  // output column x shows source column of sxo
  const int nx = axis_taps<MT>(im.w, im.box[0], im.box[2], W, sxo, p.interp, p.antialias, area_up, ix, wx);
  const int C = static_cast<int>(im.c);
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int kx = 0; kx < nx; ++kx) {
    float v[4] = {0.f, 0.f, 0.f, 0.f};
    const uint8_t* col = im.data + static_cast<int64_t>(ix[kx]) * C;
    for (int ky = 0; ky < ny; ++ky) {
      const uint8_t* s = col + static_cast<int64_t>(iy[ky]) * im.row_stride;
      for (int c = 0; c < C && c < 4; ++c) v[c] += wy[ky] * static_cast<float>(s[c]);
    }
    for (int c = 0; c < 4; ++c) acc[c] += wx[kx] * v[c];
  }
  for (int oc = 0; oc < 3; ++oc) {
    const int ic = C == 1 ? 0 : (p.swap_rb ? 2 - oc : oc);
    const float val = acc[ic] * p.a[oc] + p.b[oc];
    const int64_t o = p.nchw ? ((i * 3 + oc) * H + y) * W + x : ((i * H + y) * W + x) * 3 + oc;
    store(out, o, val);
  }
}

}  // namespace

int cuda_taps_needed(double box_len, int64_t out_size, Interp interp, bool antialias) {
  const double scale = box_len / static_cast<double>(out_size);
  if (interp == Interp::Nearest) return 1;
  if (!antialias) return interp == Interp::Area ? static_cast<int>(std::ceil(scale)) + 2 : 4;
  const double support = (interp == Interp::Area ? 0.5 : (interp == Interp::Bilinear ? 1.0 : 2.0)) * std::max(scale, 1.0);
  return static_cast<int>(std::ceil(2 * support)) + 2;
}

void resize_crop_normalize_cuda(const std::vector<DeviceImage>& images, void* out, const RCNParams& rp, int device,
                                uintptr_t stream_handle) {
  const int64_t n = static_cast<int64_t>(images.size());
  if (n == 0) return;
  if (rp.out_h <= 0 || rp.out_w <= 0) throw ArgumentError("resize_crop_normalize: output size must be positive");
  for (int64_t i = 0; i < n; ++i) {
    const DeviceImage& im = images[static_cast<size_t>(i)];
    if (!im.data || im.h <= 0 || im.w <= 0 || (im.c != 1 && im.c != 3 && im.c != 4) || im.row_stride < im.w * im.c)
      throw ArgumentError("resize_crop_normalize: bad device image " + std::to_string(i));
    const double* b = im.box;
    if (!(std::isfinite(b[0]) && std::isfinite(b[1]) && b[2] > 0 && b[3] > 0) || b[0] < -1e-3 || b[1] < -1e-3 ||
        b[0] + b[2] > im.w + 1e-3 || b[1] + b[3] > im.h + 1e-3)
      throw ArgumentError("resize_crop_normalize: box " + std::to_string(i) + " lies outside its image");
    if (cuda_taps_needed(b[2], rp.out_w, rp.interp, rp.antialias) > kCudaMaxTaps ||
        cuda_taps_needed(b[3], rp.out_h, rp.interp, rp.antialias) > kCudaMaxTaps)
      throw ArgumentError("resize_crop_normalize: downscale factor of image " + std::to_string(i) +
                          " is too large for the CUDA kernel's " + std::to_string(kCudaMaxTaps) +
                          " taps; use antialias=False or a smaller box");
  }
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda::Scratch scratch(stream);
  const DeviceImage* d_imgs = scratch.upload(images.data(), images.size());
  Params p;
  p.out_h = rp.out_h; p.out_w = rp.out_w;
  for (int c = 0; c < 3; ++c) {
    if (rp.dtype == OutDType::UInt8) { p.a[c] = 1.f; p.b[c] = 0.f; }
    else { p.a[c] = rp.scale / rp.std[c]; p.b[c] = -rp.mean[c] / rp.std[c]; }
  }
  p.interp = static_cast<int>(rp.interp);
  p.antialias = rp.antialias; p.nchw = rp.nchw; p.swap_rb = rp.swap_rb;
  const int threads = 256;
  const int64_t pixels = rp.out_h * rp.out_w;
  if (n > 65535) throw ArgumentError("resize_crop_normalize: at most 65535 images per CUDA launch");
  dim3 grid(static_cast<unsigned>((pixels + threads - 1) / threads), static_cast<unsigned>(n));
  int need = 1;
  for (const DeviceImage& im : images)
    need = std::max({need, cuda_taps_needed(im.box[2], rp.out_w, rp.interp, rp.antialias),
                     cuda_taps_needed(im.box[3], rp.out_h, rp.interp, rp.antialias)});
  auto launch = [&](auto tag) {
    constexpr int MT = decltype(tag)::value;
    switch (rp.dtype) {
      case OutDType::Float32: rcn_kernel<float, MT><<<grid, threads, 0, stream>>>(d_imgs, static_cast<float*>(out), p); break;
      case OutDType::Float16: rcn_kernel<__half, MT><<<grid, threads, 0, stream>>>(d_imgs, static_cast<__half*>(out), p); break;
      case OutDType::UInt8: rcn_kernel<uint8_t, MT><<<grid, threads, 0, stream>>>(d_imgs, static_cast<uint8_t*>(out), p); break;
    }
  };
  if (need <= 4) launch(std::integral_constant<int, 4>{});
  else if (need <= 8) launch(std::integral_constant<int, 8>{});
  else launch(std::integral_constant<int, MAXT>{});
  cuda::check_launch("resize_crop_normalize kernel");
}

}  // namespace hubcls
