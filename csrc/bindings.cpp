// Python bindings of the hubcls core (module hubcls._C). Each op lives in csrc/ops/<op>.h with its
// CPU kernel in csrc/ops/cpu/<op>.cpp (and CUDA kernel in csrc/ops/cuda/<op>.cu); this file only
// binds them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "common.h"
#include "ops/augment.h"
#include "ops/erase.h"
#include "ops/mix.h"
#include "ops/resize_crop_normalize.h"
#ifdef HUBCLS_WITH_CUDA
#include "ops/cuda/runtime.h"
#endif

namespace py = pybind11;
using hubcls::ArgumentError;

namespace {

// A uint8 image (HW or HWC) as an ImageView; pixels must be packed, rows may be strided.
hubcls::ImageView image_view(const py::handle& obj, size_t index) {
  if (!py::isinstance<py::array>(obj)) throw py::type_error("image " + std::to_string(index) + " is not a numpy array");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!py::dtype::of<uint8_t>().is(arr.dtype()) && arr.dtype().kind() != 'u')
    throw py::type_error("image " + std::to_string(index) + " must be uint8");
  if (arr.itemsize() != 1) throw py::type_error("image " + std::to_string(index) + " must be uint8");
  hubcls::ImageView v;
  if (arr.ndim() == 2) {
    v.h = arr.shape(0); v.w = arr.shape(1); v.c = 1;
    if (arr.strides(1) != 1) throw ArgumentError("image " + std::to_string(index) + ": pixels must be contiguous");
  } else if (arr.ndim() == 3) {
    v.h = arr.shape(0); v.w = arr.shape(1); v.c = arr.shape(2);
    if (arr.strides(2) != 1 || arr.strides(1) != v.c)
      throw ArgumentError("image " + std::to_string(index) + ": pixels must be contiguous");
  } else {
    throw ArgumentError("image " + std::to_string(index) + " must have 2 (HW) or 3 (HWC) dimensions, got " +
                        std::to_string(arr.ndim()));
  }
  v.row_stride = arr.strides(0);
  if (v.h > 1 && v.row_stride < v.w * v.c) throw ArgumentError("image " + std::to_string(index) + ": bad row stride");
  if (v.h == 1) v.row_stride = v.w * v.c;
  v.data = static_cast<const uint8_t*>(arr.data());
  return v;
}

// Checks that `out` is a writeable C-contiguous array of `itemsize`-byte elements and `count` elements.
void* out_buffer(py::array& out, py::ssize_t itemsize, py::ssize_t count) {
  if (!(out.flags() & py::array::c_style)) throw ArgumentError("out must be C-contiguous");
  if (!out.writeable()) throw ArgumentError("out must be writeable");
  if (out.itemsize() != itemsize || out.size() != count) throw ArgumentError("out has the wrong dtype or shape");
  return out.mutable_data();
}

void bind_resize_crop_normalize(py::list images, py::array_t<double, py::array::c_style | py::array::forcecast> boxes,
                                py::object flips, py::array out, int64_t out_h, int64_t out_w,
                                std::array<float, 3> mean, std::array<float, 3> std_, float scale, int interp,
                                bool antialias, bool nchw, int dtype, bool swap_rb, int num_threads) {
  const size_t n = images.size();
  std::vector<hubcls::ImageView> views;
  views.reserve(n);
  for (size_t i = 0; i < n; ++i) views.push_back(image_view(images[i], i));
  if (boxes.ndim() != 2 || boxes.shape(0) != static_cast<py::ssize_t>(n) || boxes.shape(1) != 4)
    throw ArgumentError("boxes must have shape (n_images, 4)");
  py::array_t<uint8_t, py::array::c_style | py::array::forcecast> fl;
  const uint8_t* fptr = nullptr;
  if (!flips.is_none()) {
    fl = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(flips);
    if (!fl || fl.size() != static_cast<py::ssize_t>(n)) throw ArgumentError("flip must have one entry per image");
    fptr = fl.data();
  }
  if (interp < 0 || interp > 3) throw ArgumentError("bad interpolation code");
  if (dtype < 0 || dtype > 2) throw ArgumentError("bad dtype code");
  hubcls::RCNParams p;
  p.out_h = out_h; p.out_w = out_w;
  for (int c = 0; c < 3; ++c) { p.mean[c] = mean[c]; p.std[c] = std_[c]; }
  p.scale = scale;
  p.interp = static_cast<hubcls::Interp>(interp);
  p.antialias = antialias;
  p.nchw = nchw;
  p.dtype = static_cast<hubcls::OutDType>(dtype);
  p.swap_rb = swap_rb;
  const py::ssize_t isz = dtype == 0 ? 4 : (dtype == 1 ? 2 : 1);
  if (out_h <= 0 || out_w <= 0) throw ArgumentError("output size must be positive");
  void* optr = out_buffer(out, isz, static_cast<py::ssize_t>(n) * 3 * out_h * out_w);
  const double* bptr = boxes.data();
  py::gil_scoped_release release;
  hubcls::resize_crop_normalize_cpu(views, bptr, fptr, optr, p, num_threads);
}

