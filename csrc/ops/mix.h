// Mix ops (Mixup, CutMix): out[i] = lam[i] * x[i] + (1 - lam[i]) * x[perm[i]], or x[i] with the box
// of sample i replaced by the same box of x[perm[i]]. `out` must not overlap `x`.
#pragma once
#include <cstdint>

#include "ops/batch.h"

namespace hubcls {

void mix_blend_cpu(const BatchView& x, const int64_t* perm, const float* lam, void* out, int num_threads);

// boxes: per sample (x0, y0, x1, y1), clipped to the image.
void mix_paste_cpu(const BatchView& x, const int64_t* perm, const int32_t* boxes, void* out, int num_threads);

#ifdef HUBCLS_WITH_CUDA
// x.data and out are device pointers; perm / lam / boxes are host arrays uploaded on `stream`.
void mix_blend_cuda(const BatchView& x, const int64_t* perm, const float* lam, void* out, int device, uintptr_t stream);
void mix_paste_cuda(const BatchView& x, const int64_t* perm, const int32_t* boxes, void* out, int device,
                    uintptr_t stream);
#endif

}  // namespace hubcls
