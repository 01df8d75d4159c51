// resize_crop_normalize row kernel compiled for the avx2 level (CMake adds the ISA flags to
// files named *_avx2.cpp; the body is resize_crop_normalize_rows.inl).
#include "ops/cpu/resize_crop_normalize_kernels.h"
#include "ops/cpu/simd.h"

#define HUBCLS_RCN_ROWS rows_avx2
#include "ops/cpu/resize_crop_normalize_rows.inl"
