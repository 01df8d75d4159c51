// CUDA kernels of the Pillow-exact augment primitives (same arithmetic as csrc/ops/cpu/augment.cpp).
// The build uses --use_fast_math and FMA contraction for the other kernels, so every rounding-
// relevant operation here is spelled with an explicitly rounded intrinsic (__fmul_rn, __dadd_rn, ...)
// that the compiler may neither contract nor approximate.
#include <algorithm>
#include <string>

#include "ops/augment.h"
#include "ops/cuda/cuda_utils.cuh"

namespace hubcls {
namespace {

struct Img {
  const uint8_t* in;
  uint8_t* out;
  int64_t h, w, c, in_stride, oh, ow, out_stride;
  double p[6];
};

__device__ __forceinline__ uint8_t blend_dev(int deg, int img, float alpha) {
  const float t = __fadd_rn(static_cast<float>(deg), __fmul_rn(alpha, static_cast<float>(img - deg)));
  if (alpha >= 0.f && alpha <= 1.f) return static_cast<uint8_t>(t);
  if (t <= 0.f) return 0;
  if (t >= 255.f) return 255;
  return static_cast<uint8_t>(t);
}

__device__ __forceinline__ int luma_dev(const uint8_t* p) {
  return (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16;
}

// per image x channel histograms (equalize, autocontrast) and luma sums (contrast)
__global__ void stats_kernel(const Img* imgs, unsigned int* hist, unsigned long long* luma_sum, int want_hist) {
  const Img im = imgs[blockIdx.y];
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= im.h * im.w) return;
  const uint8_t* px = im.in + (k / im.w) * im.in_stride + (k % im.w) * im.c;
  if (want_hist) {
    for (int64_t ch = 0; ch < im.c; ++ch) atomicAdd(&hist[(blockIdx.y * 3 + ch) * 256 + px[ch]], 1u);
  } else {
    atomicAdd(&luma_sum[blockIdx.y], static_cast<unsigned long long>(im.c >= 3 ? luma_dev(px) : px[0]));
  }
}

// one thread per (image, channel): the LUT of the point ops, as in the CPU point_op
__global__ void lut_kernel(const Img* imgs, int op, const unsigned int* hist, uint8_t* luts, int n) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n * 3) return;
  const int i = t / 3, ch = t % 3;
  const Img im = imgs[i];
  if (ch >= im.c) return;
  uint8_t* l = luts + static_cast<int64_t>(t) * 256;
  for (int v = 0; v < 256; ++v) l[v] = static_cast<uint8_t>(v);
  const double p = im.p[0];
  const unsigned int* hh = hist + static_cast<int64_t>(t) * 256;
  if (op == static_cast<int>(AugOp::Invert)) {
    for (int v = 0; v < 256; ++v) l[v] = static_cast<uint8_t>(255 - v);
  } else if (op == static_cast<int>(AugOp::Posterize)) {
    const int mask = ~((1 << (8 - static_cast<int>(p))) - 1);
    for (int v = 0; v < 256; ++v) l[v] = static_cast<uint8_t>(v & mask);
  } else if (op == static_cast<int>(AugOp::Solarize)) {
    for (int v = 0; v < 256; ++v) l[v] = static_cast<uint8_t>(v < p ? v : 255 - v);
  } else if (op == static_cast<int>(AugOp::Equalize)) {
    long long total = 0, last = 0, nonzero = 0;
    for (int v = 0; v < 256; ++v)
      if (hh[v]) { total += hh[v]; last = hh[v]; ++nonzero; }
    if (nonzero <= 1) return;
    const long long step = (total - last) / 255;
    if (!step) return;
    long long acc = step / 2;
    for (int v = 0; v < 256; ++v) {
      const long long q = acc / step;
      l[v] = static_cast<uint8_t>(q > 255 ? 255 : q);
      acc += hh[v];
    }
  } else if (op == static_cast<int>(AugOp::AutoContrast)) {
    int lo = 0, hi = 255;
    while (lo < 256 && !hh[lo]) ++lo;
    while (hi >= 0 && !hh[hi]) --hi;
    if (hi <= lo) return;
    const double scale = __ddiv_rn(255.0, static_cast<double>(hi - lo));
    const double offset = -__dmul_rn(static_cast<double>(lo), scale);
    for (int v = 0; v < 256; ++v) {
      const int q = static_cast<int>(__dadd_rn(__dmul_rn(static_cast<double>(v), scale), offset));
      l[v] = static_cast<uint8_t>(q < 0 ? 0 : (q > 255 ? 255 : q));
    }
  }
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

__global__ void enhance_kernel(const Img* imgs, int op, const unsigned long long* luma_sum, float k1, float k5) {
  const Img im = imgs[blockIdx.y];
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= im.h * im.w) return;
  const int64_t y = k / im.w, x = k % im.w, c = im.c;
  const uint8_t* r = im.in + y * im.in_stride;
  const uint8_t* s = r + x * c;
  uint8_t* d = im.out + y * im.out_stride + x * c;
  const float a = static_cast<float>(im.p[0]);
  if (op == static_cast<int>(AugOp::Brightness) || op == static_cast<int>(AugOp::Contrast)) {
    int deg = 0;
    if (op == static_cast<int>(AugOp::Contrast))
      deg = static_cast<int>(__dadd_rn(__ddiv_rn(static_cast<double>(luma_sum[blockIdx.y]), static_cast<double>(im.h * im.w)), 0.5));
    for (int64_t ch = 0; ch < c; ++ch) d[ch] = blend_dev(deg, s[ch], a);
  } else if (op == static_cast<int>(AugOp::Color)) {
    const int g = c >= 3 ? luma_dev(s) : s[0];
    for (int64_t ch = 0; ch < c; ++ch) d[ch] = blend_dev(g, s[ch], a);
  } else {  // Sharpness
    const bool border = y == 0 || y == im.h - 1 || x == 0 || x == im.w - 1 || im.w < 3 || im.h < 3;
    for (int64_t ch = 0; ch < c; ++ch) {
      int deg;
      if (border) {
        deg = s[ch];
      } else {
        const uint8_t* up = r - im.in_stride;
        const uint8_t* dn = r + im.in_stride;
        const int64_t i = x * c + ch;
        auto row = [&](const uint8_t* q, float wl, float wm, float wr) {
          return __fadd_rn(__fadd_rn(__fmul_rn(static_cast<float>(q[i - c]), wl), __fmul_rn(static_cast<float>(q[i]), wm)),
                           __fmul_rn(static_cast<float>(q[i + c]), wr));
        };
        float ss = 0.5f;
        ss = __fadd_rn(ss, row(dn, k1, k1, k1));
        ss = __fadd_rn(ss, row(r, k1, k5, k1));
        ss = __fadd_rn(ss, row(up, k1, k1, k1));
        deg = ss <= 0.f ? 0 : (ss >= 255.f ? 255 : static_cast<int>(ss));
      }
      d[ch] = blend_dev(deg, s[ch], a);
    }
  }
}