py::array_t<float> bind_resample_coeffs(int64_t in_size, double box0, double box_len, int64_t out_size, int interp,
                                        bool antialias, py::array_t<int32_t>& start_out) {
  auto c = hubcls::compute_resample_coeffs(in_size, box0, box_len, out_size, static_cast<hubcls::Interp>(interp), antialias);
  py::array_t<float> w({static_cast<py::ssize_t>(out_size), static_cast<py::ssize_t>(c.taps)});
  std::copy(c.weight.begin(), c.weight.end(), w.mutable_data());
  start_out = py::array_t<int32_t>(static_cast<py::ssize_t>(out_size));
  std::copy(c.start.begin(), c.start.end(), start_out.mutable_data());
  return w;
}

// A 4-d C-contiguous float32/float16/uint8 array as a BatchView.
hubcls::BatchView batch_view(py::array& a, bool nchw, bool need_writeable, const char* what) {
  if (a.ndim() != 4) throw ArgumentError(std::string(what) + " must be a 4-d batch (NCHW or NHWC), got " + std::to_string(a.ndim()) + " dims");
  if (!(a.flags() & py::array::c_style)) throw ArgumentError(std::string(what) + " must be C-contiguous");
  if (need_writeable && !a.writeable()) throw ArgumentError(std::string(what) + " must be writeable");
  hubcls::BatchView b;
  const char k = a.dtype().kind();
  if (k == 'f' && a.itemsize() == 4) b.dtype = hubcls::OutDType::Float32;
  else if (k == 'f' && a.itemsize() == 2) b.dtype = hubcls::OutDType::Float16;
  else if (k == 'u' && a.itemsize() == 1) b.dtype = hubcls::OutDType::UInt8;
  else throw py::type_error(std::string(what) + " must be float32, float16 or uint8");
  b.data = need_writeable ? a.mutable_data() : const_cast<void*>(a.data());
  b.nchw = nchw;
  b.n = a.shape(0);
  if (nchw) { b.c = a.shape(1); b.h = a.shape(2); b.w = a.shape(3); }
  else { b.h = a.shape(1); b.w = a.shape(2); b.c = a.shape(3); }
  if (b.c <= 0 || b.h <= 0 || b.w <= 0) throw ArgumentError(std::string(what) + " has an empty dimension");
  return b;
}

using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

void bind_fill_rects(py::array batch, bool nchw, I32 rect_sample, I32 rects, F32 const_values, I64 pix_offset,
                     F32 pixels, int num_threads) {
  auto b = batch_view(batch, nchw, true, "batch");
  const py::ssize_t r = rect_sample.size();
  if (rects.ndim() != 2 || rects.shape(0) != r || rects.shape(1) != 4) throw ArgumentError("rects must have shape (n_rects, 4)");
  if (const_values.size() != r * b.c) throw ArgumentError("const_values must have n_rects * channels entries");
  if (pix_offset.size() != r) throw ArgumentError("pix_offset must have one entry per rect");
  py::gil_scoped_release release;
  hubcls::fill_rects_cpu(b, r, rect_sample.data(), rects.data(), const_values.data(), pix_offset.data(), pixels.data(),
                         pixels.size(), num_threads);
}

