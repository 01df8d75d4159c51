// Small CUDA runtime queries used by the bindings (kept here so bindings.cpp needs no CUDA headers).
#include <cuda_runtime.h>

#include "ops/cuda/cuda_utils.cuh"
#include "ops/cuda/runtime.h"

namespace hubcls {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

void cuda_synchronize(int device) {
  cuda::DeviceGuard g(device);
  cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

int cuda_pointer_device_of(const void* p) {
  cudaPointerAttributes attr;
  cuda::check(cudaPointerGetAttributes(&attr, p), "cudaPointerGetAttributes");
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    throw ArgumentError("pointer is not CUDA device memory");
  return attr.device;
}

}  // namespace hubcls