__device__ __forceinline__ int64_t xclip_d(int64_t v, int64_t n) { return v < 0 ? 0 : (v < n ? v : n - 1); }
__device__ __forceinline__ double lerp_rn(double p, double q, double t) { return __dadd_rn(p, __dmul_rn(__dsub_rn(q, p), t)); }
__device__ __forceinline__ double cub_rn(double p0, double p1, double p2, double p3, double t) {
  const double q1 = p1, q2 = __dadd_rn(-p0, p2);
  const double q3 = __dsub_rn(__dadd_rn(__dmul_rn(2.0, __dsub_rn(p0, p1)), p2), p3);
  const double q4 = __dadd_rn(__dsub_rn(__dadd_rn(-p0, p1), p2), p3);
  return __dadd_rn(q1, __dmul_rn(t, __dadd_rn(q2, __dmul_rn(t, __dadd_rn(q3, __dmul_rn(t, q4))))));
}

__global__ void affine_kernel(const Img* imgs, int interp, const uint8_t* fill) {
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
  auto put_fill = [&]() { for (int64_t ch = 0; ch < c; ++ch) d[ch] = fill[ch]; };
  if (interp == 0) {
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
        for (int64_t j = 0; j < y; ++j) { xo = __dadd_rn(xo, a[1]); yo = __dadd_rn(yo, a[4]); }
        for (int64_t j = 0; j < x; ++j) { xo = __dadd_rn(xo, a[0]); yo = __dadd_rn(yo, a[3]); }
        xi = coord(xo);
        yi = coord(yo);
      }
    }
    if (xi >= 0 && xi < im.w && yi >= 0 && yi < im.h) put(yi, xi);
    else put_fill();
    return;
  }
  const double xc = static_cast<double>(x) + 0.5, yc = static_cast<double>(y) + 0.5;
  double xin = __dadd_rn(__dadd_rn(__dmul_rn(a[0], xc), __dmul_rn(a[1], yc)), a[2]);
  double yin = __dadd_rn(__dadd_rn(__dmul_rn(a[3], xc), __dmul_rn(a[4], yc)), a[5]);
  if (xin < 0.0 || xin >= im.w || yin < 0.0 || yin >= im.h) { put_fill(); return; }
  xin = __dsub_rn(xin, 0.5);
  yin = __dsub_rn(yin, 0.5);
  const int64_t xf = static_cast<int64_t>(floor(xin)), yf = static_cast<int64_t>(floor(yin));
  const double dx = __dsub_rn(xin, static_cast<double>(xf)), dy = __dsub_rn(yin, static_cast<double>(yf));
  for (int64_t ch = 0; ch < c; ++ch) {
    auto pxv = [&](int64_t yy, int64_t xx) { return static_cast<double>(im.in[yy * im.in_stride + xx * c + ch]); };
    if (interp == 1) {
      const int64_t x0 = xclip_d(xf, im.w), x1 = xclip_d(xf + 1, im.w);
      auto row = [&](int64_t yy) { return lerp_rn(pxv(yy, x0), pxv(yy, x1), dx); };
      double v1 = row(xclip_d(yf, im.h));
      const double v2 = (yf + 1 >= 0 && yf + 1 < im.h) ? row(yf + 1) : v1;
      v1 = lerp_rn(v1, v2, dy);
      d[ch] = static_cast<uint8_t>(v1);
    } else {
      const int64_t xb = xf - 1, yb = yf - 1;
      int64_t xs[4];
      for (int q = 0; q < 4; ++q) xs[q] = xclip_d(xb + q, im.w);
      auto row = [&](int64_t yy) { return cub_rn(pxv(yy, xs[0]), pxv(yy, xs[1]), pxv(yy, xs[2]), pxv(yy, xs[3]), dx); };
      double v[4];
      v[0] = row(xclip_d(yb, im.h));
      for (int q = 1; q < 4; ++q) v[q] = (yb + q >= 0 && yb + q < im.h) ? row(yb + q) : v[q - 1];
      const double v1 = cub_rn(v[0], v[1], v[2], v[3], dy);
      d[ch] = v1 <= 0.0 ? 0 : (v1 >= 255.0 ? 255 : static_cast<uint8_t>(v1));
    }
  }
}

}  // namespace

