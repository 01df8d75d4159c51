// Python bindings of the hubcls core (module hubcls._C). Each op lives in csrc/ops/<op>.h with its
// CPU kernel in csrc/ops/cpu/<op>.cpp (and CUDA kernel in csrc/ops/cuda/<op>.cu); this file only
// binds them.
#include <pybind11/pybind11.h>

#include "common.h"

namespace py = pybind11;

static py::dict build_info() {
  py::dict d;
  d["version"] = "0.1.0";
  d["compiler"] = HUBCLS_COMPILER;
  d["cxx_flags"] = HUBCLS_CXX_FLAGS;
  d["build_type"] = HUBCLS_BUILD_TYPE;
  d["simd"] = hubcls::simd_level();
#ifdef HUBCLS_WITH_OPENMP
  d["openmp"] = true;
#else
  d["openmp"] = false;
#endif
  d["max_threads"] = hubcls::default_num_threads();
#ifdef HUBCLS_WITH_CUDA
  d["cuda"] = true;
  d["cuda_version"] = HUBCLS_CUDA_VERSION;
#else
  d["cuda"] = false;
  d["cuda_version"] = py::none();
#endif
  return d;
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "hubcls C++ core: fused preprocessing and augmentation kernels";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const hubcls::ArgumentError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("build_info", &build_info, "Build configuration of the C++ core as a dict");
}
