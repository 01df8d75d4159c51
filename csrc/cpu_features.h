// Run-time CPU dispatch. The SIMD kernels are compiled once per instruction-set level in their own
// translation units (CMakeLists.txt adds -mavx2 / -mavx512* to those files only, never
// -march=native by default); the level used is picked here, at run time, from what this CPU and
// OS support — never from what the build machine had.
#pragma once

namespace hubcls {

// Exposed to Python as hubcls._C.Isa. Levels are ordered: each includes the ones below it.
//   scalar  portable C++ (the baseline of the build: SSE2 on x86-64)
//   avx2    AVX2 + FMA + F16C (Haswell, Zen 1 and later)
//   avx512  AVX-512 F/BW/DQ/VL/VBMI (Ice Lake, Sapphire Rapids, Zen 4 and later; Skylake-SP and
//           Cascade Lake, without VBMI, run the avx2 kernels)
enum class Isa : int { Scalar = 0, AVX2 = 1, AVX512 = 2 };

const char* isa_name(Isa isa);
bool isa_compiled(Isa isa);   // this build has kernels for it
bool isa_supported(Isa isa);  // compiled AND this CPU/OS can run it
Isa best_isa();               // the highest supported level

// The level the kernels use now: best_isa(), capped by the HUBCLS_CPU_ISA environment variable
// (read once: scalar | avx2 | avx512) or by set_active_isa (tests, benchmarks).
Isa active_isa();
void set_active_isa(Isa isa);  // throws ArgumentError if this CPU / build cannot run it

}  // namespace hubcls
