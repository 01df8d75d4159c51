// CUDA kernels of the mix ops: one thread per element (blend) or per pixel (paste).
#include <cuda_fp16.h>

#include <string>

#include "ops/cuda/cuda_utils.cuh"
#include "ops/mix.h"

namespace hubcls {
namespace {

template <class T>
__device__ __forceinline__ float ld(const T* p, int64_t i) {
  return static_cast<float>(p[i]);
}
template <>
__device__ __forceinline__ float ld<__half>(const __half* p, int64_t i) {
  return __half2float(p[i]);
}

__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void st(uint8_t* p, int64_t i, float v) {
  float r = floorf(v + 0.5f);
  p[i] = static_cast<uint8_t>(fminf(fmaxf(r, 0.f), 255.f));
}

template <class T>
__global__ void blend_kernel(const T* x, const int64_t* perm, const float* lam, T* out, int64_t n, int64_t m) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= n * m) return;
  const int64_t i = k / m, e = k % m;
  const float l = lam[i];
  st(out, k, l * ld(x, k) + (1.f - l) * ld(x, perm[i] * m + e));
}

template <class T>
__global__ void paste_kernel(const T* x, const int64_t* perm, const int32_t* boxes, T* out, int64_t n, int64_t c,
                             int64_t h, int64_t w, bool nchw) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t m = c * h * w;
  if (k >= n * m) return;
  const int64_t i = k / m, e = k % m;
  int64_t y, xx;
  if (nchw) {
    y = (e / w) % h;
    xx = e % w;
  } else {
    y = e / (w * c);
    xx = (e / c) % w;
  }
  const int32_t* q = boxes + 4 * i;
  const bool inside = xx >= q[0] && xx < q[2] && y >= q[1] && y < q[3];
  out[k] = inside ? x[perm[i] * m + e] : x[k];
}

template <class F>
void by_dtype(OutDType dt, F&& f) {
  switch (dt) {
    case OutDType::Float32: f(static_cast<float*>(nullptr)); break;
    case OutDType::Float16: f(static_cast<__half*>(nullptr)); break;
    case OutDType::UInt8: f(static_cast<uint8_t*>(nullptr)); break;
  }
}

void check_perm(const BatchView& x, const int64_t* perm, const void* out, const char* op) {
  for (int64_t i = 0; i < x.n; ++i)
    if (perm[i] < 0 || perm[i] >= x.n) throw ArgumentError(std::string(op) + ": perm is outside the batch");
  if (out == x.data) throw ArgumentError(std::string(op) + ": out must not be the input batch");
}

}  // namespace

void mix_blend_cuda(const BatchView& x, const int64_t* perm, const float* lam, void* out, int device,
                    uintptr_t stream_handle) {
  check_perm(x, perm, out, "mixup");
  const int64_t m = x.sample_elems(), total = x.n * m;
  if (total == 0) return;
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda::Scratch s(stream);
  const int64_t* d_perm = s.upload(perm, static_cast<size_t>(x.n));
  const float* d_lam = s.upload(lam, static_cast<size_t>(x.n));
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  by_dtype(x.dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    blend_kernel<T>
        <<<blocks, threads, 0, stream>>>(static_cast<const T*>(x.data), d_perm, d_lam, static_cast<T*>(out), x.n, m);
  });
  cuda::check_launch("mixup kernel");
}

void mix_paste_cuda(const BatchView& x, const int64_t* perm, const int32_t* boxes, void* out, int device,
                    uintptr_t stream_handle) {
  check_perm(x, perm, out, "cutmix");
  const int64_t total = x.n * x.sample_elems();
  if (total == 0) return;
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda::Scratch s(stream);
  const int64_t* d_perm = s.upload(perm, static_cast<size_t>(x.n));
  const int32_t* d_boxes = s.upload(boxes, static_cast<size_t>(4 * x.n));
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  by_dtype(x.dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    paste_kernel<T><<<blocks, threads, 0, stream>>>(static_cast<const T*>(x.data), d_perm, d_boxes,
                                                    static_cast<T*>(out), x.n, x.c, x.h, x.w, x.nchw);
  });
  cuda::check_launch("cutmix kernel");
}

}  // namespace hubcls
