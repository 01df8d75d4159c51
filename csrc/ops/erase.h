// Erase ops (Cutout, RandomErasing, HideAndSeek, GridMask): Python draws the per-sample
// parameters; the kernels only paint them into the batch, in place.
#pragma once
#include <cstdint>

#include "ops/batch.h"

namespace hubcls {

// Rectangles [x0, x1) x [y0, y1) (clipped to the image) of sample rect_sample[r]; rects sorted by
// sample. Fill: if pix_offset[r] < 0 the constant const_values[r*C .. r*C+C), otherwise per-pixel
// values pixels[pix_offset[r] + ((y-y0)*(x1-x0) + (x-x0))*C + ch] (HWC order, unclipped rect).
void fill_rects_cpu(const BatchView& b, int64_t n_rects, const int32_t* rect_sample, const int32_t* rects,
                    const float* const_values, const int64_t* pix_offset, const float* pixels, int64_t n_pixels,
                    int num_threads);

// Where masks[i, y, x] == 0, set every channel to value[ch]; masks is N x H x W bytes.
void mask_fill_cpu(const BatchView& b, const uint8_t* masks, const float* value, int num_threads);

#ifdef HUBCLS_WITH_CUDA
// Same contracts as the CPU kernels; b.data is a device pointer, the rect tables / values / masks
// are host arrays uploaded on `stream`.
void fill_rects_cuda(const BatchView& b, int64_t n_rects, const int32_t* rect_sample, const int32_t* rects,
                     const float* const_values, const int64_t* pix_offset, const float* pixels, int64_t n_pixels,
                     int device, uintptr_t stream);
void mask_fill_cuda(const BatchView& b, const uint8_t* masks, const float* value, int device, uintptr_t stream);
#endif

}  // namespace hubcls
