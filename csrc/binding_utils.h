// Helpers of the op bindings (csrc/ops/<op>.cpp): NumPy arrays -> the kernels' views, with the
// argument checks every op needs. Only binding files include pybind11.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>

#include "common.h"
#include "ops/batch.h"
#include "ops/image.h"
#include "ops/resize_crop_normalize.h"

namespace hubcls {
namespace bind {

namespace py = pybind11;

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

// A uint8 HW / HWC NumPy array as an ImageView; pixels must be packed, rows may be strided.
ImageView image_view(const py::handle& obj, size_t index);
// The same for an output image (must be writeable).
MutableImageView mutable_image_view(const py::handle& obj, size_t index);

// Checks that `out` is a writeable C-contiguous array of `count` elements of `itemsize` bytes.
void* out_buffer(py::array& out, py::ssize_t itemsize, py::ssize_t count);
// Checks that `out` has x's shape and dtype and is C-contiguous and writeable.
void check_out_like(py::array& out, const py::array& x);

// A 4-d C-contiguous float32 / float16 / uint8 array as a BatchView.
BatchView batch_view(py::array& a, bool nchw, bool need_writeable, const char* what);
// A device batch given as (pointer, shape) for the CUDA entry points.
BatchView device_batch(uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, OutDType dtype);

// The output parameters of resize_crop_normalize (and of the ops that end in its pass), checked.
RCNParams rcn_params(int64_t out_h, int64_t out_w, std::array<float, 3> mean, std::array<float, 3> std_, float scale,
                     Interp interp, bool antialias, bool nchw, OutDType dtype, bool swap_rb);

// (n_rows, n_cols) check of a parameter table with a message naming it.
void check_table(const py::array& a, py::ssize_t rows, py::ssize_t cols, const char* what);

template <class E>
E checked(E value, const char* what) {
  if (!is_valid(value))
    throw ArgumentError(std::string("unknown ") + what + " code " + std::to_string(static_cast<int>(value)));
  return value;
}

}  // namespace bind
}  // namespace hubcls
