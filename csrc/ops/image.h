// Types every op shares: a uint8 image as the kernels read / write it, and the output dtype.
#pragma once
#include <cstdint>

namespace hubcls {

// One uint8 image, HWC (c = 1, 3 or 4): rows may be padded (row_stride in bytes >= w*c), pixels
// are packed.
struct ImageView {
  const uint8_t* data = nullptr;
  int64_t h = 0, w = 0, c = 0;
  int64_t row_stride = 0;
};

struct MutableImageView {
  uint8_t* data = nullptr;
  int64_t h = 0, w = 0, c = 0, row_stride = 0;
};

// Element type of a batch. Exposed to Python as hubcls._C.OutDType (names = NumPy dtype names).
enum class OutDType : int { Float32 = 0, Float16 = 1, UInt8 = 2 };
constexpr bool is_valid(OutDType d) { return static_cast<int>(d) >= 0 && static_cast<int>(d) <= 2; }
constexpr int itemsize(OutDType d) { return d == OutDType::Float32 ? 4 : (d == OutDType::Float16 ? 2 : 1); }

}  // namespace hubcls
