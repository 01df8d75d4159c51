// CUDA runtime queries for the bindings (declared without CUDA headers).
#pragma once

namespace hubcls {
int cuda_device_count();
void cuda_synchronize(int device);
int cuda_pointer_device_of(const void* p);  // throws ArgumentError for host memory
}  // namespace hubcls
