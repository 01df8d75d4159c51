// Augment primitives on uint8 HWC images (1 or 3 channels), matching Pillow's ImageOps /
// ImageEnhance / Image.transform pixel for pixel (same rounding, same border rules).
#pragma once
#include <cstdint>
#include <vector>

#include "ops/augment_ops.h"
#include "ops/image.h"
#include "ops/resample.h"  // Interp

namespace hubcls {

// params: n x 6 doubles (unused entries ignored); interp (affine only): nearest, bilinear or
// bicubic; fill: c bytes for pixels mapped from outside the image (affine).
// Throws ArgumentError on invalid input (unknown op, bad sizes, non-finite parameters).
void augment_cpu(AugOp op, const std::vector<ImageView>& in, const std::vector<MutableImageView>& out,
                 const double* params, Interp interp, const uint8_t* fill, int num_threads);

#ifdef HUBCLS_WITH_CUDA
// Same op on device images (in/out data are device pointers); params/fill are host arrays.
void augment_cuda(AugOp op, const std::vector<ImageView>& in, const std::vector<MutableImageView>& out,
                  const double* params, Interp interp, const uint8_t* fill, int device, uintptr_t stream);
#endif

}  // namespace hubcls
