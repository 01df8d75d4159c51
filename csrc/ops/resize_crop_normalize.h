// resize_crop_normalize: one fused pass from uint8 images (any size, 1/3/4 channels) to a
// normalised float32/float16 (or uint8) batch: crop box -> resample -> optional horizontal flip ->
// channel swap -> (x*scale - mean)/std -> NCHW or NHWC.
#pragma once
#include <cstdint>
#include <vector>

#include "ops/image.h"
#include "ops/resample.h"

namespace hubcls {

struct RCNParams {
  int64_t out_h = 0, out_w = 0;
  float mean[3] = {0, 0, 0};
  float std[3] = {1, 1, 1};
  float scale = 1.f;
  Interp interp = Interp::Bilinear;
  bool antialias = true;
  bool nchw = true;
  OutDType dtype = OutDType::Float32;
  bool swap_rb = false;  // input is BGR(A): output channel c reads input channel 2-c
};

// A crop box (x, y, w, h) in source pixels, checked against its image: finite, positive size, and
// inside it up to 1e-3 px of float round-off (ArgumentError otherwise; `index` names it).
void check_box(const double* box, int64_t img_h, int64_t img_w, int64_t index);
// The box with that tolerated overshoot clamped back into the image.
void clamp_box(const double* box, int64_t img_h, int64_t img_w, double* out);
// Output = v * a[c] + b[c] of the resampled pixel v: (v * scale - mean) / std, or v itself for uint8.
inline void normalize_coeffs(const RCNParams& p, float* a, float* b) {
  for (int c = 0; c < 3; ++c) {
    const bool raw = p.dtype == OutDType::UInt8;
    a[c] = raw ? 1.f : p.scale / p.std[c];
    b[c] = raw ? 0.f : -p.mean[c] / p.std[c];
  }
}
// Validates the output parameters (size, finite non-zero std, dtype, interpolation).
void check_params(const RCNParams& p);

// boxes: n x 4 doubles (x, y, w, h) in source pixels; flips: n bytes (may be null). out: n x 3 x
// out_h x out_w (NCHW) or n x out_h x out_w x 3 (NHWC) elements of p.dtype, contiguous.
// Throws ArgumentError on invalid input; runs without touching Python (callers release the GIL).
void resize_crop_normalize_cpu(const std::vector<ImageView>& images, const double* boxes, const uint8_t* flips,
                               void* out, const RCNParams& p, int num_threads);

// The same pass for one image whose taps are already computed (start indices relative to `im`), on the
// calling thread: for ops that produce only the source pixels the taps read (the JPEG decoder decodes
// just [cx.lo, cx.hi) x [cy.lo, cy.hi)). out_img: one sample of the output layout.
void resize_normalize_with_coeffs_cpu(const ImageView& im, const ResampleCoeffs& cx, const ResampleCoeffs& cy,
                                      bool flip, void* out_img, const RCNParams& p);

// The same pass over a source whose rows arrive while it runs (a decoder streaming scanlines into
// it, so no whole intermediate image exists): before each output row, feed(ctx, end) must make
// source rows [.., end) readable at rows[r] (end may exceed h: clamp); it returns false to stop
// (the output is then partly written). The rows' start indices must not decrease (rows a later
// output row reads may replace earlier ones).
void resize_normalize_streamed_cpu(int64_t h, int64_t w, int64_t c, const uint8_t* const* rows,
                                   bool (*feed)(void* ctx, int64_t end), void* ctx, const ResampleCoeffs& cx,
                                   const ResampleCoeffs& cy, bool flip, void* out_img, const RCNParams& p);

#ifdef HUBCLS_WITH_CUDA
// One device image for the CUDA kernel: pointer + geometry + its box and flip.
struct DeviceImage {
  const uint8_t* data;
  int64_t h, w, c, row_stride;
  double box[4];
  int32_t flip;
};
// Max taps per axis the CUDA kernel evaluates; callers check `cuda_taps_needed` first.
constexpr int kCudaMaxTaps = 32;
int cuda_taps_needed(double box_len, int64_t out_size, Interp interp, bool antialias);
// Launches on `stream` (a cudaStream_t as integer, 0 = legacy default) of `device`; out is a device
// buffer laid out as for the CPU kernel. Returns without synchronising.
void resize_crop_normalize_cuda(const std::vector<DeviceImage>& images, void* out, const RCNParams& p, int device,
                                uintptr_t stream);
#endif

}  // namespace hubcls
