// CPU kernels of the augment primitives: one generic kernel per kind (ops/augment_ops.h), the
// per-primitive formulas from ops/kernel_math.h (shared with the CUDA kernels). Arithmetic follows
// Pillow's C code so results agree with Pillow to the level. This file is compiled with
// -ffp-contract=off: fused multiply-adds would change the rounding.
#include "ops/augment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "ops/kernel_math.h"

namespace hubcls {
namespace {

math::AugImage aug_image(const ImageView& im) { return {im.data, im.h, im.w, im.c, im.row_stride}; }

// Lut / HistogramLut: out = lut[ch][in].
void lut_kernel(AugOp op, const ImageView& im, const MutableImageView& o, double p) {
  std::vector<std::array<int64_t, 256>> hist(static_cast<size_t>(im.c), std::array<int64_t, 256>{});
  if (aug_kind(op) == AugKind::HistogramLut) {
    for (int64_t y = 0; y < im.h; ++y) {
      const uint8_t* r = im.data + y * im.row_stride;
      for (int64_t x = 0; x < im.w; ++x)
        for (int64_t ch = 0; ch < im.c; ++ch) ++hist[static_cast<size_t>(ch)][r[x * im.c + ch]];
    }
  }
  std::vector<std::array<uint8_t, 256>> luts(static_cast<size_t>(im.c));
  for (int64_t ch = 0; ch < im.c; ++ch)
    math::make_lut(op, p, hist[static_cast<size_t>(ch)].data(), luts[static_cast<size_t>(ch)].data());
  for (int64_t y = 0; y < im.h; ++y) {
    const uint8_t* r = im.data + y * im.row_stride;
    uint8_t* d = o.data + y * o.row_stride;
    for (int64_t x = 0; x < im.w; ++x)
      for (int64_t ch = 0; ch < im.c; ++ch) d[x * im.c + ch] = luts[static_cast<size_t>(ch)][r[x * im.c + ch]];
  }
}

// Blend / MeanBlend: out = blend(degenerate, in, factor) (ImageEnhance).
void blend_kernel(AugOp op, const ImageView& im, const MutableImageView& o, double factor) {
  const float a = static_cast<float>(factor);
  const math::AugImage src = aug_image(im);
  int mean = 0;
  if (aug_kind(op) == AugKind::MeanBlend) {
    uint64_t sum = 0;
    for (int64_t y = 0; y < im.h; ++y) {
      const uint8_t* r = im.data + y * im.row_stride;
      for (int64_t x = 0; x < im.w; ++x) sum += static_cast<uint64_t>(math::grey_of(r + x * im.c, im.c));
    }
    mean = math::mean_luma_of(sum, im.h * im.w);
  }
  for (int64_t y = 0; y < im.h; ++y) {
    const uint8_t* r = im.data + y * im.row_stride;
    uint8_t* d = o.data + y * o.row_stride;
    for (int64_t x = 0; x < im.w; ++x)
      for (int64_t ch = 0; ch < im.c; ++ch)
        d[x * im.c + ch] = math::blend(math::blend_degenerate(op, src, y, x, ch, mean), r[x * im.c + ch], a);
  }
}

// Affine: Pillow's Image.transform(AFFINE). Nearest reproduces Pillow's incremental position
// arithmetic (three code paths, as Pillow has); bilinear / bicubic sample with math::affine_filtered.
void affine_kernel(const ImageView& im, const MutableImageView& o, const double* a, Interp interp,
                   const uint8_t* fill) {
  const int64_t c = im.c, W = o.w, H = o.h;
  auto put_fill = [&](uint8_t* d) {
    for (int64_t ch = 0; ch < c; ++ch) d[ch] = fill[ch];
  };
  auto put = [&](uint8_t* d, int64_t yi, int64_t xi) {
    if (xi >= 0 && xi < im.w && yi >= 0 && yi < im.h)
      std::memcpy(d, im.data + yi * im.row_stride + xi * c, static_cast<size_t>(c));
    else put_fill(d);
  };
  if (interp == Interp::Nearest) {
    auto coord = [](double v) -> int64_t { return v < 0.0 ? -1 : static_cast<int64_t>(v); };
    if (a[1] == 0 && a[3] == 0) {  // Pillow's ImagingScaleAffine: accumulated double positions
      std::vector<int64_t> xin(static_cast<size_t>(W));
      double xo = a[2] + a[0] * 0.5;
      for (int64_t x = 0; x < W; ++x) {
        xin[static_cast<size_t>(x)] = coord(xo);
        xo += a[0];
      }
      double yo = a[5] + a[4] * 0.5;
      for (int64_t y = 0; y < H; ++y, yo += a[4]) {
        const int64_t yi = coord(yo);
        uint8_t* d = o.data + y * o.row_stride;
        for (int64_t x = 0; x < W; ++x) put(d + x * c, yi, xin[static_cast<size_t>(x)]);
      }
      return;
    }
    auto fits = [&](double x, double y) {
      return std::fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && std::fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
    };
    const double Wd = static_cast<double>(W), Hd = static_cast<double>(H);
    if (fits(0, 0) && fits(Wd, Hd) && fits(0, Hd) && fits(Wd, 0)) {  // 16.16 fixed point
      auto fix = [](double v) { return static_cast<int32_t>(std::floor(v * 65536.0 + 0.5)); };
      const int32_t a0 = fix(a[0]), a1 = fix(a[1]), a3 = fix(a[3]), a4 = fix(a[4]);
      int32_t a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5), a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
      for (int64_t y = 0; y < H; ++y, a2 += a1, a5 += a4) {
        int32_t xx = a2, yy = a5;
        uint8_t* d = o.data + y * o.row_stride;
        for (int64_t x = 0; x < W; ++x, xx += a0, yy += a3) put(d + x * c, yy >> 16, xx >> 16);  // >> = floor
      }
      return;
    }
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for (int64_t y = 0; y < H; ++y, xo += a[1], yo += a[4]) {
      double xx = xo, yy = yo;
      uint8_t* d = o.data + y * o.row_stride;
      for (int64_t x = 0; x < W; ++x, xx += a[0], yy += a[3]) put(d + x * c, coord(yy), coord(xx));
    }
    return;
  }
  const math::AugImage src = aug_image(im);
  const int filter = interp == Interp::Bilinear ? 1 : 2;
  for (int64_t y = 0; y < H; ++y) {
    uint8_t* d = o.data + y * o.row_stride;
    for (int64_t x = 0; x < W; ++x) {
      const double xin = a[0] * (x + 0.5) + a[1] * (y + 0.5) + a[2];
      const double yin = a[3] * (x + 0.5) + a[4] * (y + 0.5) + a[5];
      if (xin < 0.0 || xin >= im.w || yin < 0.0 || yin >= im.h) {
        put_fill(d + x * c);
        continue;
      }
      for (int64_t ch = 0; ch < c; ++ch) d[x * c + ch] = math::affine_filtered(src, xin, yin, filter, ch);
    }
  }
}

}  // namespace

