// Augment primitives on uint8 HWC images (1 or 3 channels), matching Pillow's ImageOps /
// ImageEnhance / Image.transform pixel for pixel (same rounding, same border rules).
#pragma once
#include <cstdint>
#include <vector>

#include "ops/resize_crop_normalize.h"  // ImageView

namespace hubcls {

enum class AugOp : int {
  Invert = 0,        // no param
  Posterize = 1,     // p[0] = bits (1..8)
  Solarize = 2,      // p[0] = threshold
  Equalize = 3,      // no param
  AutoContrast = 4,  // no param (cutoff 0)
  Brightness = 5,    // p[0] = factor
  Contrast = 6,      // p[0] = factor
  Color = 7,         // p[0] = factor
  Sharpness = 8,     // p[0] = factor
  Affine = 9,        // p[0..5] = inverse matrix (output -> input), Pillow's AFFINE data
};

struct MutableImageView {
  uint8_t* data = nullptr;
  int64_t h = 0, w = 0, c = 0, row_stride = 0;
};

// params: n x 6 doubles (unused entries ignored); interp (affine): 0 nearest, 1 bilinear, 2 bicubic;
// fill: c bytes for pixels mapped from outside the image (affine).
void augment_cpu(AugOp op, const std::vector<ImageView>& in, const std::vector<MutableImageView>& out,
                 const double* params, int interp, const uint8_t* fill, int num_threads);

#ifdef HUBCLS_WITH_CUDA
// Same op on device images (in/out data are device pointers); params/fill are host arrays.
void augment_cuda(AugOp op, const std::vector<ImageView>& in, const std::vector<MutableImageView>& out,
                  const double* params, int interp, const uint8_t* fill, int device, uintptr_t stream);
#endif

}  // namespace hubcls