void bind_mask_fill(py::array batch, bool nchw, U8 masks, F32 value, int num_threads) {
  auto b = batch_view(batch, nchw, true, "batch");
  if (masks.ndim() != 3 || masks.shape(0) != b.n || masks.shape(1) != b.h || masks.shape(2) != b.w)
    throw ArgumentError("masks must have shape (N, H, W) matching the batch");
  if (value.size() != b.c) throw ArgumentError("value must have one entry per channel");
  py::gil_scoped_release release;
  hubcls::mask_fill_cpu(b, masks.data(), value.data(), num_threads);
}

void check_out_like(py::array& out, const py::array& x) {
  if (out.ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), out.shape()) || !out.dtype().is(x.dtype()))
    throw ArgumentError("out must have the batch's shape and dtype");
  if (!(out.flags() & py::array::c_style) || !out.writeable()) throw ArgumentError("out must be C-contiguous and writeable");
}

void bind_mix_blend(py::array x, bool nchw, I64 perm, F32 lam, py::array out, int num_threads) {
  auto b = batch_view(x, nchw, false, "batch");
  check_out_like(out, x);
  if (perm.size() != b.n || lam.size() != b.n) throw ArgumentError("perm and lam must have one entry per sample");
  void* o = out.mutable_data();
  py::gil_scoped_release release;
  hubcls::mix_blend_cpu(b, perm.data(), lam.data(), o, num_threads);
}

void bind_mix_paste(py::array x, bool nchw, I64 perm, I32 boxes, py::array out, int num_threads) {
  auto b = batch_view(x, nchw, false, "batch");
  check_out_like(out, x);
  if (perm.size() != b.n || boxes.size() != 4 * b.n) throw ArgumentError("perm and boxes must have one entry per sample");
  void* o = out.mutable_data();
  py::gil_scoped_release release;
  hubcls::mix_paste_cpu(b, perm.data(), boxes.data(), o, num_threads);
}

void bind_augment(int op, py::list images, py::list outputs, py::array_t<double, py::array::c_style | py::array::forcecast> params,
                  int interp, U8 fill, int num_threads) {
  const size_t n = images.size();
  if (outputs.size() != n) throw ArgumentError("need one output per image");
  if (params.ndim() != 2 || params.shape(0) != static_cast<py::ssize_t>(n) || params.shape(1) != 6)
    throw ArgumentError("params must have shape (n_images, 6)");
  std::vector<hubcls::ImageView> in;
  std::vector<hubcls::MutableImageView> out;
  for (size_t i = 0; i < n; ++i) {
    in.push_back(image_view(images[i], i));
    auto o = image_view(outputs[i], i);
    auto arr = py::reinterpret_borrow<py::array>(outputs[i]);
    if (!arr.writeable()) throw ArgumentError("output " + std::to_string(i) + " is not writeable");
    out.push_back({static_cast<uint8_t*>(arr.mutable_data()), o.h, o.w, o.c, o.row_stride});
    if (fill.size() < in.back().c) throw ArgumentError("fill must have one value per channel");
  }
  py::gil_scoped_release release;
  hubcls::augment_cpu(static_cast<hubcls::AugOp>(op), in, out, params.data(), interp, fill.data(), num_threads);
}

#ifdef HUBCLS_WITH_CUDA
// ---- CUDA entry points: device pointers come in as integers (from __cuda_array_interface__ /
// DLPack in hubcls.ops._device); small parameter tables stay host arrays and are uploaded.

