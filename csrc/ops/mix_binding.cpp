// Python binding of the mix kernels (mixup blend, cutmix paste).
#include "binding_utils.h"
#include "ops/mix.h"

namespace hubcls {
namespace bind {
namespace {

void mix_blend(py::array x, bool nchw, I64 perm, F32 lam, py::array out, int num_threads) {
  const BatchView b = batch_view(x, nchw, false, "batch");
  check_out_like(out, x);
  if (perm.size() != b.n || lam.size() != b.n) throw ArgumentError("perm and lam must have one entry per sample");
  void* o = out.mutable_data();
  py::gil_scoped_release release;
  mix_blend_cpu(b, perm.data(), lam.data(), o, num_threads);
}

void mix_paste(py::array x, bool nchw, I64 perm, I32 boxes, py::array out, int num_threads) {
  const BatchView b = batch_view(x, nchw, false, "batch");
  check_out_like(out, x);
  if (perm.size() != b.n || boxes.size() != 4 * b.n)
    throw ArgumentError("perm and boxes must have one entry per sample");
  void* o = out.mutable_data();
  py::gil_scoped_release release;
  mix_paste_cpu(b, perm.data(), boxes.data(), o, num_threads);
}

#ifdef HUBCLS_WITH_CUDA
// paste=False: mixup with params = lam (one per sample); paste=True: cutmix with params = boxes (N, 4).
void mix_on_device(bool paste, uintptr_t ptr, std::array<int64_t, 4> shape, bool nchw, OutDType dtype, I64 perm,
                   py::array params, uintptr_t out, int device, uintptr_t stream) {
  const BatchView b = device_batch(ptr, shape, nchw, dtype);
  if (perm.size() != b.n) throw ArgumentError("perm must have one entry per sample");
  if (!out) throw ArgumentError("out pointer is null");
  if (paste) {
    auto boxes = I32::ensure(params);
    if (!boxes || boxes.size() != 4 * b.n) throw ArgumentError("boxes must have shape (N, 4)");
    py::gil_scoped_release release;
    mix_paste_cuda(b, perm.data(), boxes.data(), reinterpret_cast<void*>(out), device, stream);
  } else {
    auto lam = F32::ensure(params);
    if (!lam || lam.size() != b.n) throw ArgumentError("lam must have one entry per sample");
    py::gil_scoped_release release;
    mix_blend_cuda(b, perm.data(), lam.data(), reinterpret_cast<void*>(out), device, stream);
  }
}
#endif

}  // namespace

void bind_mix(py::module_& m) {
  m.def("mix_blend", &mix_blend, py::arg("x"), py::arg("nchw"), py::arg("perm"), py::arg("lam"), py::arg("out"),
        py::arg("num_threads"), "out[i] = lam[i] x[i] + (1 - lam[i]) x[perm[i]]");
  m.def("mix_paste", &mix_paste, py::arg("x"), py::arg("nchw"), py::arg("perm"), py::arg("boxes"), py::arg("out"),
        py::arg("num_threads"), "out[i] = x[i] with boxes[i] taken from x[perm[i]]");
#ifdef HUBCLS_WITH_CUDA
  m.def("mix_cuda", &mix_on_device, "CUDA mixup (paste=False) / cutmix (paste=True) on a device batch");
#endif
}

}  // namespace bind
}  // namespace hubcls
