// Resampling coefficient tables (host code, used by the CPU kernels): the taps of every output of
// one axis from math::AxisMap, folded into the image and padded to one common tap count.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "common.h"
#include "ops/kernel_math.h"
#include "ops/resample.h"

namespace hubcls {

ResampleCoeffs compute_resample_coeffs(int64_t in_size, double box0, double box_len, int64_t out_size, Interp interp,
                                       bool antialias, bool area_upscale) {
  if (in_size <= 0 || out_size <= 0) throw ArgumentError("resample: sizes must be positive");
  if (!(box_len > 0) || !std::isfinite(box0) || !std::isfinite(box_len))
    throw ArgumentError("resample: box length must be positive and finite");
  if (!is_valid(interp)) throw ArgumentError("resample: unknown interpolation");
  const math::AxisMap axis(in_size, box0, box_len, out_size, interp, antialias, area_upscale);
  // Raw taps per output (index, weight) in one flat buffer of kmax slots per output, then folded
  // into the image (replicate border) and padded to one common tap count. Four allocations per
  // call, none zero-filled: this runs for both axes of every image of every batch.
  const int kmax = axis.max_taps() + 4;
  std::unique_ptr<int32_t[]> ridx(new int32_t[static_cast<size_t>(out_size * kmax)]);
  std::unique_ptr<float[]> rw(new float[static_cast<size_t>(out_size * kmax)]);
  std::unique_ptr<int32_t[]> span(new int32_t[static_cast<size_t>(2 * out_size)]);  // cnt, first per output
  double pil_x = axis.pil_nearest_first();
  const double pil_step = axis.pil_nearest_step();
  int taps = 1;
  for (int64_t d = 0; d < out_size; ++d, pil_x += pil_step) {
    int k = 0;
    int32_t f = static_cast<int32_t>(in_size), l = -1;
    int32_t* idx = ridx.get() + d * kmax;
    float* w = rw.get() + d * kmax;
    axis.taps(d, pil_x, [&](int64_t i, double wt) {
      if (k >= kmax) return;  // cannot happen with max_taps(); guards memory anyway
      const int32_t ci = static_cast<int32_t>(math::clamp_index(i, in_size));
      idx[k] = ci;
      w[k] = static_cast<float>(wt);
      f = ci < f ? ci : f;
      l = ci > l ? ci : l;
      ++k;
    });
    span[2 * d] = k;
    span[2 * d + 1] = f;
    taps = std::max<int>(taps, static_cast<int>(l - f + 1));
  }
  ResampleCoeffs c;
  c.taps = taps;
  c.start.resize(static_cast<size_t>(out_size));
  c.weight.assign(static_cast<size_t>(out_size * taps), 0.f);
  int64_t lo = in_size, hi = 0;
  for (int64_t d = 0; d < out_size; ++d) {
    const int64_t s = std::max<int64_t>(std::min<int64_t>(span[2 * d + 1], in_size - taps), 0);
    float* w = c.weight.data() + d * taps;
    for (int k = 0; k < span[2 * d]; ++k) w[ridx[d * kmax + k] - s] += rw[d * kmax + k];
    c.start[static_cast<size_t>(d)] = static_cast<int32_t>(s);
    lo = std::min(lo, s);
    hi = std::max(hi, s + taps);
  }
  c.lo = static_cast<int>(lo);
  c.hi = static_cast<int>(hi);
  return c;
}

}  // namespace hubcls
