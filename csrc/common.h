// Shared helpers of the hubcls C++ core: error type, batch-parallel loop, thread count.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef HUBCLS_WITH_OPENMP
#include <omp.h>
#endif

namespace hubcls {

// Raised for bad arguments; bindings translate it into a Python ValueError.
struct ArgumentError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

inline int default_num_threads() {
#ifdef HUBCLS_WITH_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Runs fn(i) for i in [0, n) over num_threads threads (<= 0: the default). Kernels parallelise over
// the batch (and over rows inside one image when the batch is smaller than the thread count).
template <class Fn>
inline void parallel_for(int64_t n, int num_threads, Fn&& fn) {
  if (num_threads <= 0) num_threads = default_num_threads();
#ifdef HUBCLS_WITH_OPENMP
  if (num_threads > 1 && n > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads)
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) fn(i);
}

}  // namespace hubcls
