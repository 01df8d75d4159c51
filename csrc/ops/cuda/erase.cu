// CUDA kernels of the erase ops: rectangle fills (grid: rect x pixels of the largest rect) and mask
// fills (one thread per pixel), on float32 / float16 / uint8 batches in NCHW or NHWC.
#include <cuda_fp16.h>

#include <algorithm>
#include <string>

#include "ops/cuda/cuda_utils.cuh"
#include "ops/erase.h"

namespace hubcls {
namespace {

struct BatchDesc {
  void* data;
  int64_t n, c, h, w;
  int nchw, dtype;
};

__device__ __forceinline__ int64_t offset_of(const BatchDesc& b, int64_t i, int64_t ch, int64_t y, int64_t x) {
  return b.nchw ? ((i * b.c + ch) * b.h + y) * b.w + x : ((i * b.h + y) * b.w + x) * b.c + ch;
}

__device__ __forceinline__ void store_dev(const BatchDesc& b, int64_t off, float v) {
  if (b.dtype == 0) static_cast<float*>(b.data)[off] = v;
  else if (b.dtype == 1) static_cast<__half*>(b.data)[off] = __float2half_rn(v);
  else {
    float r = floorf(v + 0.5f);
    r = fminf(fmaxf(r, 0.f), 255.f);
    static_cast<uint8_t*>(b.data)[off] = static_cast<uint8_t>(r);
  }
}

BatchDesc desc_of(const BatchView& b) {
  return {b.data, b.n, b.c, b.h, b.w, b.nchw ? 1 : 0, static_cast<int>(b.dtype)};
}

__global__ void fill_rects_kernel(BatchDesc b, const int32_t* rect_sample, const int32_t* rects, const float* cvals,
                                  const int64_t* pix_off, const float* pixels) {
  const int64_t r = blockIdx.y;
  const int32_t* q = rects + 4 * r;
  const int64_t x0 = q[0] > 0 ? q[0] : 0, y0 = q[1] > 0 ? q[1] : 0;
  const int64_t x1 = q[2] < b.w ? q[2] : b.w, y1 = q[3] < b.h ? q[3] : b.h;
  if (x1 <= x0 || y1 <= y0) return;
  const int64_t rw = x1 - x0;
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= rw * (y1 - y0)) return;
  const int64_t y = y0 + k / rw, x = x0 + k % rw;
  const int64_t i = rect_sample[r];
  const bool per_pixel = pix_off[r] >= 0;
  const int64_t full_w = q[2] - q[0];
  for (int64_t ch = 0; ch < b.c; ++ch) {
    const float v =
        per_pixel ? pixels[pix_off[r] + ((y - q[1]) * full_w + (x - q[0])) * b.c + ch] : cvals[r * b.c + ch];
    store_dev(b, offset_of(b, i, ch, y, x), v);
  }
}

__global__ void mask_fill_kernel(BatchDesc b, const uint8_t* masks, const float* value) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= b.n * b.h * b.w) return;
  if (masks[k]) return;
  const int64_t i = k / (b.h * b.w), yx = k % (b.h * b.w);
  const int64_t y = yx / b.w, x = yx % b.w;
  for (int64_t ch = 0; ch < b.c; ++ch) store_dev(b, offset_of(b, i, ch, y, x), value[ch]);
}

}  // namespace

void fill_rects_cuda(const BatchView& b, int64_t n_rects, const int32_t* rect_sample, const int32_t* rects,
                     const float* const_values, const int64_t* pix_offset, const float* pixels, int64_t n_pixels,
                     int device, uintptr_t stream_handle) {
  int64_t max_area = 0;
  for (int64_t r = 0; r < n_rects; ++r) {
    if (rect_sample[r] < 0 || rect_sample[r] >= b.n)
      throw ArgumentError("fill_rects: rect names a sample outside the batch");
    const int32_t* q = rects + 4 * r;
    const int64_t rw = std::max<int64_t>(std::min<int64_t>(q[2], b.w) - std::max<int64_t>(q[0], 0), 0);
    const int64_t rh = std::max<int64_t>(std::min<int64_t>(q[3], b.h) - std::max<int64_t>(q[1], 0), 0);
    max_area = std::max(max_area, rw * rh);
    if (pix_offset[r] >= 0 &&
        pix_offset[r] + std::max<int64_t>(q[2] - q[0], 0) * std::max<int64_t>(q[3] - q[1], 0) * b.c > n_pixels)
      throw ArgumentError("fill_rects: per-pixel values of rect " + std::to_string(r) + " are too short");
  }
  if (n_rects == 0 || max_area == 0) return;
  if (n_rects > 65535) throw ArgumentError("fill_rects: at most 65535 rects per CUDA launch");
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda::Scratch s(stream);
  const int32_t* d_sample = s.upload(rect_sample, static_cast<size_t>(n_rects));
  const int32_t* d_rects = s.upload(rects, static_cast<size_t>(4 * n_rects));
  const float* d_c = s.upload(const_values, static_cast<size_t>(n_rects * b.c));
  const int64_t* d_off = s.upload(pix_offset, static_cast<size_t>(n_rects));
  const float* d_pix = s.upload(pixels, static_cast<size_t>(std::max<int64_t>(n_pixels, 1)));
  const int threads = 256;
  dim3 grid(static_cast<unsigned>((max_area + threads - 1) / threads), static_cast<unsigned>(n_rects));
  fill_rects_kernel<<<grid, threads, 0, stream>>>(desc_of(b), d_sample, d_rects, d_c, d_off, d_pix);
  cuda::check_launch("fill_rects kernel");
}

void mask_fill_cuda(const BatchView& b, const uint8_t* masks, const float* value, int device, uintptr_t stream_handle) {
  const int64_t total = b.n * b.h * b.w;
  if (total == 0) return;
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda::Scratch s(stream);
  const uint8_t* d_m = s.upload(masks, static_cast<size_t>(total));
  const float* d_v = s.upload(value, static_cast<size_t>(b.c));
  const int threads = 256;
  mask_fill_kernel<<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0, stream>>>(desc_of(b), d_m,
                                                                                                   d_v);
  cuda::check_launch("mask_fill kernel");
}

}  // namespace hubcls
