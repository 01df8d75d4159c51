// Python binding of the erase kernels (rectangle fills and mask fills, in place).
#include "binding_utils.h"
#include "ops/erase.h"

namespace hubcls {
namespace bind {
namespace {

void check_rects(const BatchView& b, const I32& rect_sample, const I32& rects, const F32& const_values,
                 const I64& pix_offset) {
  const py::ssize_t r = rect_sample.size();
  check_table(rects, r, 4, "rects");
  if (const_values.size() != r * b.c) throw ArgumentError("const_values must have n_rects * channels entries");
  if (pix_offset.size() != r) throw ArgumentError("pix_offset must have one entry per rect");
}

void fill_rects(py::array batch, bool nchw, I32 rect_sample, I32 rects, F32 const_values, I64 pix_offset, F32 pixels,
                int num_threads) {
  const BatchView b = batch_view(batch, nchw, true, "batch");
  check_rects(b, rect_sample, rects, const_values, pix_offset);
  py::gil_scoped_release release;
  fill_rects_cpu(b, rect_sample.size(), rect_sample.data(), rects.data(), const_values.data(), pix_offset.data(),
                 pixels.data(), pixels.size(), num_threads);
}

void check_masks(const BatchView& b, const U8& masks, const F32& value) {
  if (masks.size() != b.n * b.h * b.w || (masks.ndim() == 3 && (masks.shape(1) != b.h || masks.shape(2) != b.w)))
    throw ArgumentError("masks must have shape (N, H, W) matching the batch");
  if (value.size() != b.c) throw ArgumentError("value must have one entry per channel");
}

void mask_fill(py::array batch, bool nchw, U8 masks, F32 value, int num_threads) {
  const BatchView b = batch_view(batch, nchw, true, "batch");
  check_masks(b, masks, value);
  py::gil_scoped_release release;
  mask_fill_cpu(b, masks.data(), value.data(), num_threads);
}

#ifdef HUBCLS_WITH_CUDA
void fill_rects_on_device(uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, OutDType dtype, I32 rect_sample,
                          I32 rects, F32 const_values, I64 pix_offset, F32 pixels, int device, uintptr_t stream) {
  const BatchView b = device_batch(ptr, shape, nchw, dtype);
  check_rects(b, rect_sample, rects, const_values, pix_offset);
  py::gil_scoped_release release;
  fill_rects_cuda(b, rect_sample.size(), rect_sample.data(), rects.data(), const_values.data(), pix_offset.data(),
                  pixels.data(), pixels.size(), device, stream);
}

void mask_fill_on_device(uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, OutDType dtype, U8 masks, F32 value,
                         int device, uintptr_t stream) {
  const BatchView b = device_batch(ptr, shape, nchw, dtype);
  check_masks(b, masks, value);
  py::gil_scoped_release release;
  mask_fill_cuda(b, masks.data(), value.data(), device, stream);
}
#endif

}  // namespace

void bind_erase(py::module_& m) {
  m.def("fill_rects", &fill_rects, py::arg("batch"), py::arg("nchw"), py::arg("rect_sample"), py::arg("rects"),
        py::arg("const_values"), py::arg("pix_offset"), py::arg("pixels"), py::arg("num_threads"),
        "Paint rectangles (constant or per-pixel values) into a batch in place");
  m.def("mask_fill", &mask_fill, py::arg("batch"), py::arg("nchw"), py::arg("masks"), py::arg("value"),
        py::arg("num_threads"), "Set pixels where masks == 0 to value, in place");
#ifdef HUBCLS_WITH_CUDA
  m.def("fill_rects_cuda", &fill_rects_on_device, "CUDA fill_rects on a device batch");
  m.def("mask_fill_cuda", &mask_fill_on_device, "CUDA mask_fill on a device batch");
#endif
}

}  // namespace bind
}  // namespace hubcls
