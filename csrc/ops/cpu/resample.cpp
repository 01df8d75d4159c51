// Resampling coefficient tables (host code, used by the CPU kernels): the taps of every output of
// one axis from math::AxisMap, folded into the image and padded to one common tap count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "ops/kernel_math.h"
#include "ops/resample.h"

namespace hubcls {

ResampleCoeffs compute_resample_coeffs(int64_t in_size, double box0, double box_len, int64_t out_size,
                                       Interp interp, bool antialias, bool area_upscale) {
  if (in_size <= 0 || out_size <= 0) throw ArgumentError("resample: sizes must be positive");
  if (!(box_len > 0) || !std::isfinite(box0) || !std::isfinite(box_len))
    throw ArgumentError("resample: box length must be positive and finite");
  if (!is_valid(interp)) throw ArgumentError("resample: unknown interpolation");
  const math::AxisMap axis(in_size, box0, box_len, out_size, interp, antialias, area_upscale);
  // Raw taps per output (index, weight) in a flat buffer of kmax slots, then folded into the image
  // (replicate border) and padded to one common tap count. No per-output allocations: this runs
  // for every image of every batch.
  const int kmax = axis.max_taps() + 4;
  std::vector<int64_t> ridx(static_cast<size_t>(out_size * kmax));
  std::vector<double> rw(static_cast<size_t>(out_size * kmax));
  std::vector<int> cnt(static_cast<size_t>(out_size), 0);
  double pil_x = axis.pil_nearest_first();
  const double pil_step = axis.pil_nearest_step();
  for (int64_t d = 0; d < out_size; ++d, pil_x += pil_step) {
    int& k = cnt[static_cast<size_t>(d)];
    axis.taps(d, pil_x, [&](int64_t i, double w) {
      if (k >= kmax) return;  // cannot happen with max_taps(); guards memory anyway
      ridx[static_cast<size_t>(d * kmax + k)] = math::clamp_index(i, in_size);
      rw[static_cast<size_t>(d * kmax + k)] = w;
      ++k;
    });
  }
  // each output covers [first, last] of the image
  std::vector<int64_t> first(static_cast<size_t>(out_size));
  int taps = 1;
  for (int64_t d = 0; d < out_size; ++d) {
    int64_t f = in_size, l = -1;
    for (int k = 0; k < cnt[static_cast<size_t>(d)]; ++k) {
      const int64_t i = ridx[static_cast<size_t>(d * kmax + k)];
      f = std::min(f, i);
      l = std::max(l, i);
    }
    first[static_cast<size_t>(d)] = f;
    taps = std::max<int>(taps, static_cast<int>(l - f + 1));
  }
  ResampleCoeffs c;
  c.taps = taps;
  c.start.resize(static_cast<size_t>(out_size));
  c.weight.assign(static_cast<size_t>(out_size * taps), 0.f);
  int64_t lo = in_size, hi = 0;
  for (int64_t d = 0; d < out_size; ++d) {
    const int64_t s = std::max<int64_t>(std::min<int64_t>(first[static_cast<size_t>(d)], in_size - taps), 0);
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
