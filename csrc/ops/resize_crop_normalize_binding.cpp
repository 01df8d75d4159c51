// Python binding of resize_crop_normalize (CPU, and CUDA when built with it) and of the resampling
// coefficient table it uses.
#include <algorithm>
#include <vector>

#include "binding_utils.h"
#include "ops/resize_crop_normalize.h"

namespace hubcls {
namespace bind {

RCNParams rcn_params(int64_t out_h, int64_t out_w, std::array<float, 3> mean, std::array<float, 3> std_, float scale,
                     Interp interp, bool antialias, bool nchw, OutDType dtype, bool swap_rb) {
  RCNParams p;
  p.out_h = out_h;
  p.out_w = out_w;
  std::copy(mean.begin(), mean.end(), p.mean);
  std::copy(std_.begin(), std_.end(), p.std);
  p.scale = scale;
  p.interp = interp;
  p.antialias = antialias;
  p.nchw = nchw;
  p.dtype = dtype;
  p.swap_rb = swap_rb;
  check_params(p);
  return p;
}

namespace {

// flips: None or one entry per image -> a uint8 array (empty for None).
U8 flip_bytes(const py::object& flips, size_t n) {
  if (flips.is_none()) return U8();
  U8 fl = U8::ensure(flips);
  if (!fl || fl.size() != static_cast<py::ssize_t>(n)) throw ArgumentError("flip must have one entry per image");
  return fl;
}

void rcn_cpu(py::list images, F64 boxes, py::object flips, py::array out, int64_t out_h, int64_t out_w,
             std::array<float, 3> mean, std::array<float, 3> std_, float scale, Interp interp, bool antialias,
             bool nchw, OutDType dtype, bool swap_rb, int num_threads) {
  const size_t n = images.size();
  std::vector<ImageView> views;
  views.reserve(n);
  for (size_t i = 0; i < n; ++i) views.push_back(image_view(images[i], i));
  check_table(boxes, static_cast<py::ssize_t>(n), 4, "boxes");
  const U8 fl = flip_bytes(flips, n);
  const RCNParams p = rcn_params(out_h, out_w, mean, std_, scale, interp, antialias, nchw, dtype, swap_rb);
  void* optr = out_buffer(out, itemsize(dtype), static_cast<py::ssize_t>(n) * 3 * out_h * out_w);
  const double* bptr = boxes.data();
  const uint8_t* fptr = flips.is_none() ? nullptr : fl.data();
  py::gil_scoped_release release;
  resize_crop_normalize_cpu(views, bptr, fptr, optr, p, num_threads);
}

py::tuple resample_coeffs(int64_t in_size, double box0, double box_len, int64_t out_size, Interp interp,
                          bool antialias) {
  const auto c = compute_resample_coeffs(in_size, box0, box_len, out_size, checked(interp, "interpolation"), antialias);
  py::array_t<float> w({static_cast<py::ssize_t>(out_size), static_cast<py::ssize_t>(c.taps)});
  std::copy(c.weight.begin(), c.weight.end(), w.mutable_data());
  py::array_t<int32_t> start(static_cast<py::ssize_t>(out_size));
  std::copy(c.start.begin(), c.start.end(), start.mutable_data());
  return py::make_tuple(start, w);
}

#ifdef HUBCLS_WITH_CUDA
// Device pointers come in as integers (hubcls.ops._device reads them from __cuda_array_interface__
// / DLPack); the per-image geometry, boxes and flips stay host arrays.
void rcn_cuda(std::vector<uintptr_t> ptrs, I64 geoms, F64 boxes, py::object flips, uintptr_t out, int64_t out_h,
              int64_t out_w, std::array<float, 3> mean, std::array<float, 3> std_, float scale, Interp interp,
              bool antialias, bool nchw, OutDType dtype, bool swap_rb, int device, uintptr_t stream) {
  const size_t n = ptrs.size();
  check_table(geoms, static_cast<py::ssize_t>(n), 4, "geoms (h, w, c, row_stride)");
  check_table(boxes, static_cast<py::ssize_t>(n), 4, "boxes");
  if (!out) throw ArgumentError("out pointer is null");
  const U8 fl = flip_bytes(flips, n);
  std::vector<DeviceImage> imgs(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t* g = geoms.data() + 4 * i;
    imgs[i] = {reinterpret_cast<const uint8_t*>(ptrs[i]),
               g[0],
               g[1],
               g[2],
               g[3],
               {0, 0, 0, 0},
               flips.is_none() ? 0 : static_cast<int32_t>(fl.data()[i] != 0)};
    std::copy(boxes.data() + 4 * i, boxes.data() + 4 * i + 4, imgs[i].box);
  }
  const RCNParams p = rcn_params(out_h, out_w, mean, std_, scale, interp, antialias, nchw, dtype, swap_rb);
  py::gil_scoped_release release;
  resize_crop_normalize_cuda(imgs, reinterpret_cast<void*>(out), p, device, stream);
}
#endif

}  // namespace

void bind_resize_crop_normalize(py::module_& m) {
  m.def("resize_crop_normalize", &rcn_cpu, py::arg("images"), py::arg("boxes"), py::arg("flips"), py::arg("out"),
        py::arg("out_h"), py::arg("out_w"), py::arg("mean"), py::arg("std"), py::arg("scale"), py::arg("interp"),
        py::arg("antialias"), py::arg("nchw"), py::arg("dtype"), py::arg("swap_rb"), py::arg("num_threads"),
        "Fused crop+resize+flip+normalize of uint8 images into `out` (see hubcls.ops)");
  m.def("resample_coeffs", &resample_coeffs, py::arg("in_size"), py::arg("box0"), py::arg("box_len"),
        py::arg("out_size"), py::arg("interp"), py::arg("antialias"),
        "Resampling taps (start, weights) of one axis, as the CPU kernel uses them");
#ifdef HUBCLS_WITH_CUDA
  m.def("resize_crop_normalize_cuda", &rcn_cuda, "CUDA resize_crop_normalize on device pointers");
#endif
}

}  // namespace bind
}  // namespace hubcls