void augment_cpu(AugOp op, const std::vector<ImageView>& in, const std::vector<MutableImageView>& out,
                 const double* params, Interp interp, const uint8_t* fill, int num_threads) {
  const int64_t n = static_cast<int64_t>(in.size());
  if (out.size() != in.size()) throw ArgumentError("augment: need one output per input image");
  if (!is_valid(op)) throw ArgumentError("augment: unknown op " + std::to_string(static_cast<int>(op)));
  const AugKind kind = aug_kind(op);
  if (kind == AugKind::Affine && interp != Interp::Nearest && interp != Interp::Bilinear && interp != Interp::Bicubic)
    throw ArgumentError("augment: affine interpolation must be nearest, bilinear or bicubic");
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& im = in[static_cast<size_t>(i)];
    const MutableImageView& o = out[static_cast<size_t>(i)];
    if (!im.data || im.h <= 0 || im.w <= 0) throw ArgumentError("augment: image " + std::to_string(i) + " is empty");
    if (im.c != 1 && im.c != 3)
      throw ArgumentError("augment: image " + std::to_string(i) + " must have 1 or 3 channels");
    if (!o.data || o.c != im.c || o.h <= 0 || o.w <= 0)
      throw ArgumentError("augment: bad output for image " + std::to_string(i));
    if (kind != AugKind::Affine && (o.h != im.h || o.w != im.w))
      throw ArgumentError("augment: output must match the input size");
    const double* p = params + 6 * i;
    for (int k = 0; k < (kind == AugKind::Affine ? 6 : 1); ++k)
      if (!std::isfinite(p[k]))
        throw ArgumentError("augment: parameter of image " + std::to_string(i) + " is not finite");
    if (op == AugOp::Posterize && (p[0] < 1 || p[0] > 8))
      throw ArgumentError("augment: posterize bits must be in [1, 8]");
  }
  parallel_for(n, num_threads, [&](int64_t i) {
    const ImageView& im = in[static_cast<size_t>(i)];
    const MutableImageView& o = out[static_cast<size_t>(i)];
    const double* p = params + 6 * i;
    switch (kind) {
      case AugKind::Lut:
      case AugKind::HistogramLut: lut_kernel(op, im, o, p[0]); break;
      case AugKind::Blend:
      case AugKind::MeanBlend: blend_kernel(op, im, o, p[0]); break;
      case AugKind::Affine: affine_kernel(im, o, p, interp, fill); break;
    }
  });
}

}  // namespace hubcls