hubcls::BatchView device_batch(uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, int dtype) {
  if (!ptr) throw ArgumentError("device batch pointer is null");
  if (dtype < 0 || dtype > 2) throw ArgumentError("bad dtype code");
  hubcls::BatchView b;
  b.data = reinterpret_cast<void*>(ptr);
  b.n = shape[0];
  if (nchw) { b.c = shape[1]; b.h = shape[2]; b.w = shape[3]; }
  else { b.h = shape[1]; b.w = shape[2]; b.c = shape[3]; }
  b.nchw = nchw;
  b.dtype = static_cast<hubcls::OutDType>(dtype);
  if (b.n < 0 || b.c <= 0 || b.h <= 0 || b.w <= 0) throw ArgumentError("device batch has an empty dimension");
  return b;
}

void bind_rcn_cuda(std::vector<uintptr_t> ptrs, I64 geoms, py::array_t<double, py::array::c_style | py::array::forcecast> boxes,
                   py::object flips, uintptr_t out, int64_t out_h, int64_t out_w, std::array<float, 3> mean,
                   std::array<float, 3> std_, float scale, int interp, bool antialias, bool nchw, int dtype, bool swap_rb,
                   int device, uintptr_t stream) {
  const size_t n = ptrs.size();
  if (geoms.ndim() != 2 || geoms.shape(0) != static_cast<py::ssize_t>(n) || geoms.shape(1) != 4)
    throw ArgumentError("geoms must have shape (n_images, 4): h, w, c, row_stride");
  if (boxes.ndim() != 2 || boxes.shape(0) != static_cast<py::ssize_t>(n) || boxes.shape(1) != 4)
    throw ArgumentError("boxes must have shape (n_images, 4)");
  if (interp < 0 || interp > 3 || dtype < 0 || dtype > 2) throw ArgumentError("bad interpolation or dtype code");
  if (!out) throw ArgumentError("out pointer is null");
  U8 fl;
  if (!flips.is_none()) {
    fl = U8::ensure(flips);
    if (!fl || fl.size() != static_cast<py::ssize_t>(n)) throw ArgumentError("flip must have one entry per image");
  }
  std::vector<hubcls::DeviceImage> imgs(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t* g = geoms.data() + 4 * i;
    imgs[i] = {reinterpret_cast<const uint8_t*>(ptrs[i]), g[0], g[1], g[2], g[3], {0, 0, 0, 0},
               flips.is_none() ? 0 : static_cast<int32_t>(fl.data()[i] != 0)};
    for (int k = 0; k < 4; ++k) imgs[i].box[k] = boxes.data()[4 * i + k];
    // the CPU kernel clamps a box overshooting its image by < 1e-3 px; do the same
    double* b = imgs[i].box;
    const bool tolerated = b[0] >= -1e-3 && b[1] >= -1e-3 && b[0] + b[2] <= g[1] + 1e-3 && b[1] + b[3] <= g[0] + 1e-3;
    if (tolerated && std::isfinite(b[0]) && std::isfinite(b[1]) && b[2] > 0 && b[3] > 0) {
      const double x = std::max(b[0], 0.0), y = std::max(b[1], 0.0);
      const double w = std::min(b[2], static_cast<double>(g[1]) - x), h = std::min(b[3], static_cast<double>(g[0]) - y);
      b[0] = x; b[1] = y;
      if (w > 0) b[2] = w;
      if (h > 0) b[3] = h;
    }
  }
  hubcls::RCNParams p;
  p.out_h = out_h; p.out_w = out_w;
  for (int c = 0; c < 3; ++c) { p.mean[c] = mean[c]; p.std[c] = std_[c]; }
  p.scale = scale;
  p.interp = static_cast<hubcls::Interp>(interp);
  p.antialias = antialias; p.nchw = nchw;
  p.dtype = static_cast<hubcls::OutDType>(dtype);
  p.swap_rb = swap_rb;
  py::gil_scoped_release release;
  hubcls::resize_crop_normalize_cuda(imgs, reinterpret_cast<void*>(out), p, device, stream);
}

