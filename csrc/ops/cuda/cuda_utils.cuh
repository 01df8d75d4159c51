// Helpers shared by the CUDA kernels: error checks, device guard, stream-ordered scratch uploads.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.h"

namespace hubcls {
namespace cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("hubcls CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

// Makes `device` current for the scope and restores the previous device.
struct DeviceGuard {
  int prev = -1;
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&prev), "cudaGetDevice");
    if (device >= 0 && device != prev) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() {
    if (prev >= 0) cudaSetDevice(prev);
  }
};

// Device copies of small host tables, allocated and freed in stream order.
struct Scratch {
  cudaStream_t stream;
  std::vector<void*> ptrs;
  explicit Scratch(cudaStream_t s) : stream(s) {}
  template <class T>
  T* upload(const T* host, size_t count) {
    if (count == 0) count = 1, host = nullptr;
    void* p = nullptr;
    check(cudaMallocAsync(&p, count * sizeof(T), stream), "cudaMallocAsync");
    ptrs.push_back(p);
    if (host) check(cudaMemcpyAsync(p, host, count * sizeof(T), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
    return static_cast<T*>(p);
  }
  ~Scratch() {
    for (void* p : ptrs) cudaFreeAsync(p, stream);
  }
};

inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

}  // namespace cuda
}  // namespace hubcls
