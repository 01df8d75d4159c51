// Formulas shared by the CPU and the CUDA kernels (host + device inline functions): the resampling
// taps of one axis (cv2 and Pillow conventions), the Pillow-exact blend / luma / smoothing / LUT
// arithmetic of the augment primitives, and the filtered sample of an affine transform. Both
// backends call these, so a formula is written once and the two cannot drift apart.
//
// Rounding: the augment formulas must round exactly like Pillow's C code. On the device every
// rounding-relevant operation goes through an explicitly rounded intrinsic (the CUDA build uses
// --use_fast_math and FMA contraction); on the host the translation units that use them are
// compiled with -ffp-contract=off (see CMakeLists.txt), so a * b + c is never fused.
#pragma once
#include <cmath>
#include <cstdint>

#include "ops/augment_ops.h"
#include "ops/resample.h"

#if defined(__CUDACC__)
#define HUBCLS_HD __host__ __device__ __forceinline__
#define HUBCLS_HD_TEMPLATE __host__ __device__
// AxisMap::taps is instantiated with device lambdas on the device and host lambdas on the host;
// this stops nvcc from checking the combinations that are never instantiated.
#define HUBCLS_NO_EXEC_CHECK _Pragma("nv_exec_check_disable")
#else
#define HUBCLS_HD inline
#define HUBCLS_HD_TEMPLATE inline
#define HUBCLS_NO_EXEC_CHECK
#endif

