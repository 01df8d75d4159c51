// CPU kernels of the erase ops: rectangle fills and mask fills over a batch, parallel over samples.
#include "ops/erase.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common.h"

namespace hubcls {

namespace {

void check_batch(const BatchView& b, const char* op) {
  if (!b.data) throw ArgumentError(std::string(op) + ": batch is null");
  if (b.n < 0 || b.c <= 0 || b.h <= 0 || b.w <= 0)
    throw ArgumentError(std::string(op) + ": batch has an empty dimension");
}

}  // namespace

void fill_rects_cpu(const BatchView& b, int64_t n_rects, const int32_t* rect_sample, const int32_t* rects,
                    const float* const_values, const int64_t* pix_offset, const float* pixels, int64_t n_pixels,
                    int num_threads) {
  check_batch(b, "fill_rects");
  // validate everything before touching memory; rects are grouped by sample
  for (int64_t r = 0; r < n_rects; ++r) {
    const int32_t s = rect_sample[r];
    if (s < 0 || s >= b.n)
      throw ArgumentError("fill_rects: rect " + std::to_string(r) + " names sample " + std::to_string(s) +
                          " outside the batch");
    if (r > 0 && rect_sample[r - 1] > s) throw ArgumentError("fill_rects: rects must be sorted by sample");
    const int32_t* q = rects + 4 * r;
    if (pix_offset && pix_offset[r] >= 0) {
      const int64_t rw = std::max<int64_t>(q[2] - q[0], 0), rh = std::max<int64_t>(q[3] - q[1], 0);
      if (pix_offset[r] + rw * rh * b.c > n_pixels)
        throw ArgumentError("fill_rects: per-pixel values of rect " + std::to_string(r) + " are too short");
    }
  }
  std::vector<int64_t> first(static_cast<size_t>(b.n));
  for (int64_t s = 0; s < b.n; ++s)
    first[static_cast<size_t>(s)] =
        std::lower_bound(rect_sample, rect_sample + n_rects, static_cast<int32_t>(s)) - rect_sample;
  parallel_for(b.n, num_threads, [&](int64_t i) {
    for (int64_t r = first[static_cast<size_t>(i)]; r < n_rects && rect_sample[r] == i; ++r) {
      const int32_t* q = rects + 4 * r;
      const int64_t x0 = std::max<int64_t>(q[0], 0), y0 = std::max<int64_t>(q[1], 0);
      const int64_t x1 = std::min<int64_t>(q[2], b.w), y1 = std::min<int64_t>(q[3], b.h);
      if (x1 <= x0 || y1 <= y0) continue;
      const bool per_pixel = pix_offset && pix_offset[r] >= 0;
      const int64_t rw = q[2] - q[0];
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x)
          for (int64_t ch = 0; ch < b.c; ++ch) {
            const float v = per_pixel ? pixels[pix_offset[r] + ((y - q[1]) * rw + (x - q[0])) * b.c + ch]
                                      : const_values[r * b.c + ch];
            store_as(b.data, b.offset(i, ch, y, x), b.dtype, v);
          }
    }
  });
}

void mask_fill_cpu(const BatchView& b, const uint8_t* masks, const float* value, int num_threads) {
  check_batch(b, "mask_fill");
  parallel_for(b.n, num_threads, [&](int64_t i) {
    const uint8_t* m = masks + i * b.h * b.w;
    for (int64_t ch = 0; ch < b.c; ++ch) {
      const float v = value[ch];
      for (int64_t y = 0; y < b.h; ++y)
        for (int64_t x = 0; x < b.w; ++x)
          if (!m[y * b.w + x]) store_as(b.data, b.offset(i, ch, y, x), b.dtype, v);
    }
  });
}

}  // namespace hubcls
