// CUDA kernels of the Pillow-exact augment primitives: one generic kernel per kind, the per-primitive
// formulas from ops/kernel_math.h (the same functions the CPU kernels call). The build uses
// --use_fast_math and FMA contraction for the other kernels, so every rounding-relevant operation
// here goes through kernel_math's explicitly rounded helpers (__fmul_rn, __dadd_rn, ...), which the
// compiler may neither contract nor approximate.
#include <algorithm>
#include <string>

#include "ops/augment.h"
#include "ops/cuda/cuda_utils.cuh"
#include "ops/kernel_math.h"

namespace hubcls {
namespace {

struct Img {
  const uint8_t* in;
  uint8_t* out;
  int64_t h, w, c, in_stride, oh, ow, out_stride;
  double p[6];
};

__device__ __forceinline__ math::AugImage src_of(const Img& im) { return {im.in, im.h, im.w, im.c, im.in_stride}; }

// per image x channel histograms (equalize, autocontrast) and luma sums (contrast)
__global__ void stats_kernel(const Img* imgs, unsigned int* hist, unsigned long long* luma_sum, int want_hist) {
  const Img im = imgs[blockIdx.y];
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= im.h * im.w) return;
  const uint8_t* px = im.in + (k / im.w) * im.in_stride + (k % im.w) * im.c;
  if (want_hist) {
    for (int64_t ch = 0; ch < im.c; ++ch) atomicAdd(&hist[(blockIdx.y * 3 + ch) * 256 + px[ch]], 1u);
  } else {
    atomicAdd(&luma_sum[blockIdx.y], static_cast<unsigned long long>(math::grey_of(px, im.c)));
  }
}

// one thread per (image, channel): the LUT of the LUT-kind primitives (math::make_lut)
__global__ void lut_kernel(const Img* imgs, AugOp op, const unsigned int* hist, uint8_t* luts, int n) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n * 3) return;
  const int i = t / 3, ch = t % 3;
  if (ch >= imgs[i].c) return;
  math::make_lut(op, imgs[i].p[0], hist + static_cast<int64_t>(t) * 256, luts + static_cast<int64_t>(t) * 256);
}

__global__ void apply_lut_kernel(const Img* imgs, const uint8_t* luts) {
  const Img im = imgs[blockIdx.y];
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= im.h * im.w) return;
  const int64_t y = k / im.w, x = k % im.w;
  const uint8_t* s = im.in + y * im.in_stride + x * im.c;
  uint8_t* d = im.out + y * im.out_stride + x * im.c;
  for (int64_t ch = 0; ch < im.c; ++ch) d[ch] = luts[(blockIdx.y * 3 + ch) * 256 + s[ch]];
}

// one thread per pixel: blend(degenerate, pixel, factor) of the blend-kind primitives
__global__ void blend_kernel(const Img* imgs, AugOp op, const unsigned long long* luma_sum) {
  const Img im = imgs[blockIdx.y];
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= im.h * im.w) return;
  const int64_t y = k / im.w, x = k % im.w, c = im.c;
  const uint8_t* s = im.in + y * im.in_stride + x * c;
  uint8_t* d = im.out + y * im.out_stride + x * c;
  const float a = static_cast<float>(im.p[0]);
  const int mean = aug_kind(op) == AugKind::MeanBlend ? math::mean_luma_of(luma_sum[blockIdx.y], im.h * im.w) : 0;
  const math::AugImage src = src_of(im);
  for (int64_t ch = 0; ch < c; ++ch) d[ch] = math::blend(math::blend_degenerate(op, src, y, x, ch, mean), s[ch], a);
}

