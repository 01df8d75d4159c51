// Separable resampling coefficients of the resize kernels. The per-output tap formulas live in
// ops/kernel_math.h (math::AxisMap), shared with the CUDA kernel; this is the CPU's table of them.
//
// Two conventions, both in "pixel centre" coordinates where source pixel i covers [i, i+1):
//  * cv2 (antialias=false): the mapping cv2.resize uses. Output pixel d of a box (x0, len) mapped onto
//    n outputs samples source coordinate x0 + (d + 0.5) * len/n - 0.5 with a fixed 2 (bilinear) or 4
//    (bicubic, a=-0.75) tap kernel, border replicated; nearest takes floor(x0 + d*len/n); area
//    integrates the source over [x0 + d*s, x0 + (d+1)*s). Because the mapping is affine in d,
//    "cv2.resize to (W', H') then crop at (ox, oy)" equals the box (ox*W/W', oy*H/H', c*W/W', ...).
//  * PIL (antialias=true): Pillow's Image.resize(size, box=...) — the kernel is stretched by the
//    downscale factor (support = filter_support * max(scale, 1)) and truncated at the image edge
//    and renormalised; bicubic uses a=-0.5, area is Pillow's BOX filter, nearest samples
//    floor(x0 + (d + 0.5) * scale).
#pragma once
#include <cstdint>
#include <vector>

namespace hubcls {

// Exposed to Python as hubcls._C.Interp (lower-case names: the `interpolation=` strings).
enum class Interp : int { Nearest = 0, Bilinear = 1, Bicubic = 2, Area = 3 };
constexpr bool is_valid(Interp i) { return static_cast<int>(i) >= 0 && static_cast<int>(i) <= 3; }

// For each of n outputs: `taps` weights applied to source indices start[d] .. start[d]+taps-1, all
// inside [0, in_size). Weights of one output sum to 1 (up to rounding).
struct ResampleCoeffs {
  int taps = 0;
  std::vector<int32_t> start;
  std::vector<float> weight;  // n * taps
  int lo = 0, hi = 0;         // union of the source ranges: [lo, hi)
};

// area_upscale: cv2 INTER_AREA when either axis is enlarged switches BOTH axes to a 2-tap
// "linear with area weights" formula; pass true for both axes in that case.
ResampleCoeffs compute_resample_coeffs(int64_t in_size, double box0, double box_len, int64_t out_size, Interp interp,
                                       bool antialias, bool area_upscale = false);

}  // namespace hubcls
