// Python binding of jpeg_decode_resize (ops/jpeg_decode.h): hubcls._C.jpeg_decode_resize and
// hubcls._C.jpeg_library, bound only when the core was built with libjpeg-turbo (HUBCLS_WITH_JPEG);
// hubcls.ops.jpeg checks for them and the data layer falls back to OpenCV/Pillow.
#include <algorithm>
#include <string>
#include <vector>

#include "binding_utils.h"
#ifdef HUBCLS_WITH_JPEG
#include "ops/jpeg_decode.h"
#endif

namespace hubcls {
namespace bind {

#ifdef HUBCLS_WITH_JPEG
namespace {

// -> (status int8[n], scale_denom int8[n], decoded (n, 2) int64 [w, h], messages list[str])
py::tuple jpeg_decode_resize(py::list datas, I64 orientations, I64 sizes, I64 clips, F64 boxes, U8 flips, I64 out_index,
                             py::array out, int64_t out_h, int64_t out_w, std::array<float, 3> mean,
                             std::array<float, 3> std_, float scale, Interp interp, bool antialias, bool nchw,
                             OutDType dtype, bool swap_rb, int max_scale_denom, int num_threads) {
  const py::ssize_t n = static_cast<py::ssize_t>(datas.size());
  if (orientations.size() != n || flips.size() != n || out_index.size() != n)
    throw ArgumentError("orientations, flips and out_index need one entry per JPEG");
  check_table(sizes, n, 2, "sizes");
  check_table(clips, n, 4, "clips");
  check_table(boxes, n, 4, "boxes");
  const RCNParams p = rcn_params(out_h, out_w, mean, std_, scale, interp, antialias, nchw, dtype, swap_rb);
  if (out.ndim() < 1) throw ArgumentError("out must be an (N, ...) batch");
  const int64_t out_count = out.shape(0);
  void* optr = out_buffer(out, itemsize(dtype), static_cast<py::ssize_t>(out_count) * 3 * out_h * out_w);

  std::vector<JpegJob> jobs(static_cast<size_t>(n));
  for (py::ssize_t i = 0; i < n; ++i) {
    py::handle h = datas[static_cast<size_t>(i)];
    if (!PyBytes_Check(h.ptr())) throw py::type_error("JPEG " + std::to_string(i) + " must be a bytes object");
    JpegJob& j = jobs[static_cast<size_t>(i)];
    j.data = reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(h.ptr()));  // kept alive by `datas`
    j.size = static_cast<size_t>(PyBytes_GET_SIZE(h.ptr()));
    j.orientation = static_cast<int>(orientations.data()[i]);
    std::copy(clips.data() + 4 * i, clips.data() + 4 * i + 4, j.clip);
    std::copy(boxes.data() + 4 * i, boxes.data() + 4 * i + 4, j.box);
    j.flip = flips.data()[i] != 0;
    j.out_index = out_index.data()[i];
    j.expect_h = sizes.data()[2 * i];
    j.expect_w = sizes.data()[2 * i + 1];
  }
  std::vector<JpegResult> results;
  {
    py::gil_scoped_release release;
    jpeg_decode_resize_cpu(jobs, optr, out_count, p, max_scale_denom, num_threads, results);
  }
  py::array_t<int8_t> status(n), den(n);
  py::array_t<int64_t> decoded({n, static_cast<py::ssize_t>(2)});
  py::list messages;
  for (py::ssize_t i = 0; i < n; ++i) {
    const JpegResult& r = results[static_cast<size_t>(i)];
    status.mutable_data()[i] = static_cast<int8_t>(r.status);
    den.mutable_data()[i] = static_cast<int8_t>(r.scale_denom);
    decoded.mutable_data()[2 * i] = r.decoded_w;
    decoded.mutable_data()[2 * i + 1] = r.decoded_h;
    messages.append(py::str(r.message));
  }
  return py::make_tuple(status, den, decoded, messages);
}

}  // namespace
#endif

void bind_jpeg_decode(py::module_& m) {
#ifdef HUBCLS_WITH_JPEG
  m.def("jpeg_decode_resize", &jpeg_decode_resize, py::arg("datas"), py::arg("orientations"), py::arg("sizes"),
        py::arg("clips"), py::arg("boxes"), py::arg("flips"), py::arg("out_index"), py::arg("out"), py::arg("out_h"),
        py::arg("out_w"), py::arg("mean"), py::arg("std"), py::arg("scale"), py::arg("interp"), py::arg("antialias"),
        py::arg("nchw"), py::arg("dtype"), py::arg("swap_rb"), py::arg("max_scale_denom"), py::arg("num_threads"),
        "Decode JPEGs (only the region each crop needs, DCT-scaled when allowed) straight into a normalised batch");
  m.attr("jpeg_library") = jpeg_library_version();
#else
  m.attr("jpeg_library") = py::none();
#endif
}

}  // namespace bind
}  // namespace hubcls
