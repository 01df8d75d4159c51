// resize_crop_normalize row kernel at the scalar level: the build's baseline instruction set, used
// on CPUs without AVX2 and on non-x86 machines (the body is resize_crop_normalize_rows.inl).
#include "ops/cpu/resize_crop_normalize_kernels.h"
#include "ops/cpu/simd.h"

#define HUBCLS_RCN_ROWS rows_scalar
#include "ops/cpu/resize_crop_normalize_rows.inl"
