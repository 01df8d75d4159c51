// CUDA kernel of resize_crop_normalize: one thread per output pixel (all channels) of a
// variable-size batch in one launch (a table of per-image descriptors). The taps of each axis are
// computed on the fly by math::AxisMap (ops/kernel_math.h), the formulas the CPU kernel's tables
// come from (cv2 / Pillow conventions, border replicate), then accumulated vertical-then-horizontal.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ops/cuda/cuda_utils.cuh"
#include "ops/kernel_math.h"
#include "ops/resize_crop_normalize.h"

namespace hubcls {
namespace {

constexpr int MAXT = kCudaMaxTaps;

struct Params {
  int64_t out_h, out_w;
  float a[3], b[3];
  Interp interp;
  bool antialias, nchw, swap_rb;
};

// Taps (index clamped into the image, weight) of output d along one axis; returns the count (at
// most MT: the launcher picks MT >= the taps any image of the batch needs).
template <int MT>
__device__ int axis_taps(const math::AxisMap& ax, int64_t d, int* idx, float* w) {
  double pil_x = 0.0;
  if (ax.interp == Interp::Nearest && ax.antialias) {  // Pillow accumulates the position
    const double step = ax.pil_nearest_step();
    pil_x = ax.pil_nearest_first();
    for (int64_t k = 0; k < d; ++k) pil_x += step;
  }
  int n = 0;
  ax.taps(d, pil_x, [&](int64_t i, double wt) {
    if (n < MT) {
      idx[n] = static_cast<int>(math::clamp_index(i, ax.in_size));
      w[n] = static_cast<float>(wt);
      ++n;
    }
  });
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
  const bool area_up = !p.antialias && p.interp == Interp::Area && (im.box[2] < W || im.box[3] < H);
  int iy[MT], ix[MT];
  float wy[MT], wx[MT];
  const math::AxisMap ay(im.h, im.box[1], im.box[3], H, p.interp, p.antialias, area_up);
  const math::AxisMap ax(im.w, im.box[0], im.box[2], W, p.interp, p.antialias, area_up);
  const int ny = axis_taps<MT>(ay, y, iy, wy);
  const int64_t sxo = im.flip ? W - 1 - x : x;  // output column x shows source column of sxo
  const int nx = axis_taps<MT>(ax, sxo, ix, wx);
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
  return math::AxisMap(1, 0.0, box_len, out_size, interp, antialias, false).max_taps();
}

void resize_crop_normalize_cuda(const std::vector<DeviceImage>& images, void* out, const RCNParams& rp, int device,
                                uintptr_t stream_handle) {
  const int64_t n = static_cast<int64_t>(images.size());
  if (n == 0) return;
  check_params(rp);
  std::vector<DeviceImage> imgs(images);
  for (int64_t i = 0; i < n; ++i) {
    DeviceImage& im = imgs[static_cast<size_t>(i)];
    if (!im.data || im.h <= 0 || im.w <= 0 || (im.c != 1 && im.c != 3 && im.c != 4) || im.row_stride < im.w * im.c)
      throw ArgumentError("resize_crop_normalize: bad device image " + std::to_string(i));
    double* b = im.box;
    check_box(b, im.h, im.w, i);
    clamp_box(b, im.h, im.w, b);  // the tolerated < 1e-3 px overshoot, as the CPU kernel does
    if (cuda_taps_needed(b[2], rp.out_w, rp.interp, rp.antialias) > kCudaMaxTaps ||
        cuda_taps_needed(b[3], rp.out_h, rp.interp, rp.antialias) > kCudaMaxTaps)
      throw ArgumentError("resize_crop_normalize: downscale factor of image " + std::to_string(i) +
                          " is too large for the CUDA kernel's " + std::to_string(kCudaMaxTaps) +
                          " taps; use antialias=False or a smaller box");
  }
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda::Scratch scratch(stream);
  const DeviceImage* d_imgs = scratch.upload(imgs.data(), imgs.size());
  Params p;
  p.out_h = rp.out_h;
  p.out_w = rp.out_w;
  normalize_coeffs(rp, p.a, p.b);
  p.interp = rp.interp;
  p.antialias = rp.antialias;
  p.nchw = rp.nchw;
  p.swap_rb = rp.swap_rb;
  const int threads = 256;
  const int64_t pixels = rp.out_h * rp.out_w;
  if (n > 65535) throw ArgumentError("resize_crop_normalize: at most 65535 images per CUDA launch");
  dim3 grid(static_cast<unsigned>((pixels + threads - 1) / threads), static_cast<unsigned>(n));
  int need = 1;
  for (const DeviceImage& im : imgs)
    need = std::max({need, cuda_taps_needed(im.box[2], rp.out_w, rp.interp, rp.antialias),
                     cuda_taps_needed(im.box[3], rp.out_h, rp.interp, rp.antialias)});
  auto launch = [&](auto tag) {
    constexpr int MT = decltype(tag)::value;
    switch (rp.dtype) {
      case OutDType::Float32:
        rcn_kernel<float, MT><<<grid, threads, 0, stream>>>(d_imgs, static_cast<float*>(out), p);
        break;
      case OutDType::Float16:
        rcn_kernel<__half, MT><<<grid, threads, 0, stream>>>(d_imgs, static_cast<__half*>(out), p);
        break;
      case OutDType::UInt8:
        rcn_kernel<uint8_t, MT><<<grid, threads, 0, stream>>>(d_imgs, static_cast<uint8_t*>(out), p);
        break;
    }
  };
  if (need <= 4) launch(std::integral_constant<int, 4>{});
  else if (need <= 8) launch(std::integral_constant<int, 8>{});
  else launch(std::integral_constant<int, MAXT>{});
  cuda::check_launch("resize_crop_normalize kernel");
}

}  // namespace hubcls