void augment_cuda(AugOp op, const std::vector<ImageView>& in, const std::vector<MutableImageView>& out,
                  const double* params, int interp, const uint8_t* fill, int device, uintptr_t stream_handle) {
  const int64_t n = static_cast<int64_t>(in.size());
  if (static_cast<int64_t>(out.size()) != n) throw ArgumentError("augment: need one output per input image");
  if (n == 0) return;
  if (n > 65535) throw ArgumentError("augment: at most 65535 images per CUDA launch");
  std::vector<Img> imgs(static_cast<size_t>(n));
  int64_t max_in = 0, max_out = 0;
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& s = in[static_cast<size_t>(i)];
    const MutableImageView& o = out[static_cast<size_t>(i)];
    if (!s.data || s.h <= 0 || s.w <= 0 || (s.c != 1 && s.c != 3)) throw ArgumentError("augment: bad device image " + std::to_string(i));
    if (!o.data || o.c != s.c || (op != AugOp::Affine && (o.h != s.h || o.w != s.w)))
      throw ArgumentError("augment: bad device output " + std::to_string(i));
    if (op == AugOp::Posterize && (params[6 * i] < 1 || params[6 * i] > 8)) throw ArgumentError("augment: posterize bits must be in [1, 8]");
    Img& m = imgs[static_cast<size_t>(i)];
    m.in = s.data; m.out = o.data; m.h = s.h; m.w = s.w; m.c = s.c; m.in_stride = s.row_stride;
    m.oh = o.h; m.ow = o.w; m.out_stride = o.row_stride;
    for (int k = 0; k < 6; ++k) m.p[k] = params[6 * i + k];
    max_in = std::max(max_in, s.h * s.w);
    max_out = std::max(max_out, o.h * o.w);
  }
  if (op == AugOp::Affine && (interp < 0 || interp > 2)) throw ArgumentError("augment: bad affine interpolation");
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda::Scratch s(stream);
  const Img* d_imgs = s.upload(imgs.data(), imgs.size());
  const int threads = 256;
  const dim3 grid_in(static_cast<unsigned>((max_in + threads - 1) / threads), static_cast<unsigned>(n));
  switch (op) {
    case AugOp::Invert: case AugOp::Posterize: case AugOp::Solarize: case AugOp::Equalize: case AugOp::AutoContrast: {
      unsigned int* hist = s.upload<unsigned int>(nullptr, static_cast<size_t>(n * 3 * 256));
      cuda::check(cudaMemsetAsync(hist, 0, static_cast<size_t>(n * 3 * 256) * sizeof(unsigned int), stream), "cudaMemsetAsync");
      if (op == AugOp::Equalize || op == AugOp::AutoContrast) stats_kernel<<<grid_in, threads, 0, stream>>>(d_imgs, hist, nullptr, 1);
      uint8_t* luts = s.upload<uint8_t>(nullptr, static_cast<size_t>(n * 3 * 256));
      lut_kernel<<<static_cast<unsigned>((n * 3 + 63) / 64), 64, 0, stream>>>(d_imgs, static_cast<int>(op), hist, luts, static_cast<int>(n));
      apply_lut_kernel<<<grid_in, threads, 0, stream>>>(d_imgs, luts);
      break;
    }
    case AugOp::Brightness: case AugOp::Contrast: case AugOp::Color: case AugOp::Sharpness: {
      unsigned long long* sums = s.upload<unsigned long long>(nullptr, static_cast<size_t>(n));
      if (op == AugOp::Contrast) {
        cuda::check(cudaMemsetAsync(sums, 0, static_cast<size_t>(n) * sizeof(unsigned long long), stream), "cudaMemsetAsync");
        stats_kernel<<<grid_in, threads, 0, stream>>>(d_imgs, nullptr, sums, 0);
      }
      enhance_kernel<<<grid_in, threads, 0, stream>>>(d_imgs, static_cast<int>(op), sums, 1.f / 13.f, 5.f / 13.f);
      break;
    }
    case AugOp::Affine: {
      const uint8_t* d_fill = s.upload(fill, 3);  // c <= 3
      const dim3 grid_out(static_cast<unsigned>((max_out + threads - 1) / threads), static_cast<unsigned>(n));
      affine_kernel<<<grid_out, threads, 0, stream>>>(d_imgs, interp, d_fill);
      break;
    }
  }
  cuda::check_launch("augment kernel");
}

}  // namespace hubcls
