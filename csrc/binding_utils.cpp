// Helpers of the op bindings (see binding_utils.h).
#include "binding_utils.h"

#include <algorithm>

namespace hubcls {
namespace bind {

ImageView image_view(const py::handle& obj, size_t index) {
  const std::string name = "image " + std::to_string(index);
  if (!py::isinstance<py::array>(obj)) throw py::type_error(name + " is not a numpy array");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (arr.dtype().kind() != 'u' || arr.itemsize() != 1) throw py::type_error(name + " must be uint8");
  ImageView v;
  if (arr.ndim() == 2) {
    v.h = arr.shape(0);
    v.w = arr.shape(1);
    v.c = 1;
    if (arr.strides(1) != 1) throw ArgumentError(name + ": pixels must be contiguous");
  } else if (arr.ndim() == 3) {
    v.h = arr.shape(0);
    v.w = arr.shape(1);
    v.c = arr.shape(2);
    if (arr.strides(2) != 1 || arr.strides(1) != v.c) throw ArgumentError(name + ": pixels must be contiguous");
  } else {
    throw ArgumentError(name + " must have 2 (HW) or 3 (HWC) dimensions, got " + std::to_string(arr.ndim()));
  }
  v.row_stride = arr.strides(0);
  if (v.h > 1 && v.row_stride < v.w * v.c) throw ArgumentError(name + ": bad row stride");
  if (v.h == 1) v.row_stride = v.w * v.c;
  v.data = static_cast<const uint8_t*>(arr.data());
  return v;
}

MutableImageView mutable_image_view(const py::handle& obj, size_t index) {
  const ImageView v = image_view(obj, index);
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.writeable()) throw ArgumentError("output " + std::to_string(index) + " is not writeable");
  return {static_cast<uint8_t*>(arr.mutable_data()), v.h, v.w, v.c, v.row_stride};
}

void* out_buffer(py::array& out, py::ssize_t itemsize, py::ssize_t count) {
  if (!(out.flags() & py::array::c_style)) throw ArgumentError("out must be C-contiguous");
  if (!out.writeable()) throw ArgumentError("out must be writeable");
  if (out.itemsize() != itemsize || out.size() != count) throw ArgumentError("out has the wrong dtype or shape");
  return out.mutable_data();
}

void check_out_like(py::array& out, const py::array& x) {
  if (out.ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), out.shape()) || !out.dtype().is(x.dtype()))
    throw ArgumentError("out must have the batch's shape and dtype");
  if (!(out.flags() & py::array::c_style) || !out.writeable())
    throw ArgumentError("out must be C-contiguous and writeable");
}

BatchView batch_view(py::array& a, bool nchw, bool need_writeable, const char* what) {
  const std::string w(what);
  if (a.ndim() != 4)
    throw ArgumentError(w + " must be a 4-d batch (NCHW or NHWC), got " + std::to_string(a.ndim()) + " dims");
  if (!(a.flags() & py::array::c_style)) throw ArgumentError(w + " must be C-contiguous");
  if (need_writeable && !a.writeable()) throw ArgumentError(w + " must be writeable");
  BatchView b;
  const char k = a.dtype().kind();
  if (k == 'f' && a.itemsize() == 4) b.dtype = OutDType::Float32;
  else if (k == 'f' && a.itemsize() == 2) b.dtype = OutDType::Float16;
  else if (k == 'u' && a.itemsize() == 1) b.dtype = OutDType::UInt8;
  else throw py::type_error(w + " must be float32, float16 or uint8");
  b.data = need_writeable ? a.mutable_data() : const_cast<void*>(a.data());
  b.nchw = nchw;
  b.n = a.shape(0);
  if (nchw) {
    b.c = a.shape(1);
    b.h = a.shape(2);
    b.w = a.shape(3);
  } else {
    b.h = a.shape(1);
    b.w = a.shape(2);
    b.c = a.shape(3);
  }
  if (b.c <= 0 || b.h <= 0 || b.w <= 0) throw ArgumentError(w + " has an empty dimension");
  return b;
}

BatchView device_batch(uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, OutDType dtype) {
  if (!ptr) throw ArgumentError("device batch pointer is null");
  BatchView b;
  b.data = reinterpret_cast<void*>(ptr);
  b.n = shape[0];
  if (nchw) {
    b.c = shape[1];
    b.h = shape[2];
    b.w = shape[3];
  } else {
    b.h = shape[1];
    b.w = shape[2];
    b.c = shape[3];
  }
  b.nchw = nchw;
  b.dtype = checked(dtype, "dtype");
  if (b.n < 0 || b.c <= 0 || b.h <= 0 || b.w <= 0) throw ArgumentError("device batch has an empty dimension");
  return b;
}

void check_table(const py::array& a, py::ssize_t rows, py::ssize_t cols, const char* what) {
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols)
    throw ArgumentError(std::string(what) + " must have shape (" + std::to_string(rows) + ", " + std::to_string(cols) +
                        ")");
}

}  // namespace bind
}  // namespace hubcls
