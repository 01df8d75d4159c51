// Interface between the resize_crop_normalize dispatcher (resize_crop_normalize.cpp: validation,
// resampling tables, threads) and its per-ISA row kernels (resize_crop_normalize_{scalar,avx2,
// avx512}.cpp, one body: resize_crop_normalize_rows.inl). Plain data only: these files are compiled
// with different instruction sets and must share no inline C++ library code.
#pragma once
#include <cstdint>

#include "ops/image.h"

namespace hubcls {
namespace rcn {

// One axis of the resampling: output d reads source [start[d], start[d] + taps) with weights
// weight[d * taps ..]; [lo, hi) is the union of the source ranges.
struct Axis {
  const int32_t* start;
  const float* weight;
  int taps;
  int lo, hi;
};

// Output rows [y0, y1) of one image.
struct Job {
  const uint8_t* src;  // the image (uint8, c channels, row_stride bytes per row)
  int64_t row_stride;
  int c;
  Axis x, y;
  bool flip;       // output column x shows the resampled column out_w - 1 - x
  int64_t y0, y1;  // output rows to write
  int64_t out_h, out_w;
  bool nchw;
  OutDType dtype;
  bool stream;       // non-temporal stores (outputs far larger than the caches)
  int in_of_out[3];  // output channel -> source channel (channel swap, grey replication)
  float a[3], b[3];  // output = resampled * a + b, per output channel
  void* out;         // this image's output (3 x out_h x out_w or out_h x out_w x 3 elements)
  // Streamed source (a decoder producing rows while the kernel runs; null: rows at src + r *
  // row_stride). Before output row y, feed(feed_ctx, end) must make source rows up to `end`
  // (start + taps of row y, may exceed the image) readable at src_rows[r]; false (the decoder
  // failed) ends the call.
  const uint8_t* const* src_rows = nullptr;
  bool (*feed)(void* ctx, int64_t end) = nullptr;
  void* feed_ctx = nullptr;
};

void rows_scalar(const Job& job);
#ifdef HUBCLS_HAVE_AVX2
void rows_avx2(const Job& job);
#endif
#ifdef HUBCLS_HAVE_AVX512
void rows_avx512(const Job& job);
#endif

}  // namespace rcn
}  // namespace hubcls
