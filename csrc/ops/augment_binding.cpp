// Python binding of the augment primitives and of their enum (hubcls._C.AugOp, generated from the
// list in ops/augment_ops.h).
#include <vector>

#include "binding_utils.h"
#include "ops/augment.h"

namespace hubcls {
namespace bind {
namespace {

void augment(AugOp op, py::list images, py::list outputs, F64 params, Interp interp, U8 fill, int num_threads) {
  const size_t n = images.size();
  if (outputs.size() != n) throw ArgumentError("need one output per image");
  check_table(params, static_cast<py::ssize_t>(n), 6, "params");
  std::vector<ImageView> in;
  std::vector<MutableImageView> out;
  for (size_t i = 0; i < n; ++i) {
    in.push_back(image_view(images[i], i));
    out.push_back(mutable_image_view(outputs[i], i));
    if (fill.size() < in.back().c) throw ArgumentError("fill must have one value per channel");
  }
  py::gil_scoped_release release;
  augment_cpu(checked(op, "augment op"), in, out, params.data(), interp, fill.data(), num_threads);
}

#ifdef HUBCLS_WITH_CUDA
void augment_on_device(AugOp op, std::vector<uintptr_t> in_ptrs, I64 in_geoms, std::vector<uintptr_t> out_ptrs,
                       I64 out_geoms, F64 params, Interp interp, U8 fill, int device, uintptr_t stream) {
  const size_t n = in_ptrs.size();
  if (out_ptrs.size() != n) throw ArgumentError("need one output per image");
  check_table(in_geoms, static_cast<py::ssize_t>(n), 4, "in_geoms (h, w, c, row_stride)");
  check_table(out_geoms, static_cast<py::ssize_t>(n), 4, "out_geoms (h, w, c, row_stride)");
  check_table(params, static_cast<py::ssize_t>(n), 6, "params");
  if (fill.size() < 3) throw ArgumentError("fill must have 3 values");
  std::vector<ImageView> in(n);
  std::vector<MutableImageView> out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t* g = in_geoms.data() + 4 * i;
    const int64_t* q = out_geoms.data() + 4 * i;
    in[i] = {reinterpret_cast<const uint8_t*>(in_ptrs[i]), g[0], g[1], g[2], g[3]};
    out[i] = {reinterpret_cast<uint8_t*>(out_ptrs[i]), q[0], q[1], q[2], q[3]};
    if (g[3] < g[1] * g[2] || q[3] < q[1] * q[2]) throw ArgumentError("bad row stride");
  }
  py::gil_scoped_release release;
  augment_cuda(checked(op, "augment op"), in, out, params.data(), interp, fill.data(), device, stream);
}
#endif

}  // namespace

void bind_augment(py::module_& m) {
  py::enum_<AugOp> ops(m, "AugOp", "Augment primitives (csrc/ops/augment_ops.h); names are hubcls.ops.augment's");
#define HUBCLS_AUG_VALUE(name, py, kind) ops.value(#py, AugOp::name);
  HUBCLS_AUGMENT_OPS(HUBCLS_AUG_VALUE)
#undef HUBCLS_AUG_VALUE
  m.def("augment", &augment, py::arg("op"), py::arg("images"), py::arg("outputs"), py::arg("params"), py::arg("interp"),
        py::arg("fill"), py::arg("num_threads"), "Pillow-exact augment primitive over a list of images");
#ifdef HUBCLS_WITH_CUDA
  m.def("augment_cuda", &augment_on_device, "CUDA Pillow-exact augment primitive over device images");
#endif
}

}  // namespace bind
}  // namespace hubcls
