// IEEE half <-> float conversions of the portable (baseline-ISA) code. The SIMD kernels convert
// with their own instructions (F16C, AVX-512); these are the reference routines they must match.
#pragma once
#include <cstdint>

namespace hubcls {

uint16_t float_to_half(float f);  // round to nearest even; overflow -> inf, NaN kept
float half_to_float(uint16_t h);
void floats_to_halves(const float* src, uint16_t* dst, int64_t n);

}  // namespace hubcls