void bind_fill_rects_cuda(uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, int dtype, I32 rect_sample, I32 rects,
                          F32 const_values, I64 pix_offset, F32 pixels, int device, uintptr_t stream) {
  auto b = device_batch(ptr, shape, nchw, dtype);
  const py::ssize_t r = rect_sample.size();
  if (rects.ndim() != 2 || rects.shape(0) != r || rects.shape(1) != 4) throw ArgumentError("rects must have shape (n_rects, 4)");
  if (const_values.size() != r * b.c || pix_offset.size() != r) throw ArgumentError("const_values / pix_offset do not match the rects");
  py::gil_scoped_release release;
  hubcls::fill_rects_cuda(b, r, rect_sample.data(), rects.data(), const_values.data(), pix_offset.data(), pixels.data(),
                          pixels.size(), device, stream);
}

void bind_mask_fill_cuda(uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, int dtype, U8 masks, F32 value, int device,
                         uintptr_t stream) {
  auto b = device_batch(ptr, shape, nchw, dtype);
  if (masks.size() != b.n * b.h * b.w) throw ArgumentError("masks must have shape (N, H, W) matching the batch");
  if (value.size() != b.c) throw ArgumentError("value must have one entry per channel");
  py::gil_scoped_release release;
  hubcls::mask_fill_cuda(b, masks.data(), value.data(), device, stream);
}

void bind_mix_cuda(bool paste, uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, int dtype, I64 perm, py::array params,
                   uintptr_t out, int device, uintptr_t stream) {
  auto b = device_batch(ptr, shape, nchw, dtype);
  if (perm.size() != b.n) throw ArgumentError("perm must have one entry per sample");
  if (!out) throw ArgumentError("out pointer is null");
  if (paste) {
    auto boxes = I32::ensure(params);
    if (!boxes || boxes.size() != 4 * b.n) throw ArgumentError("boxes must have shape (N, 4)");
    py::gil_scoped_release release;
    hubcls::mix_paste_cuda(b, perm.data(), boxes.data(), reinterpret_cast<void*>(out), device, stream);
  } else {
    auto lam = F32::ensure(params);
    if (!lam || lam.size() != b.n) throw ArgumentError("lam must have one entry per sample");
    py::gil_scoped_release release;
    hubcls::mix_blend_cuda(b, perm.data(), lam.data(), reinterpret_cast<void*>(out), device, stream);
  }
}

void bind_augment_cuda(int op, std::vector<uintptr_t> in_ptrs, I64 in_geoms, std::vector<uintptr_t> out_ptrs, I64 out_geoms,
                       py::array_t<double, py::array::c_style | py::array::forcecast> params, int interp, U8 fill,
                       int device, uintptr_t stream) {
  const size_t n = in_ptrs.size();
  if (out_ptrs.size() != n) throw ArgumentError("need one output per image");
  auto ok = [&](const I64& g) { return g.ndim() == 2 && g.shape(0) == static_cast<py::ssize_t>(n) && g.shape(1) == 4; };
  if (!ok(in_geoms) || !ok(out_geoms)) throw ArgumentError("geoms must have shape (n_images, 4): h, w, c, row_stride");
  if (params.ndim() != 2 || params.shape(0) != static_cast<py::ssize_t>(n) || params.shape(1) != 6)
    throw ArgumentError("params must have shape (n_images, 6)");
  if (fill.size() < 3) throw ArgumentError("fill must have 3 values");
  if (op < 0 || op > 9) throw ArgumentError("unknown augment op");
  std::vector<hubcls::ImageView> in(n);
  std::vector<hubcls::MutableImageView> out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t* g = in_geoms.data() + 4 * i;
    const int64_t* q = out_geoms.data() + 4 * i;
    in[i] = {reinterpret_cast<const uint8_t*>(in_ptrs[i]), g[0], g[1], g[2], g[3]};
    out[i] = {reinterpret_cast<uint8_t*>(out_ptrs[i]), q[0], q[1], q[2], q[3]};
    if (g[3] < g[1] * g[2] || q[3] < q[1] * q[2]) throw ArgumentError("bad row stride");
  }
  py::gil_scoped_release release;
  hubcls::augment_cuda(static_cast<hubcls::AugOp>(op), in, out, params.data(), interp, fill.data(), device, stream);
}