namespace hubcls {
namespace math {

// ---------------------------------------------------------------- explicitly rounded arithmetic

#if defined(__CUDA_ARCH__)
HUBCLS_HD float fmul_rn(float a, float b) { return __fmul_rn(a, b); }
HUBCLS_HD float fadd_rn(float a, float b) { return __fadd_rn(a, b); }
HUBCLS_HD double dmul_rn(double a, double b) { return __dmul_rn(a, b); }
HUBCLS_HD double dadd_rn(double a, double b) { return __dadd_rn(a, b); }
HUBCLS_HD double dsub_rn(double a, double b) { return __dsub_rn(a, b); }
HUBCLS_HD double ddiv_rn(double a, double b) { return __ddiv_rn(a, b); }
#else
HUBCLS_HD float fmul_rn(float a, float b) { return a * b; }
HUBCLS_HD float fadd_rn(float a, float b) { return a + b; }
HUBCLS_HD double dmul_rn(double a, double b) { return a * b; }
HUBCLS_HD double dadd_rn(double a, double b) { return a + b; }
HUBCLS_HD double dsub_rn(double a, double b) { return a - b; }
HUBCLS_HD double ddiv_rn(double a, double b) { return a / b; }
#endif

HUBCLS_HD int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

// floor / ceil of finite values below 2^62 in magnitude. On the host they avoid a libm call (the
// baseline x86-64 ISA has no rounding instruction, and these run per output of every image).
#if defined(__CUDA_ARCH__)
HUBCLS_HD double floor_d(double x) { return floor(x); }
HUBCLS_HD float floor_f(float x) { return floorf(x); }
HUBCLS_HD double ceil_d(double x) { return ceil(x); }
#else
HUBCLS_HD double floor_d(double x) {
  const double t = static_cast<double>(static_cast<int64_t>(x));
  return t > x ? t - 1.0 : t;
}
HUBCLS_HD float floor_f(float x) {
  const float t = static_cast<float>(static_cast<int64_t>(x));
  return t > x ? t - 1.f : t;
}
HUBCLS_HD double ceil_d(double x) {
  const double t = static_cast<double>(static_cast<int64_t>(x));
  return t < x ? t + 1.0 : t;
}
#endif

// ---------------------------------------------------------------- resampling taps (one axis)

HUBCLS_HD double cubic(double x, double a) {
  x = fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Pillow's filters (src/libImaging/Resample.c): BOX for area, triangle, cubic with a = -0.5.
HUBCLS_HD double pil_filter(Interp interp, double x) {
  switch (interp) {
    case Interp::Area: return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
    case Interp::Bilinear: x = fabs(x); return x < 1.0 ? 1.0 - x : 0.0;
    case Interp::Bicubic: return cubic(x, -0.5);
    default: return 0.0;
  }
}

HUBCLS_HD double pil_support(Interp interp) {
  switch (interp) {
    case Interp::Area: return 0.5;
    case Interp::Bilinear: return 1.0;
    case Interp::Bicubic: return 2.0;
    default: return 0.0;
  }
}

// One axis of a crop box mapped onto out_size samples (conventions: ops/resample.h).
struct AxisMap {
  int64_t in_size, out_size;
  double box0, box_len, scale;
  Interp interp;
  bool antialias, area_upscale;

  HUBCLS_HD AxisMap(int64_t in, double b0, double len, int64_t out, Interp ip, bool aa, bool area_up)
      : in_size(in),
        out_size(out),
        box0(b0),
        box_len(len),
        // cv2 takes the inverse of dst/src as its scale; use the same double so floor() ties agree
        scale(aa ? len / static_cast<double>(out) : 1.0 / (static_cast<double>(out) / len)),
        interp(ip),
        antialias(aa),
        area_upscale(area_up) {}

  // Pillow's nearest accumulates its source position (x += step per output), so exact ties land
  // where its running sum does: callers keep x = first, x += step.
  HUBCLS_HD double pil_nearest_step() const { return ((box0 + box_len) - box0) / static_cast<double>(out_size); }
  HUBCLS_HD double pil_nearest_first() const { return box0 + pil_nearest_step() * 0.5; }

  // Upper bound of the taps one output can emit.
  HUBCLS_HD int max_taps() const {
    if (interp == Interp::Nearest) return 1;
    if (!antialias) return interp == Interp::Area ? static_cast<int>(ceil_d(scale)) + 2 : 4;
    return static_cast<int>(ceil_d(2.0 * pil_support(interp) * fmax(scale, 1.0))) + 2;
  }

  // Calls emit(source index, weight) for each tap of output d; indices may lie outside
  // [0, in_size) (border replicate: the caller clamps). pil_nearest_x: Pillow's accumulated
  // position of output d (only read for antialiased nearest).
  HUBCLS_NO_EXEC_CHECK
  template <class Emit>
  HUBCLS_HD_TEMPLATE void taps(int64_t d, double pil_nearest_x, Emit&& emit) const {
    if (interp == Interp::Nearest) {
      const double src = antialias ? pil_nearest_x : box0 + d * scale;
      emit(static_cast<int64_t>(floor_d(src)), 1.0);
    } else if (!antialias && interp == Interp::Area && area_upscale) {
      // cv2: sx = floor(dx*scale); fx = (dx+1) - (sx+1)/scale, wrapped into [0, 1)
      const int64_t sx = static_cast<int64_t>(floor_d(box0 + d * scale));
      const double inv = static_cast<double>(out_size) / box_len;
      float fx = static_cast<float>((d + 1) - (static_cast<double>(sx) + 1 - box0) * inv);
      fx = fx <= 0 ? 0.f : fx - floor_f(fx);
      emit(sx, 1.0 - fx);
      emit(sx + 1, static_cast<double>(fx));
    } else if (!antialias && interp == Interp::Area) {
      // overlap of [a, b) with each source pixel, divided by the length (cv2 INTER_AREA)
      const double a = box0 + d * scale, b = a + scale;
      const int64_t i0 = static_cast<int64_t>(floor_d(a)), i1 = static_cast<int64_t>(ceil_d(b));
      for (int64_t i = i0; i < i1; ++i) {
        const double ov = fmin(b, i + 1.0) - fmax(a, static_cast<double>(i));
        if (ov > 1e-12) emit(i, ov / scale);
      }
    } else if (!antialias) {
      // cv2 computes the fractional position in single precision; so do we, so that ties agree
      const float fx = static_cast<float>(box0 + (d + 0.5) * scale - 0.5);
      const int64_t sx = static_cast<int64_t>(floor_f(fx));
      const double t = static_cast<double>(fx) - static_cast<double>(sx);
      if (interp == Interp::Bilinear) {
        emit(sx, 1.0 - t);
        emit(sx + 1, t);
      } else {
        for (int k = -1; k <= 2; ++k) emit(sx + k, cubic(t - k, -0.75));
      }
    } else {
      // Pillow: the filter is stretched by the downscale factor, truncated at the image edge and
      // renormalised
      const double fs = fmax(scale, 1.0);
      const double support = pil_support(interp) * fs;
      const double center = box0 + (d + 0.5) * scale;
      int64_t xmin = static_cast<int64_t>(center - support + 0.5);
      int64_t xmax = static_cast<int64_t>(center + support + 0.5);
      xmin = xmin < 0 ? 0 : xmin;
      xmax = xmax > in_size ? in_size : xmax;
      double total = 0.0;
      for (int64_t i = xmin; i < xmax; ++i) total += pil_filter(interp, (static_cast<double>(i) - center + 0.5) / fs);
      if (xmax <= xmin || total == 0.0) {  // degenerate window at the border: nearest pixel
        emit(static_cast<int64_t>(floor_d(center)), 1.0);
        return;
      }
      for (int64_t i = xmin; i < xmax; ++i)
        emit(i, pil_filter(interp, (static_cast<double>(i) - center + 0.5) / fs) / total);
    }
  }
};

// ---------------------------------------------------------------- augment: pixel arithmetic

// Pillow's ImagingBlend(degenerate, image, alpha) for one value: float, truncated, clipped only
// when extrapolating.
HUBCLS_HD uint8_t blend(int deg, int img, float alpha) {
  const float t = fadd_rn(static_cast<float>(deg), fmul_rn(alpha, static_cast<float>(img - deg)));
  if (alpha >= 0.f && alpha <= 1.f) return static_cast<uint8_t>(t);
  if (t <= 0.f) return 0;
  if (t >= 255.f) return 255;
  return static_cast<uint8_t>(t);
}

// Pillow's RGB -> L: (19595 R + 38470 G + 7471 B + 2^15) >> 16.
HUBCLS_HD int luma(const uint8_t* p) { return (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16; }
HUBCLS_HD int grey_of(const uint8_t* p, int64_t c) { return c >= 3 ? luma(p) : p[0]; }

// Pillow's SMOOTH filter ([1 1 1; 1 5 1; 1 1 1] / 13, +0.5 rounding) at an interior pixel; `i` is
// the byte offset of (x, ch) in row r, c the channel count.
HUBCLS_HD int smooth3x3(const uint8_t* r, int64_t row_stride, int64_t i, int64_t c) {
  const float k1 = 1.f / 13.f, k5 = 5.f / 13.f;
  const uint8_t* up = r - row_stride;  // Pillow names it in_1 and applies kernel[6..8]
  const uint8_t* dn = r + row_stride;  // in1, kernel[0..2]
  auto row = [&](const uint8_t* q, float wl, float wm, float wr) {
    return fadd_rn(fadd_rn(fmul_rn(static_cast<float>(q[i - c]), wl), fmul_rn(static_cast<float>(q[i]), wm)),
                   fmul_rn(static_cast<float>(q[i + c]), wr));
  };
  float ss = 0.5f;
  ss = fadd_rn(ss, row(dn, k1, k1, k1));
  ss = fadd_rn(ss, row(r, k1, k5, k1));
  ss = fadd_rn(ss, row(up, k1, k1, k1));
  return ss <= 0.f ? 0 : (ss >= 255.f ? 255 : static_cast<int>(ss));
}

// One uint8 image as the augment formulas read it.
struct AugImage {
  const uint8_t* data;
  int64_t h, w, c, row_stride;
};

// The "degenerate" value of blend-kind primitives (ImageEnhance): the image is blended with it.
// mean_luma: the image's mean grey level (only for kind MeanBlend).
HUBCLS_HD int blend_degenerate(AugOp op, const AugImage& im, int64_t y, int64_t x, int64_t ch, int mean_luma) {
  const uint8_t* r = im.data + y * im.row_stride;
  switch (op) {
    case AugOp::Brightness: return 0;
    case AugOp::Contrast: return mean_luma;
    case AugOp::Color: return grey_of(r + x * im.c, im.c);
    case AugOp::Sharpness: {
      const bool border = y == 0 || y == im.h - 1 || x == 0 || x == im.w - 1 || im.w < 3 || im.h < 3;
      return border ? r[x * im.c + ch] : smooth3x3(r, im.row_stride, x * im.c + ch, im.c);
    }
    default: return 0;
  }
}

// Mean grey level as Pillow's ImageStat gives it to ImageEnhance.Contrast: int(sum / n + 0.5).
HUBCLS_HD int mean_luma_of(uint64_t luma_sum, int64_t pixels) {
  return static_cast<int>(dadd_rn(ddiv_rn(static_cast<double>(luma_sum), static_cast<double>(pixels)), 0.5));
}

// The 256-entry table of a LUT-kind primitive for one channel (ImageOps); hist: that channel's
// histogram (only read for kind HistogramLut).
template <class Count>
HUBCLS_HD_TEMPLATE void make_lut(AugOp op, double p, const Count* hist, uint8_t* lut) {
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v);
  switch (op) {
    case AugOp::Invert:
      for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(255 - v);
      break;
    case AugOp::Posterize: {
      const int mask = ~((1 << (8 - static_cast<int>(p))) - 1);
      for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v & mask);
      break;
    }
    case AugOp::Solarize:
      for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v < p ? v : 255 - v);
      break;
    case AugOp::SolarizeAdd: {  // timm's solarize_add: add to the values below 128, clipped
      const int add = static_cast<int>(p);
      for (int v = 0; v < 128; ++v) lut[v] = static_cast<uint8_t>(v + add < 0 ? 0 : (v + add > 255 ? 255 : v + add));
      break;
    }
    case AugOp::Equalize: {
      long long total = 0, last = 0, nonzero = 0;
      for (int v = 0; v < 256; ++v)
        if (hist[v]) {
          total += hist[v];
          last = hist[v];
          ++nonzero;
        }
      if (nonzero <= 1) break;
      const long long step = (total - last) / 255;
      if (!step) break;
      long long acc = step / 2;
      for (int v = 0; v < 256; ++v) {
        const long long q = acc / step;
        lut[v] = static_cast<uint8_t>(q > 255 ? 255 : q);
        acc += hist[v];
      }
      break;
    }
    case AugOp::AutoContrast: {
      int lo = 0, hi = 255;
      while (lo < 256 && !hist[lo]) ++lo;
      while (hi >= 0 && !hist[hi]) --hi;
      if (hi <= lo) break;
      const double scale = ddiv_rn(255.0, static_cast<double>(hi - lo));
      const double offset = -dmul_rn(static_cast<double>(lo), scale);
      for (int v = 0; v < 256; ++v) {
        const int q =
            static_cast<int>(dadd_rn(dmul_rn(static_cast<double>(v), scale), offset));  // truncation, as int()
        lut[v] = static_cast<uint8_t>(q < 0 ? 0 : (q > 255 ? 255 : q));
      }
      break;
    }
    default: break;
  }
}

// ---------------------------------------------------------------- augment: affine sampling

HUBCLS_HD double lerp_rn(double p, double q, double t) { return dadd_rn(p, dmul_rn(dsub_rn(q, p), t)); }

// Pillow's transform cubic (a = -1) through 4 samples at fraction t.
HUBCLS_HD double cubic_rn(double p0, double p1, double p2, double p3, double t) {
  const double q1 = p1, q2 = dadd_rn(-p0, p2);
  const double q3 = dsub_rn(dadd_rn(dmul_rn(2.0, dsub_rn(p0, p1)), p2), p3);
  const double q4 = dadd_rn(dsub_rn(dadd_rn(-p0, p1), p2), p3);
  return dadd_rn(q1, dmul_rn(t, dadd_rn(q2, dmul_rn(t, dadd_rn(q3, dmul_rn(t, q4))))));
}

// Bilinear (interp 1) or bicubic (2) sample of channel ch at input position (xin, yin) (pixel
// centres at +0.5, inside the image), as Pillow's affine_filter: columns clamp, rows past the edge
// repeat the previous row.
HUBCLS_HD uint8_t affine_filtered(const AugImage& im, double xin, double yin, int interp, int64_t ch) {
  xin = dsub_rn(xin, 0.5);
  yin = dsub_rn(yin, 0.5);
  const int64_t xf = static_cast<int64_t>(floor_d(xin)), yf = static_cast<int64_t>(floor_d(yin));
  const double dx = dsub_rn(xin, static_cast<double>(xf)), dy = dsub_rn(yin, static_cast<double>(yf));
  auto px = [&](int64_t yy, int64_t xx) { return static_cast<double>(im.data[yy * im.row_stride + xx * im.c + ch]); };
  if (interp == 1) {
    const int64_t x0 = clamp_index(xf, im.w), x1 = clamp_index(xf + 1, im.w);
    auto row = [&](int64_t yy) { return lerp_rn(px(yy, x0), px(yy, x1), dx); };
    double v1 = row(clamp_index(yf, im.h));
    const double v2 = (yf + 1 >= 0 && yf + 1 < im.h) ? row(yf + 1) : v1;
    v1 = lerp_rn(v1, v2, dy);
    return static_cast<uint8_t>(v1);
  }
  int64_t xs[4];
  for (int q = 0; q < 4; ++q) xs[q] = clamp_index(xf - 1 + q, im.w);
  auto row = [&](int64_t yy) { return cubic_rn(px(yy, xs[0]), px(yy, xs[1]), px(yy, xs[2]), px(yy, xs[3]), dx); };
  double v[4];
  v[0] = row(clamp_index(yf - 1, im.h));
  for (int q = 1; q < 4; ++q) v[q] = (yf - 1 + q >= 0 && yf - 1 + q < im.h) ? row(yf - 1 + q) : v[q - 1];
  const double v1 = cubic_rn(v[0], v[1], v[2], v[3], dy);
  return v1 <= 0.0 ? 0 : (v1 >= 255.0 ? 255 : static_cast<uint8_t>(v1));
}

}  // namespace math
}  // namespace hubcls
