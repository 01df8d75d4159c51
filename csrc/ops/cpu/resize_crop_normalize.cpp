// CPU entry of resize_crop_normalize: validates, builds the resampling tables of each image
// (compute_resample_coeffs), splits the batch into tasks over the threads and runs the row kernel of
// the instruction-set level this CPU supports (resize_crop_normalize_{scalar,avx2,avx512}.cpp,
// picked at run time by cpu_features).
#include "ops/resize_crop_normalize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common.h"
#include "cpu_features.h"
#include "ops/cpu/resize_crop_normalize_kernels.h"

namespace hubcls {

namespace {

using RowsFn = void (*)(const rcn::Job&);

RowsFn rows_kernel(Isa isa) {
  switch (isa) {
#ifdef HUBCLS_HAVE_AVX512
    case Isa::AVX512: return rcn::rows_avx512;
#endif
#ifdef HUBCLS_HAVE_AVX2
    case Isa::AVX2: return rcn::rows_avx2;
#endif
    default: return rcn::rows_scalar;
  }
}

rcn::Axis axis_of(const ResampleCoeffs& c) { return {c.start.data(), c.weight.data(), c.taps, c.lo, c.hi}; }

// The row kernel's job: output rows [y0, y1) of image `im` with its resampling tables.
rcn::Job make_job(const ImageView& im, const ResampleCoeffs& cx, const ResampleCoeffs& cy, bool flip, int64_t y0,
                  int64_t y1, const RCNParams& p, const float* a, const float* b, bool stream, void* out_img) {
  rcn::Job job;
  job.src = im.data;
  job.row_stride = im.row_stride;
  job.c = static_cast<int>(im.c);
  job.x = axis_of(cx);
  job.y = axis_of(cy);
  job.flip = flip;
  job.y0 = y0;
  job.y1 = y1;
  job.out_h = p.out_h;
  job.out_w = p.out_w;
  job.nchw = p.nchw;
  job.dtype = p.dtype;
  job.stream = stream;
  for (int oc = 0; oc < 3; ++oc) {
    job.in_of_out[oc] = im.c == 1 ? 0 : (p.swap_rb ? 2 - oc : oc);
    job.a[oc] = a[oc];
    job.b[oc] = b[oc];
  }
  job.out = out_img;
  return job;
}

// Outputs at least this large are written with non-temporal stores: they cannot stay in the caches
// anyway, and streaming skips reading every output line before overwriting it (measured on the
// eval batch of benchmarks/bench_preprocess.py: ~1.4x faster than ordinary stores at 38 MB).
constexpr int64_t kStreamBytes = int64_t{8} << 20;

}  // namespace

void check_box(const double* bx, int64_t img_h, int64_t img_w, int64_t index) {
  const double x = bx[0], y = bx[1], w = bx[2], h = bx[3];
  const double eps = 1e-3;
  auto name = [&] { return "resize_crop_normalize: box " + std::to_string(index); };
  if (!(std::isfinite(x) && std::isfinite(y) && std::isfinite(w) && std::isfinite(h)))
    throw ArgumentError(name() + " contains NaN or infinity");
  if (!(w > 0 && h > 0)) throw ArgumentError(name() + ": width and height must be positive");
  if (x < -eps || y < -eps || x + w > img_w + eps || y + h > img_h + eps)
    throw ArgumentError(name() + " (" + std::to_string(x) + ", " + std::to_string(y) + ", " + std::to_string(w) + ", " +
                        std::to_string(h) + ") lies outside its " + std::to_string(img_w) + "x" +
                        std::to_string(img_h) + " image");
}

void clamp_box(const double* bx, int64_t img_h, int64_t img_w, double* out) {
  const double x = std::max(bx[0], 0.0), y = std::max(bx[1], 0.0);
  const double w = std::min(bx[2], static_cast<double>(img_w) - x), h = std::min(bx[3], static_cast<double>(img_h) - y);
  out[0] = x;
  out[1] = y;
  out[2] = w > 0 ? w : bx[2];
  out[3] = h > 0 ? h : bx[3];
}

void check_params(const RCNParams& p) {
  if (p.out_h <= 0 || p.out_w <= 0) throw ArgumentError("resize_crop_normalize: output size must be positive");
  if (!is_valid(p.interp)) throw ArgumentError("resize_crop_normalize: unknown interpolation");
  if (!is_valid(p.dtype)) throw ArgumentError("resize_crop_normalize: unknown dtype");
  for (int c = 0; c < 3; ++c)
    if (!(std::isfinite(p.std[c]) && p.std[c] != 0.f) || !std::isfinite(p.mean[c]) || !std::isfinite(p.scale))
      throw ArgumentError("resize_crop_normalize: std must be finite and non-zero, mean and scale finite");
}

void resize_normalize_with_coeffs_cpu(const ImageView& im, const ResampleCoeffs& cx, const ResampleCoeffs& cy,
                                      bool flip, void* out_img, const RCNParams& p) {
  float a[3], b[3];
  normalize_coeffs(p, a, b);
  rows_kernel(active_isa())(make_job(im, cx, cy, flip, 0, p.out_h, p, a, b, false, out_img));
}

void resize_normalize_streamed_cpu(int64_t h, int64_t w, int64_t c, const uint8_t* const* rows,
                                   bool (*feed)(void* ctx, int64_t end), void* ctx, const ResampleCoeffs& cx,
                                   const ResampleCoeffs& cy, bool flip, void* out_img, const RCNParams& p) {
  float a[3], b[3];
  normalize_coeffs(p, a, b);
  ImageView im;
  im.data = nullptr;  // the kernel takes every row from `rows`
  im.h = h;
  im.w = w;
  im.c = c;
  im.row_stride = w * c;
  rcn::Job job = make_job(im, cx, cy, flip, 0, p.out_h, p, a, b, false, out_img);
  job.src_rows = rows;
  job.feed = feed;
  job.feed_ctx = ctx;
  rows_kernel(active_isa())(job);
}

void resize_crop_normalize_cpu(const std::vector<ImageView>& images, const double* boxes, const uint8_t* flips,
                               void* out, const RCNParams& p, int num_threads) {
  const int64_t n = static_cast<int64_t>(images.size());
  check_params(p);
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& im = images[i];
    if (!im.data || im.h <= 0 || im.w <= 0)
      throw ArgumentError("resize_crop_normalize: image " + std::to_string(i) + " is empty");
    if (im.c != 1 && im.c != 3 && im.c != 4)
      throw ArgumentError("resize_crop_normalize: image " + std::to_string(i) + " has " + std::to_string(im.c) +
                          " channels; expected 1, 3 or 4");
    if (im.row_stride < im.w * im.c) throw ArgumentError("resize_crop_normalize: bad row stride");
    check_box(boxes + 4 * i, im.h, im.w, i);
  }
  if (n == 0) return;
  float a[3], b[3];
  normalize_coeffs(p, a, b);
  if (num_threads <= 0) num_threads = default_num_threads();
  // One parallel region: task = (image, block of output rows). An image is split into row blocks
  // only when the batch is smaller than the thread count AND the image is large enough to pay for
  // the threads' wake-up (small single images run inline: no OpenMP region, no barrier to wait on
  // when the machine is oversubscribed, e.g. by data-loader worker processes).
  const int64_t big_image = int64_t{1} << 18;  // output pixels
  const int64_t chunks = (n >= num_threads || p.out_h * p.out_w < big_image) ? 1 : (num_threads + n - 1) / n;
  const size_t elem = static_cast<size_t>(itemsize(p.dtype));
  const int64_t img_elems = 3 * p.out_h * p.out_w;
  const int64_t row_bytes = p.out_w * static_cast<int64_t>(elem) * (p.nchw ? 1 : 3);  // one contiguous output row
  const bool stream = n * img_elems * static_cast<int64_t>(elem) >= kStreamBytes && row_bytes >= 64;
  const RowsFn rows = rows_kernel(active_isa());
  parallel_for(n * chunks, num_threads, [&](int64_t t) {
    const int64_t i = t / chunks, ch = t % chunks;
    const int64_t y0 = p.out_h * ch / chunks, y1 = p.out_h * (ch + 1) / chunks;
    if (y0 >= y1) return;
    const ImageView& im = images[i];
    double box[4];
    clamp_box(boxes + 4 * i, im.h, im.w, box);
    const double x = box[0], y = box[1], w = box[2], h = box[3];
    const bool area_up = !p.antialias && p.interp == Interp::Area && (w < p.out_w || h < p.out_h);
    const ResampleCoeffs cx = compute_resample_coeffs(im.w, x, w, p.out_w, p.interp, p.antialias, area_up);
    const ResampleCoeffs cy = compute_resample_coeffs(im.h, y, h, p.out_h, p.interp, p.antialias, area_up);
    void* oimg = static_cast<char*>(out) + static_cast<size_t>(i * img_elems) * elem;
    const rcn::Job job = make_job(im, cx, cy, flips ? flips[i] != 0 : false, y0, y1, p, a, b, stream, oimg);
    rows(job);
  });
}

}  // namespace hubcls
