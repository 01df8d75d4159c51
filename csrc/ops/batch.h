// A dense image batch (NCHW or NHWC, float32 / float16 / uint8) as the erase and mix kernels see it,
// plus element load/store helpers that convert through float.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "half.h"
#include "ops/image.h"

namespace hubcls {

struct BatchView {
  void* data = nullptr;
  int64_t n = 0, c = 0, h = 0, w = 0;
  bool nchw = true;
  OutDType dtype = OutDType::Float32;
  size_t itemsize() const { return static_cast<size_t>(hubcls::itemsize(dtype)); }
  int64_t sample_elems() const { return c * h * w; }
  // element offset of (sample i, channel ch, row y, col x)
  int64_t offset(int64_t i, int64_t ch, int64_t y, int64_t x) const {
    return nchw ? ((i * c + ch) * h + y) * w + x : ((i * h + y) * w + x) * c + ch;
  }
};

// Stores float v as dtype (uint8: round half up and saturate, float16: round to nearest even).
inline void store_as(void* base, int64_t off, OutDType dt, float v) {
  switch (dt) {
    case OutDType::Float32: static_cast<float*>(base)[off] = v; break;
    case OutDType::Float16: static_cast<uint16_t*>(base)[off] = float_to_half(v); break;
    case OutDType::UInt8: {
      float r = std::floor(v + 0.5f);
      r = r < 0.f ? 0.f : (r > 255.f ? 255.f : r);
      static_cast<uint8_t*>(base)[off] = static_cast<uint8_t>(r);
      break;
    }
  }
}

inline float load_as(const void* base, int64_t off, OutDType dt) {
  switch (dt) {
    case OutDType::Float32: return static_cast<const float*>(base)[off];
    case OutDType::Float16: return half_to_float(static_cast<const uint16_t*>(base)[off]);
    default: return static_cast<float>(static_cast<const uint8_t*>(base)[off]);
  }
}

}  // namespace hubcls
