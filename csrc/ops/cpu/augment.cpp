// CPU kernels of the augment primitives. Arithmetic follows Pillow's C code (float blend with
// truncation, L = (19595 R + 38470 G + 7471 B + 2^15) >> 16, 3x3 SMOOTH with +0.5 rounding and copied
// borders, 16.16 fixed point nearest affine) so results agree with Pillow to the level. This file
// is compiled with -ffp-contract=off: fused multiply-adds would change the rounding.
#include "ops/augment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "common.h"

namespace hubcls {
namespace {

using Lut = std::array<uint8_t, 256>;

inline uint8_t px(const ImageView& im, int64_t y, int64_t x, int64_t ch) {
  return im.data[y * im.row_stride + x * im.c + ch];
}

void histograms(const ImageView& im, std::vector<std::array<int64_t, 256>>& h) {
  h.assign(static_cast<size_t>(im.c), {});
  for (int64_t y = 0; y < im.h; ++y) {
    const uint8_t* r = im.data + y * im.row_stride;
    for (int64_t x = 0; x < im.w; ++x)
      for (int64_t ch = 0; ch < im.c; ++ch) ++h[static_cast<size_t>(ch)][r[x * im.c + ch]];
  }
}

void apply_luts(const ImageView& im, const MutableImageView& o, const std::vector<Lut>& luts) {
  for (int64_t y = 0; y < im.h; ++y) {
    const uint8_t* r = im.data + y * im.row_stride;
    uint8_t* d = o.data + y * o.row_stride;
    for (int64_t x = 0; x < im.w; ++x)
      for (int64_t ch = 0; ch < im.c; ++ch) d[x * im.c + ch] = luts[static_cast<size_t>(ch)][r[x * im.c + ch]];
  }
}

void point_op(AugOp op, const ImageView& im, const MutableImageView& o, double p) {
  std::vector<Lut> luts(static_cast<size_t>(im.c));
  std::vector<std::array<int64_t, 256>> h;
  if (op == AugOp::Equalize || op == AugOp::AutoContrast) histograms(im, h);
  for (int64_t ch = 0; ch < im.c; ++ch) {
    Lut& l = luts[static_cast<size_t>(ch)];
    for (int i = 0; i < 256; ++i) l[i] = static_cast<uint8_t>(i);
    switch (op) {
      case AugOp::Invert:
        for (int i = 0; i < 256; ++i) l[i] = static_cast<uint8_t>(255 - i);
        break;
      case AugOp::Posterize: {
        const int bits = static_cast<int>(p);
        const int mask = ~((1 << (8 - bits)) - 1);
        for (int i = 0; i < 256; ++i) l[i] = static_cast<uint8_t>(i & mask);
        break;
      }
      case AugOp::Solarize:
        for (int i = 0; i < 256; ++i) l[i] = static_cast<uint8_t>(i < p ? i : 255 - i);
        break;
      case AugOp::Equalize: {
        const auto& hh = h[static_cast<size_t>(ch)];
        int64_t total = 0, last = 0, nonzero = 0;
        for (int i = 0; i < 256; ++i)
          if (hh[i]) { total += hh[i]; last = hh[i]; ++nonzero; }
        if (nonzero <= 1) break;
        const int64_t step = (total - last) / 255;
        if (!step) break;
        int64_t n = step / 2;
        for (int i = 0; i < 256; ++i) {
          l[i] = static_cast<uint8_t>(std::min<int64_t>(n / step, 255));
          n += hh[i];
        }
        break;
      }
      case AugOp::AutoContrast: {
        const auto& hh = h[static_cast<size_t>(ch)];
        int lo = 0, hi = 255;
        while (lo < 256 && !hh[lo]) ++lo;
        while (hi >= 0 && !hh[hi]) --hi;
        if (hi <= lo) break;
        const double scale = 255.0 / (hi - lo), offset = -lo * scale;
        for (int i = 0; i < 256; ++i) {
          int v = static_cast<int>(i * scale + offset);  // truncation toward zero, as Python's int()
          l[i] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
        break;
      }
      default:
        break;
    }
  }
  apply_luts(im, o, luts);
}

// Pillow's ImagingBlend(degenerate, image, alpha) for one value.
inline uint8_t blend(int deg, int img, float alpha) {
  float t = static_cast<float>(deg) + alpha * static_cast<float>(img - deg);
  if (alpha >= 0.f && alpha <= 1.f) return static_cast<uint8_t>(t);
  if (t <= 0.f) return 0;
  if (t >= 255.f) return 255;
  return static_cast<uint8_t>(t);
}

inline int luma(const uint8_t* p) { return (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16; }

void enhance(AugOp op, const ImageView& im, const MutableImageView& o, double factor) {
  const float a = static_cast<float>(factor);
  const int64_t c = im.c;
  if (op == AugOp::Brightness || op == AugOp::Contrast) {
    int deg = 0;
    if (op == AugOp::Contrast) {
      int64_t sum = 0;
      for (int64_t y = 0; y < im.h; ++y) {
        const uint8_t* r = im.data + y * im.row_stride;
        for (int64_t x = 0; x < im.w; ++x) sum += c >= 3 ? luma(r + x * c) : r[x * c];
      }
      deg = static_cast<int>(static_cast<double>(sum) / static_cast<double>(im.h * im.w) + 0.5);
    }
    for (int64_t y = 0; y < im.h; ++y) {
      const uint8_t* r = im.data + y * im.row_stride;
      uint8_t* d = o.data + y * o.row_stride;
      for (int64_t k = 0; k < im.w * c; ++k) d[k] = blend(deg, r[k], a);
    }
    return;
  }
  if (op == AugOp::Color) {
    for (int64_t y = 0; y < im.h; ++y) {
      const uint8_t* r = im.data + y * im.row_stride;
      uint8_t* d = o.data + y * o.row_stride;
      for (int64_t x = 0; x < im.w; ++x) {
        const int g = c >= 3 ? luma(r + x * c) : r[x * c];
        for (int64_t ch = 0; ch < c; ++ch) d[x * c + ch] = blend(g, r[x * c + ch], a);
      }
    }
    return;
  }
  // Sharpness: degenerate = SMOOTH 3x3 ([1 1 1; 1 5 1; 1 1 1] / 13), border pixels unfiltered
  const float k1 = 1.f / 13.f, k5 = 5.f / 13.f;
  for (int64_t y = 0; y < im.h; ++y) {
    const uint8_t* r = im.data + y * im.row_stride;
    uint8_t* d = o.data + y * o.row_stride;
    const bool border_row = y == 0 || y == im.h - 1 || im.w < 3 || im.h < 3;
    for (int64_t x = 0; x < im.w; ++x) {
      for (int64_t ch = 0; ch < c; ++ch) {
        int deg;
        if (border_row || x == 0 || x == im.w - 1) {
          deg = r[x * c + ch];
        } else {
          const uint8_t* up = r - im.row_stride;  // Pillow names it in_1 and applies kernel[6..8]
          const uint8_t* dn = r + im.row_stride;  // in1, kernel[0..2]
          const int64_t i = x * c + ch;
          float ss = 0.5f;
          ss += static_cast<float>(dn[i - c]) * k1 + static_cast<float>(dn[i]) * k1 + static_cast<float>(dn[i + c]) * k1;
          ss += static_cast<float>(r[i - c]) * k1 + static_cast<float>(r[i]) * k5 + static_cast<float>(r[i + c]) * k1;
          ss += static_cast<float>(up[i - c]) * k1 + static_cast<float>(up[i]) * k1 + static_cast<float>(up[i + c]) * k1;
          deg = ss <= 0.f ? 0 : (ss >= 255.f ? 255 : static_cast<int>(ss));
        }
        d[x * c + ch] = blend(deg, r[x * c + ch], a);
      }
    }
  }
}

inline int64_t xclip(int64_t v, int64_t n) { return v < 0 ? 0 : (v < n ? v : n - 1); }

void affine(const ImageView& im, const MutableImageView& o, const double* a, int interp, const uint8_t* fill) {
  const int64_t c = im.c, W = o.w, H = o.h;
  auto put_fill = [&](uint8_t* d) { for (int64_t ch = 0; ch < c; ++ch) d[ch] = fill[ch]; };
  if (interp == 0) {
    auto coord = [](double v) -> int64_t { return v < 0.0 ? -1 : static_cast<int64_t>(v); };
    if (a[1] == 0 && a[3] == 0) {  // Pillow's ImagingScaleAffine: accumulated double positions
      std::vector<int64_t> xin(static_cast<size_t>(W));
      double xo = a[2] + a[0] * 0.5;
      for (int64_t x = 0; x < W; ++x) { xin[static_cast<size_t>(x)] = coord(xo); xo += a[0]; }
      double yo = a[5] + a[4] * 0.5;
      for (int64_t y = 0; y < H; ++y, yo += a[4]) {
        const int64_t yi = coord(yo);
        uint8_t* d = o.data + y * o.row_stride;
        for (int64_t x = 0; x < W; ++x) {
          const int64_t xi = xin[static_cast<size_t>(x)];
          if (yi >= 0 && yi < im.h && xi >= 0 && xi < im.w) std::memcpy(d + x * c, im.data + yi * im.row_stride + xi * c, static_cast<size_t>(c));
          else put_fill(d + x * c);
        }
      }
      return;
    }
    auto fits = [&](double x, double y) {
      return std::fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && std::fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
    };
    if (fits(0, 0) && fits(static_cast<double>(W), static_cast<double>(H)) && fits(0, static_cast<double>(H)) && fits(static_cast<double>(W), 0)) {
      auto fix = [](double v) { return static_cast<int32_t>(std::floor(v * 65536.0 + 0.5)); };
      const int32_t a0 = fix(a[0]), a1 = fix(a[1]), a3 = fix(a[3]), a4 = fix(a[4]);
      int32_t a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5), a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
      for (int64_t y = 0; y < H; ++y, a2 += a1, a5 += a4) {
        int32_t xx = a2, yy = a5;
        uint8_t* d = o.data + y * o.row_stride;
        for (int64_t x = 0; x < W; ++x, xx += a0, yy += a3) {
          const int32_t xi = xx >> 16, yi = yy >> 16;  // arithmetic shift = floor, as in Pillow
          if (xi >= 0 && xi < im.w && yi >= 0 && yi < im.h) std::memcpy(d + x * c, im.data + yi * im.row_stride + xi * c, static_cast<size_t>(c));
          else put_fill(d + x * c);
        }
      }
      return;
    }
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for (int64_t y = 0; y < H; ++y, xo += a[1], yo += a[4]) {
      double xx = xo, yy = yo;
      uint8_t* d = o.data + y * o.row_stride;
      for (int64_t x = 0; x < W; ++x, xx += a[0], yy += a[3]) {
        const int64_t xi = coord(xx), yi = coord(yy);
        if (xi >= 0 && xi < im.w && yi >= 0 && yi < im.h) std::memcpy(d + x * c, im.data + yi * im.row_stride + xi * c, static_cast<size_t>(c));
        else put_fill(d + x * c);
      }
    }
    return;
  }
  for (int64_t y = 0; y < H; ++y) {
    uint8_t* d = o.data + y * o.row_stride;
    for (int64_t x = 0; x < W; ++x) {
      double xin = a[0] * (x + 0.5) + a[1] * (y + 0.5) + a[2];
      double yin = a[3] * (x + 0.5) + a[4] * (y + 0.5) + a[5];
      if (xin < 0.0 || xin >= im.w || yin < 0.0 || yin >= im.h) { put_fill(d + x * c); continue; }
      xin -= 0.5;
      yin -= 0.5;
      const int64_t xf = static_cast<int64_t>(std::floor(xin)), yf = static_cast<int64_t>(std::floor(yin));
      const double dx = xin - xf, dy = yin - yf;
      for (int64_t ch = 0; ch < c; ++ch) {
        double v1;
        if (interp == 1) {
          const int64_t x0 = xclip(xf, im.w), x1 = xclip(xf + 1, im.w);
          auto row = [&](int64_t yy) {
            const double p = px(im, yy, x0, ch), q = px(im, yy, x1, ch);
            return p + (q - p) * dx;
          };
          v1 = row(xclip(yf, im.h));
          const double v2 = (yf + 1 >= 0 && yf + 1 < im.h) ? row(yf + 1) : v1;
          v1 = v1 + (v2 - v1) * dy;
          d[x * c + ch] = static_cast<uint8_t>(v1);
        } else {
          auto cub = [](double p0, double p1, double p2, double p3, double t) {
            const double q1 = p1, q2 = -p0 + p2, q3 = 2 * (p0 - p1) + p2 - p3, q4 = -p0 + p1 - p2 + p3;
            return q1 + t * (q2 + t * (q3 + t * q4));
          };
          const int64_t xb = xf - 1, yb = yf - 1;
          int64_t xs[4];
          for (int k = 0; k < 4; ++k) xs[k] = xclip(xb + k, im.w);
          auto row = [&](int64_t yy) {
            return cub(px(im, yy, xs[0], ch), px(im, yy, xs[1], ch), px(im, yy, xs[2], ch), px(im, yy, xs[3], ch), dx);
          };
          double v[4];
          v[0] = row(xclip(yb, im.h));
          for (int k = 1; k < 4; ++k) v[k] = (yb + k >= 0 && yb + k < im.h) ? row(yb + k) : v[k - 1];
          v1 = cub(v[0], v[1], v[2], v[3], dy);
          d[x * c + ch] = v1 <= 0.0 ? 0 : (v1 >= 255.0 ? 255 : static_cast<uint8_t>(v1));
        }
      }
    }
  }
}

}  // namespace

void augment_cpu(AugOp op, const std::vector<ImageView>& in, const std::vector<MutableImageView>& out,
                 const double* params, int interp, const uint8_t* fill, int num_threads) {
  const int64_t n = static_cast<int64_t>(in.size());
  if (out.size() != in.size()) throw ArgumentError("augment: need one output per input image");
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > 9) throw ArgumentError("augment: unknown op");
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& im = in[static_cast<size_t>(i)];
    const MutableImageView& o = out[static_cast<size_t>(i)];
    if (!im.data || im.h <= 0 || im.w <= 0) throw ArgumentError("augment: image " + std::to_string(i) + " is empty");
    if (im.c != 1 && im.c != 3) throw ArgumentError("augment: image " + std::to_string(i) + " must have 1 or 3 channels");
    if (!o.data || o.c != im.c || o.h <= 0 || o.w <= 0) throw ArgumentError("augment: bad output for image " + std::to_string(i));
    if (op != AugOp::Affine && (o.h != im.h || o.w != im.w)) throw ArgumentError("augment: output must match the input size");
    const double* p = params + 6 * i;
    if (op == AugOp::Affine) {
      for (int k = 0; k < 6; ++k)
        if (!std::isfinite(p[k])) throw ArgumentError("augment: affine matrix " + std::to_string(i) + " is not finite");
      if (interp < 0 || interp > 2) throw ArgumentError("augment: affine interpolation must be nearest, bilinear or bicubic");
    } else if (!std::isfinite(p[0])) {
      throw ArgumentError("augment: parameter of image " + std::to_string(i) + " is not finite");
    }
    if (op == AugOp::Posterize && (p[0] < 1 || p[0] > 8)) throw ArgumentError("augment: posterize bits must be in [1, 8]");
  }
  parallel_for(n, num_threads, [&](int64_t i) {
    const ImageView& im = in[static_cast<size_t>(i)];
    const MutableImageView& o = out[static_cast<size_t>(i)];
    const double* p = params + 6 * i;
    switch (op) {
      case AugOp::Invert: case AugOp::Posterize: case AugOp::Solarize: case AugOp::Equalize: case AugOp::AutoContrast:
        point_op(op, im, o, p[0]);
        break;
      case AugOp::Brightness: case AugOp::Contrast: case AugOp::Color: case AugOp::Sharpness:
        enhance(op, im, o, p[0]);
        break;
      case AugOp::Affine:
        affine(im, o, p, interp, fill);
        break;
    }
  });
}

}  // namespace hubcls
