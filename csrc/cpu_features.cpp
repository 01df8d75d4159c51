// CPU feature detection for the run-time kernel dispatch (see cpu_features.h).
#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"

namespace hubcls {
namespace {

bool cpu_has(Isa isa) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  // __builtin_cpu_supports reads CPUID and checks that the OS saves the wide registers (XGETBV).
  __builtin_cpu_init();
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::AVX2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case Isa::AVX512:
      return cpu_has(Isa::AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vbmi");
  }
  return false;
#else
  return isa == Isa::Scalar;
#endif
}

Isa parse_env(Isa best) {
  const char* v = std::getenv("HUBCLS_CPU_ISA");
  if (!v || !*v) return best;
  for (Isa isa : {Isa::Scalar, Isa::AVX2, Isa::AVX512})
    if (std::strcmp(v, isa_name(isa)) == 0) return static_cast<int>(isa) < static_cast<int>(best) ? isa : best;
  return best;  // unknown value: ignored (hubcls.ops warns about it)
}

std::atomic<int> g_active{-1};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::AVX2: return "avx2";
    case Isa::AVX512: return "avx512";
  }
  return "?";
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
#ifdef HUBCLS_HAVE_AVX2
    case Isa::AVX2: return true;
#endif
#ifdef HUBCLS_HAVE_AVX512
    case Isa::AVX512: return true;
#endif
    default: return false;
  }
}

bool isa_supported(Isa isa) { return isa_compiled(isa) && cpu_has(isa); }

Isa best_isa() {
  for (Isa isa : {Isa::AVX512, Isa::AVX2})
    if (isa_supported(isa)) return isa;
  return Isa::Scalar;
}

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(parse_env(best_isa()));
    g_active.store(v, std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

void set_active_isa(Isa isa) {
  if (!isa_supported(isa))
    throw ArgumentError(std::string("CPU kernels for ") + isa_name(isa) +
                        (isa_compiled(isa) ? " cannot run on this CPU" : " are not compiled into this build"));
  g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace hubcls
