// The Python module hubcls._C: assembles the op bindings (each op binds itself in
// csrc/ops/<op>_binding.cpp) and adds what belongs to the whole core: the enums several ops share,
// the CPU dispatch level, the CUDA runtime queries and the build facts.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "common.h"
#include "cpu_features.h"
#include "half.h"
#include "ops/image.h"
#include "ops/resample.h"
#ifdef HUBCLS_WITH_JPEG
#include "ops/jpeg_decode.h"
#endif
#ifdef HUBCLS_WITH_CUDA
#include "ops/cuda/runtime.h"
#endif

namespace py = pybind11;

namespace hubcls {
namespace bind {
// One line per op (csrc/ops/<op>_binding.cpp).
void bind_resize_crop_normalize(py::module_& m);
void bind_augment(py::module_& m);
void bind_erase(py::module_& m);
void bind_mix(py::module_& m);
void bind_jpeg_decode(py::module_& m);
}  // namespace bind
}  // namespace hubcls

namespace {

using hubcls::Isa;

std::vector<std::string> isa_names(bool (*pred)(Isa)) {
  std::vector<std::string> out;
  for (Isa isa : {Isa::Scalar, Isa::AVX2, Isa::AVX512})
    if (pred(isa)) out.push_back(hubcls::isa_name(isa));
  return out;
}

int cuda_devices() {
#ifdef HUBCLS_WITH_CUDA
  return hubcls::cuda_device_count();
#else
  return 0;
#endif
}

py::dict build_info() {
  py::dict d;
  d["version"] = HUBCLS_VERSION;
  d["compiler"] = HUBCLS_COMPILER;
  d["cxx_flags"] = HUBCLS_CXX_FLAGS;  // flags of every C++ file; the SIMD files add isa_flags
  d["isa_flags"] = HUBCLS_ISA_FLAGS;
  d["build_type"] = HUBCLS_BUILD_TYPE;
  d["cpu_isa"] = hubcls::isa_name(hubcls::active_isa());
  d["cpu_isas_compiled"] = isa_names(hubcls::isa_compiled);
  d["cpu_isas_supported"] = isa_names(hubcls::isa_supported);
#ifdef HUBCLS_WITH_OPENMP
  d["openmp"] = true;
#else
  d["openmp"] = false;
#endif
  d["max_threads"] = hubcls::default_num_threads();
#ifdef HUBCLS_WITH_JPEG
  d["jpeg"] = hubcls::jpeg_library_version();  // the crop-aware JPEG decoder's library
#else
  d["jpeg"] = py::none();
#endif
#ifdef HUBCLS_WITH_CUDA
  d["cuda_compiled"] = true;
  d["cuda_version"] = HUBCLS_CUDA_VERSION;
  d["cuda_archs"] = HUBCLS_CUDA_ARCHS;
#else
  d["cuda_compiled"] = false;
  d["cuda_version"] = py::none();
  d["cuda_archs"] = py::none();
#endif
  d["cuda_devices"] = cuda_devices();  // present now (0 without a GPU or driver)
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "hubcls C++ core: fused preprocessing and augmentation kernels";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const hubcls::ArgumentError& e) { PyErr_SetString(PyExc_ValueError, e.what()); }
  });

  // enums shared by several ops; Python reads their names (hubcls/ops/_common.py)
  py::enum_<hubcls::Interp>(m, "Interp", "Resampling filter (the `interpolation=` strings)")
      .value("nearest", hubcls::Interp::Nearest)
      .value("bilinear", hubcls::Interp::Bilinear)
      .value("bicubic", hubcls::Interp::Bicubic)
      .value("area", hubcls::Interp::Area);
  py::enum_<hubcls::OutDType>(m, "OutDType", "Element type of a batch (NumPy dtype names)")
      .value("float32", hubcls::OutDType::Float32)
      .value("float16", hubcls::OutDType::Float16)
      .value("uint8", hubcls::OutDType::UInt8);
  py::enum_<Isa>(m, "Isa", "Instruction-set level of the CPU kernels")
      .value("scalar", Isa::Scalar)
      .value("avx2", Isa::AVX2)
      .value("avx512", Isa::AVX512);

  m.def("build_info", &build_info, "Build configuration of the C++ core, and the CPU / CUDA devices it finds");
  m.def("active_isa", &hubcls::active_isa, "The instruction-set level the CPU kernels use now");
  m.def("set_active_isa", &hubcls::set_active_isa, py::arg("isa"),
        "Use the CPU kernels of this level (tests, benchmarks); ValueError if this CPU or build cannot");
  m.def(
      "supported_isas",
      []() {
        std::vector<Isa> out;
        for (Isa isa : {Isa::Scalar, Isa::AVX2, Isa::AVX512})
          if (hubcls::isa_supported(isa)) out.push_back(isa);
        return out;
      },
      "Levels compiled into this build that this CPU can run");
  m.def("float_to_half", &hubcls::float_to_half, "float -> IEEE half bits (round to nearest even), portable routine");

  hubcls::bind::bind_resize_crop_normalize(m);
  hubcls::bind::bind_augment(m);
  hubcls::bind::bind_erase(m);
  hubcls::bind::bind_mix(m);
  hubcls::bind::bind_jpeg_decode(m);  // present with libjpeg-turbo only (HUBCLS_WITH_JPEG)

#ifdef HUBCLS_WITH_CUDA
  m.def(
      "cuda_pointer_device",
      [](uintptr_t ptr) { return hubcls::cuda_pointer_device_of(reinterpret_cast<const void*>(ptr)); },
      "device ordinal of a CUDA pointer");
  m.def("cuda_device_count", &hubcls::cuda_device_count, "number of visible CUDA devices (0 without a driver)");
  m.def(
      "cuda_synchronize",
      [](int device) {
        py::gil_scoped_release r;
        hubcls::cuda_synchronize(device);
      },
      "cudaDeviceSynchronize");
#endif
}
