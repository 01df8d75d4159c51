// Resampling coefficients (host code, used by the CPU kernels and to feed the CUDA kernels).
#include <algorithm>
#include <cmath>

#include "common.h"
#include "ops/resample.h"

namespace hubcls {
namespace {

double cubic(double x, double a) {
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Pillow's filters (src/libImaging/Resample.c semantics).
double pil_filter(Interp interp, double x) {
  switch (interp) {
    case Interp::Area:  // BOX
      return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
    case Interp::Bilinear:
      x = std::fabs(x);
      return x < 1.0 ? 1.0 - x : 0.0;
    case Interp::Bicubic:
      return cubic(x, -0.5);
    default:
      return 0.0;
  }
}

double pil_support(Interp interp) {
  switch (interp) {
    case Interp::Area: return 0.5;
    case Interp::Bilinear: return 1.0;
    case Interp::Bicubic: return 2.0;
    default: return 0.0;
  }
}

}  // namespace

ResampleCoeffs compute_resample_coeffs(int64_t in_size, double box0, double box_len, int64_t out_size,
                                       Interp interp, bool antialias, bool area_upscale) {
  if (in_size <= 0 || out_size <= 0) throw ArgumentError("resample: sizes must be positive");
  if (!(box_len > 0) || !std::isfinite(box0) || !std::isfinite(box_len))
    throw ArgumentError("resample: box length must be positive and finite");
  // cv2 takes the inverse of dst/src as its scale; use the same double so floor() ties agree
  const double scale = antialias ? box_len / static_cast<double>(out_size)
                                 : 1.0 / (static_cast<double>(out_size) / box_len);
  auto clampi = [&](int64_t i) { return std::min<int64_t>(std::max<int64_t>(i, 0), in_size - 1); };
  // Raw taps per output (index, weight) in a flat buffer of kmax slots, then folded into the image
  // (replicate border) and padded to one common tap count. No per-output allocations: this runs
  // for every image of every batch.
  const double fs_max = std::max(scale, 1.0);
  const int kmax = static_cast<int>(std::ceil(2.0 * 2.0 * fs_max)) + 6;
  std::vector<int64_t> ridx(static_cast<size_t>(out_size * kmax));
  std::vector<double> rw(static_cast<size_t>(out_size * kmax));
  std::vector<int> cnt(static_cast<size_t>(out_size), 0);
  auto push = [&](int64_t d, int64_t i, double w) {
    int& k = cnt[static_cast<size_t>(d)];
    if (k >= kmax) return;  // cannot happen with the supports above; guards memory anyway
    ridx[static_cast<size_t>(d * kmax + k)] = i;
    rw[static_cast<size_t>(d * kmax + k)] = w;
    ++k;
  };
  // Pillow's nearest accumulates the source position (xo += a0), so exact ties land where its sum does.
  const double pil_a0 = ((box0 + box_len) - box0) / static_cast<double>(out_size);
  double pil_xo = box0 + pil_a0 * 0.5;
  for (int64_t d = 0; d < out_size; ++d) {
    if (interp == Interp::Nearest) {
      double src = antialias ? pil_xo : box0 + d * scale;
      pil_xo += pil_a0;
      push(d, static_cast<int64_t>(std::floor(src)), 1.0);
    } else if (!antialias && interp == Interp::Area && area_upscale) {
      // cv2: sx = floor(dx*scale); fx = (dx+1) - (sx+1)/scale, wrapped into [0, 1)
      double pos = box0 + d * scale;
      int64_t sx = static_cast<int64_t>(std::floor(pos));
      const double inv = static_cast<double>(out_size) / box_len;
      float fx = static_cast<float>((d + 1) - (static_cast<double>(sx) + 1 - box0) * inv);
      fx = fx <= 0 ? 0.f : fx - std::floor(fx);
      push(d, sx, 1.0 - fx);
      push(d, sx + 1, fx);
    } else if (!antialias && interp == Interp::Area) {
      // Overlap of [a, b) with each source pixel, divided by the length (cv2 INTER_AREA).
      double a = box0 + d * scale, b = a + scale;
      int64_t i0 = static_cast<int64_t>(std::floor(a)), i1 = static_cast<int64_t>(std::ceil(b));
      for (int64_t i = i0; i < i1; ++i) {
        double ov = std::min<double>(b, i + 1.0) - std::max<double>(a, static_cast<double>(i));
        if (ov > 1e-12) push(d, i, ov / scale);
      }
    } else if (!antialias) {
      // cv2 computes the fractional position in single precision; do the same so that ties agree.
      float fx = static_cast<float>(box0 + (d + 0.5) * scale - 0.5);
      int64_t sx = static_cast<int64_t>(std::floor(fx));
      double t = static_cast<double>(fx) - static_cast<double>(sx);
      if (interp == Interp::Bilinear) {
        push(d, sx, 1.0 - t);
        push(d, sx + 1, t);
      } else {
        for (int k = -1; k <= 2; ++k) push(d, sx + k, cubic(t - k, -0.75));
      }
    } else {
      const double fs = std::max(scale, 1.0);
      const double support = pil_support(interp) * fs;
      const double center = box0 + (d + 0.5) * scale;
      int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
      int64_t xmax = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size);
      double total = 0.0;
      for (int64_t i = xmin; i < xmax; ++i) total += pil_filter(interp, (static_cast<double>(i) - center + 0.5) / fs);
      if (xmax <= xmin || total == 0.0) {  // degenerate window at the border: nearest pixel
        push(d, static_cast<int64_t>(std::floor(center)), 1.0);
        continue;
      }
      for (int64_t i = xmin; i < xmax; ++i)
        push(d, i, pil_filter(interp, (static_cast<double>(i) - center + 0.5) / fs) / total);
    }
  }
  // fold: clamp indices into the image; each output covers [first, last]
  std::vector<int64_t> first(static_cast<size_t>(out_size)), last(static_cast<size_t>(out_size));
  int taps = 1;
  for (int64_t d = 0; d < out_size; ++d) {
    int64_t f = in_size, l = -1;
    for (int k = 0; k < cnt[static_cast<size_t>(d)]; ++k) {
      int64_t& i = ridx[static_cast<size_t>(d * kmax + k)];
      i = clampi(i);
      f = std::min(f, i);
      l = std::max(l, i);
    }
    first[static_cast<size_t>(d)] = f;
    last[static_cast<size_t>(d)] = l;
    taps = std::max<int>(taps, static_cast<int>(l - f + 1));
  }
  ResampleCoeffs c;
  c.taps = taps;
  c.start.resize(static_cast<size_t>(out_size));
  c.weight.assign(static_cast<size_t>(out_size * taps), 0.f);
  int64_t lo = in_size, hi = 0;
  for (int64_t d = 0; d < out_size; ++d) {
    int64_t s = std::max<int64_t>(std::min<int64_t>(first[static_cast<size_t>(d)], in_size - taps), 0);
    for (int k = 0; k < cnt[static_cast<size_t>(d)]; ++k) {
      const size_t j = static_cast<size_t>(d * kmax + k);
      c.weight[static_cast<size_t>(d * taps + (ridx[j] - s))] += static_cast<float>(rw[j]);
    }
    c.start[static_cast<size_t>(d)] = static_cast<int32_t>(s);
    lo = std::min(lo, s);
    hi = std::max(hi, s + taps);
  }
  c.lo = static_cast<int>(lo);
  c.hi = static_cast<int>(hi);
  return c;
}

}  // namespace hubcls