__global__ void affine_kernel(const Img* imgs, Interp interp, const uint8_t* fill) {
  const Img im = imgs[blockIdx.y];
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= im.oh * im.ow) return;
  const int64_t y = k / im.ow, x = k % im.ow, c = im.c;
  uint8_t* d = im.out + y * im.out_stride + x * c;
  const double* a = im.p;
  auto put = [&](int64_t yi, int64_t xi) {
    const uint8_t* s = im.in + yi * im.in_stride + xi * c;
    for (int64_t ch = 0; ch < c; ++ch) d[ch] = s[ch];
  };
  auto put_fill = [&]() {
    for (int64_t ch = 0; ch < c; ++ch) d[ch] = fill[ch];
  };
  if (interp == Interp::Nearest) {
    auto coord = [](double v) -> int64_t { return v < 0.0 ? -1 : static_cast<int64_t>(v); };
    int64_t xi, yi;
    if (a[1] == 0 && a[3] == 0) {  // Pillow accumulates xo += a0 (per column), yo += a4 (per row)
      double xo = __dadd_rn(a[2], __dmul_rn(a[0], 0.5)), yo = __dadd_rn(a[5], __dmul_rn(a[4], 0.5));
      for (int64_t j = 0; j < x; ++j) xo = __dadd_rn(xo, a[0]);
      for (int64_t j = 0; j < y; ++j) yo = __dadd_rn(yo, a[4]);
      xi = coord(xo);
      yi = coord(yo);
    } else {
      const double W = static_cast<double>(im.ow), H = static_cast<double>(im.oh);
      auto fits = [&](double px, double py) {
        return fabs(__dadd_rn(__dadd_rn(__dmul_rn(px, a[0]), __dmul_rn(py, a[1])), a[2])) < 32768.0 &&
               fabs(__dadd_rn(__dadd_rn(__dmul_rn(px, a[3]), __dmul_rn(py, a[4])), a[5])) < 32768.0;
      };
      if (fits(0, 0) && fits(W, H) && fits(0, H) && fits(W, 0)) {
        auto fix = [](double v) { return static_cast<int32_t>(floor(__dadd_rn(__dmul_rn(v, 65536.0), 0.5))); };
        const int32_t a0 = fix(a[0]), a1 = fix(a[1]), a3 = fix(a[3]), a4 = fix(a[4]);
        const int32_t a2 = fix(__dadd_rn(__dadd_rn(a[2], __dmul_rn(a[0], 0.5)), __dmul_rn(a[1], 0.5)));
        const int32_t a5 = fix(__dadd_rn(__dadd_rn(a[5], __dmul_rn(a[3], 0.5)), __dmul_rn(a[4], 0.5)));
        // Pillow's accumulation in int32 equals the closed form modulo 2^32
        const uint32_t xx = static_cast<uint32_t>(a2) + static_cast<uint32_t>(y) * static_cast<uint32_t>(a1) +
                            static_cast<uint32_t>(x) * static_cast<uint32_t>(a0);
        const uint32_t yy = static_cast<uint32_t>(a5) + static_cast<uint32_t>(y) * static_cast<uint32_t>(a4) +
                            static_cast<uint32_t>(x) * static_cast<uint32_t>(a3);
        xi = static_cast<int32_t>(xx) >> 16;
        yi = static_cast<int32_t>(yy) >> 16;
      } else {
        double xo = __dadd_rn(__dadd_rn(a[2], __dmul_rn(a[1], 0.5)), __dmul_rn(a[0], 0.5));
        double yo = __dadd_rn(__dadd_rn(a[5], __dmul_rn(a[4], 0.5)), __dmul_rn(a[3], 0.5));
        for (int64_t j = 0; j < y; ++j) {
          xo = __dadd_rn(xo, a[1]);
          yo = __dadd_rn(yo, a[4]);
        }
        for (int64_t j = 0; j < x; ++j) {
          xo = __dadd_rn(xo, a[0]);
          yo = __dadd_rn(yo, a[3]);
        }
        xi = coord(xo);
        yi = coord(yo);
      }
    }
    if (xi >= 0 && xi < im.w && yi >= 0 && yi < im.h) put(yi, xi);
    else put_fill();
    return;
  }
  const double xc = static_cast<double>(x) + 0.5, yc = static_cast<double>(y) + 0.5;
  const double xin = __dadd_rn(__dadd_rn(__dmul_rn(a[0], xc), __dmul_rn(a[1], yc)), a[2]);
  const double yin = __dadd_rn(__dadd_rn(__dmul_rn(a[3], xc), __dmul_rn(a[4], yc)), a[5]);
  if (xin < 0.0 || xin >= im.w || yin < 0.0 || yin >= im.h) {
    put_fill();
    return;
  }
  const math::AugImage src = src_of(im);
  const int filter = interp == Interp::Bilinear ? 1 : 2;
  for (int64_t ch = 0; ch < c; ++ch) d[ch] = math::affine_filtered(src, xin, yin, filter, ch);
}

}  // namespace