int cuda_pointer_device(uintptr_t ptr) { return hubcls::cuda_pointer_device_of(reinterpret_cast<const void*>(ptr)); }
#endif

}  // namespace

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
  m.def("resize_crop_normalize", &bind_resize_crop_normalize, py::arg("images"), py::arg("boxes"), py::arg("flips"),
        py::arg("out"), py::arg("out_h"), py::arg("out_w"), py::arg("mean"), py::arg("std"), py::arg("scale"),
        py::arg("interp"), py::arg("antialias"), py::arg("nchw"), py::arg("dtype"), py::arg("swap_rb"),
        py::arg("num_threads"), "Fused crop+resize+flip+normalize of uint8 images into `out` (see hubcls.ops)");
  m.def("resample_coeffs", [](int64_t in_size, double box0, double box_len, int64_t out_size, int interp, bool antialias) {
        py::array_t<int32_t> start;
        auto w = bind_resample_coeffs(in_size, box0, box_len, out_size, interp, antialias, start);
        return py::make_tuple(start, w);
      }, "Resampling taps (start, weights) of one axis, for tests and the CUDA path");
  m.def("float_to_half", [](float f) { return hubcls::float_to_half(f); }, "float -> IEEE half bits (RNE)");
  m.def("fill_rects", &bind_fill_rects, py::arg("batch"), py::arg("nchw"), py::arg("rect_sample"), py::arg("rects"),
        py::arg("const_values"), py::arg("pix_offset"), py::arg("pixels"), py::arg("num_threads"),
        "Paint rectangles (constant or per-pixel values) into a batch in place");
  m.def("mask_fill", &bind_mask_fill, py::arg("batch"), py::arg("nchw"), py::arg("masks"), py::arg("value"),
        py::arg("num_threads"), "Set pixels where masks == 0 to value, in place");
  m.def("mix_blend", &bind_mix_blend, py::arg("x"), py::arg("nchw"), py::arg("perm"), py::arg("lam"), py::arg("out"),
        py::arg("num_threads"), "out[i] = lam[i] x[i] + (1 - lam[i]) x[perm[i]]");
  m.def("mix_paste", &bind_mix_paste, py::arg("x"), py::arg("nchw"), py::arg("perm"), py::arg("boxes"), py::arg("out"),
        py::arg("num_threads"), "out[i] = x[i] with boxes[i] taken from x[perm[i]]");
  m.def("augment", &bind_augment, py::arg("op"), py::arg("images"), py::arg("outputs"), py::arg("params"),
        py::arg("interp"), py::arg("fill"), py::arg("num_threads"), "Pillow-exact augment primitive over a list of images");
#ifdef HUBCLS_WITH_CUDA
  m.def("resize_crop_normalize_cuda", &bind_rcn_cuda, "CUDA resize_crop_normalize on device pointers");
  m.def("fill_rects_cuda", &bind_fill_rects_cuda, "CUDA fill_rects on a device batch");
  m.def("mask_fill_cuda", &bind_mask_fill_cuda, "CUDA mask_fill on a device batch");
  m.def("mix_cuda", &bind_mix_cuda, "CUDA mixup (paste=False) / cutmix (paste=True) on a device batch");
  m.def("augment_cuda", &bind_augment_cuda, "CUDA Pillow-exact augment primitive over device images");
  m.def("cuda_pointer_device", &cuda_pointer_device, "device ordinal of a CUDA pointer");
  m.def("cuda_device_count", []() { return hubcls::cuda_device_count(); }, "number of visible CUDA devices (0 without a driver)");
  m.def("cuda_synchronize", [](int device) { py::gil_scoped_release r; hubcls::cuda_synchronize(device); }, "cudaDeviceSynchronize");
#endif
  m.def("_float_to_half_soft", [](float f) { return hubcls::float_to_half_soft(f); }, "portable float -> half");
}
