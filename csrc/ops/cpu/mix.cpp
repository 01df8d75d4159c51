// CPU kernels of the mix ops, parallel over samples.
#include "ops/mix.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "common.h"

namespace hubcls {
namespace {

void check_perm(const BatchView& x, const int64_t* perm, const char* op) {
  if (!x.data) throw ArgumentError(std::string(op) + ": batch is null");
  for (int64_t i = 0; i < x.n; ++i)
    if (perm[i] < 0 || perm[i] >= x.n)
      throw ArgumentError(std::string(op) + ": perm[" + std::to_string(i) + "] = " + std::to_string(perm[i]) +
                          " is outside the batch");
}

template <class T, class F>
void blend_typed(const T* a, const T* b, T* o, int64_t n, float l, F&& cvt) {
  for (int64_t k = 0; k < n; ++k) o[k] = cvt(l * static_cast<float>(a[k]) + (1.f - l) * static_cast<float>(b[k]));
}

}  // namespace

void mix_blend_cpu(const BatchView& x, const int64_t* perm, const float* lam, void* out, int num_threads) {
  check_perm(x, perm, "mixup");
  const int64_t m = x.sample_elems();
  if (out == x.data) throw ArgumentError("mixup: out must not be the input batch (samples read each other)");
  parallel_for(x.n, num_threads, [&](int64_t i) {
    const float l = lam[i];
    const int64_t j = perm[i];
    switch (x.dtype) {
      case OutDType::Float32: {
        const float* a = static_cast<const float*>(x.data) + i * m;
        const float* b = static_cast<const float*>(x.data) + j * m;
        float* o = static_cast<float*>(out) + i * m;
        for (int64_t k = 0; k < m; ++k) o[k] = l * a[k] + (1.f - l) * b[k];
        break;
      }
      case OutDType::UInt8: {
        const uint8_t* a = static_cast<const uint8_t*>(x.data) + i * m;
        const uint8_t* b = static_cast<const uint8_t*>(x.data) + j * m;
        uint8_t* o = static_cast<uint8_t*>(out) + i * m;
        blend_typed(a, b, o, m, l, [](float v) {
          v = std::floor(v + 0.5f);
          return static_cast<uint8_t>(v < 0.f ? 0.f : (v > 255.f ? 255.f : v));
        });
        break;
      }
      case OutDType::Float16: {
        const uint16_t* a = static_cast<const uint16_t*>(x.data) + i * m;
        const uint16_t* b = static_cast<const uint16_t*>(x.data) + j * m;
        uint16_t* o = static_cast<uint16_t*>(out) + i * m;
        for (int64_t k = 0; k < m; ++k) o[k] = float_to_half(l * half_to_float(a[k]) + (1.f - l) * half_to_float(b[k]));
        break;
      }
    }
  });
}

void mix_paste_cpu(const BatchView& x, const int64_t* perm, const int32_t* boxes, void* out, int num_threads) {
  check_perm(x, perm, "cutmix");
  const int64_t m = x.sample_elems();
  const size_t isz = x.itemsize();
  if (out == x.data) throw ArgumentError("cutmix: out must not be the input batch (samples read each other)");
  parallel_for(x.n, num_threads, [&](int64_t i) {
    char* o = static_cast<char*>(out);
    const char* src = static_cast<const char*>(x.data);
    std::memcpy(o + i * m * isz, src + i * m * isz, static_cast<size_t>(m) * isz);
    const int32_t* q = boxes + 4 * i;
    const int64_t x0 = std::max<int64_t>(q[0], 0), y0 = std::max<int64_t>(q[1], 0);
    const int64_t x1 = std::min<int64_t>(q[2], x.w), y1 = std::min<int64_t>(q[3], x.h);
    if (x1 <= x0 || y1 <= y0) return;
    const int64_t j = perm[i];
    if (x.nchw) {
      for (int64_t ch = 0; ch < x.c; ++ch)
        for (int64_t y = y0; y < y1; ++y)
          std::memcpy(o + x.offset(i, ch, y, x0) * isz, src + x.offset(j, ch, y, x0) * isz,
                      static_cast<size_t>(x1 - x0) * isz);
    } else {
      for (int64_t y = y0; y < y1; ++y)
        std::memcpy(o + x.offset(i, 0, y, x0) * isz, src + x.offset(j, 0, y, x0) * isz,
                    static_cast<size_t>((x1 - x0) * x.c) * isz);
    }
  });
}

}  // namespace hubcls