void augment_cuda(AugOp op, const std::vector<ImageView>& in, const std::vector<MutableImageView>& out,
                  const double* params, Interp interp, const uint8_t* fill, int device, uintptr_t stream_handle) {
  const int64_t n = static_cast<int64_t>(in.size());
  if (static_cast<int64_t>(out.size()) != n) throw ArgumentError("augment: need one output per input image");
  if (n == 0) return;
  if (n > 65535) throw ArgumentError("augment: at most 65535 images per CUDA launch");
  if (!is_valid(op)) throw ArgumentError("augment: unknown op");
  const AugKind kind = aug_kind(op);
  if (kind == AugKind::Affine && interp != Interp::Nearest && interp != Interp::Bilinear && interp != Interp::Bicubic)
    throw ArgumentError("augment: bad affine interpolation");
  std::vector<Img> imgs(static_cast<size_t>(n));
  int64_t max_in = 0, max_out = 0;
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& s = in[static_cast<size_t>(i)];
    const MutableImageView& o = out[static_cast<size_t>(i)];
    if (!s.data || s.h <= 0 || s.w <= 0 || (s.c != 1 && s.c != 3))
      throw ArgumentError("augment: bad device image " + std::to_string(i));
    if (!o.data || o.c != s.c || (kind != AugKind::Affine && (o.h != s.h || o.w != s.w)))
      throw ArgumentError("augment: bad device output " + std::to_string(i));
    if (op == AugOp::Posterize && (params[6 * i] < 1 || params[6 * i] > 8))
      throw ArgumentError("augment: posterize bits must be in [1, 8]");
    Img& m = imgs[static_cast<size_t>(i)];
    m.in = s.data;
    m.out = o.data;
    m.h = s.h;
    m.w = s.w;
    m.c = s.c;
    m.in_stride = s.row_stride;
    m.oh = o.h;
    m.ow = o.w;
    m.out_stride = o.row_stride;
    for (int k = 0; k < 6; ++k) m.p[k] = params[6 * i + k];
    max_in = std::max(max_in, s.h * s.w);
    max_out = std::max(max_out, o.h * o.w);
  }
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda::Scratch s(stream);
  const Img* d_imgs = s.upload(imgs.data(), imgs.size());
  const int threads = 256;
  const dim3 grid_in(static_cast<unsigned>((max_in + threads - 1) / threads), static_cast<unsigned>(n));
  switch (kind) {
    case AugKind::Lut:
    case AugKind::HistogramLut: {
      unsigned int* hist = s.upload<unsigned int>(nullptr, static_cast<size_t>(n * 3 * 256));
      cuda::check(cudaMemsetAsync(hist, 0, static_cast<size_t>(n * 3 * 256) * sizeof(unsigned int), stream),
                  "cudaMemsetAsync");
      if (kind == AugKind::HistogramLut) stats_kernel<<<grid_in, threads, 0, stream>>>(d_imgs, hist, nullptr, 1);
      uint8_t* luts = s.upload<uint8_t>(nullptr, static_cast<size_t>(n * 3 * 256));
      lut_kernel<<<static_cast<unsigned>((n * 3 + 63) / 64), 64, 0, stream>>>(d_imgs, op, hist, luts,
                                                                              static_cast<int>(n));
      apply_lut_kernel<<<grid_in, threads, 0, stream>>>(d_imgs, luts);
      break;
    }
    case AugKind::Blend:
    case AugKind::MeanBlend: {
      unsigned long long* sums = s.upload<unsigned long long>(nullptr, static_cast<size_t>(n));
      if (kind == AugKind::MeanBlend) {
        cuda::check(cudaMemsetAsync(sums, 0, static_cast<size_t>(n) * sizeof(unsigned long long), stream),
                    "cudaMemsetAsync");
        stats_kernel<<<grid_in, threads, 0, stream>>>(d_imgs, nullptr, sums, 0);
      }
      blend_kernel<<<grid_in, threads, 0, stream>>>(d_imgs, op, sums);
      break;
    }
    case AugKind::Affine: {
      const uint8_t* d_fill = s.upload(fill, 3);  // c <= 3
      const dim3 grid_out(static_cast<unsigned>((max_out + threads - 1) / threads), static_cast<unsigned>(n));
      affine_kernel<<<grid_out, threads, 0, stream>>>(d_imgs, interp, d_fill);
      break;
    }
  }
  cuda::check_launch("augment kernel");
}

}  // namespace hubcls
