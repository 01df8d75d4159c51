// CPU implementation of jpeg_decode_resize (see ops/jpeg_decode.h) on libjpeg-turbo's libjpeg API.
//
// Geometry. The caller's box/clip live in the displayed image (EXIF orientation applied). With DCT
// scale 1/d the decoder produces ceil(W/d) x ceil(H/d) pixels, output pixel i covering source
// pixels [i*d, (i+1)*d): a displayed coordinate x maps to (x + pad)/d, where pad = ceil(W/d)*d - W
// on an axis the orientation reverses (the partial last block then sits at the displayed start) and
// 0 otherwise. The resampling taps are computed on the scaled clip exactly as resize_crop_normalize
// computes them on the cropped image, so at d = 1 the result equals full decode + that kernel; the
// taps' span [lo, hi) per axis is the only region decoded, mapped back through the orientation to
// stored (raw) rows and columns. Regions over kStreamRegionBytes (orientation 1) are not decoded
// whole: their rows are decoded into a ring of vertical-taps rows as the resize kernel reaches them.
#include "ops/jpeg_decode.h"

#include <jpeglib.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "common.h"

#define HUBCLS_STR2(x) #x
#define HUBCLS_STR(x) HUBCLS_STR2(x)

namespace hubcls {

std::string jpeg_library_version() {
#ifdef LIBJPEG_TURBO_VERSION
  return "libjpeg-turbo " HUBCLS_STR(LIBJPEG_TURBO_VERSION);
#else
  return "libjpeg " HUBCLS_STR(JPEG_LIB_VERSION);
#endif
}

namespace {

// libjpeg reports errors through error_exit (must not return) and warnings through emit_message(-1).
// Both end this image's decode: a warning means corrupt data, and the caller's general decoder
// (Pillow/OpenCV) decides what that file is worth, so one policy holds for every path.
struct ErrorMgr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorMgr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);  // a warning: corrupt data
}

void no_output(j_common_ptr) {}

// Runs fn (libjpeg calls only: no C++ object may live across the longjmp) and returns false when
// libjpeg bailed out.
template <class Fn>
bool guarded(ErrorMgr& err, Fn&& fn) {
  if (setjmp(err.jump)) return false;
  fn();
  return true;
}

// Stored pixel of displayed pixel (x, y): orientations 5-8 swap the axes; rx/ry reverse a stored axis.
struct Orientation {
  bool swap = false, rx = false, ry = false;
  explicit Orientation(int o) {
    static const bool table[9][3] = {{0, 0, 0}, {0, 0, 0}, {0, 1, 0}, {0, 1, 1}, {0, 0, 1},
                                     {1, 0, 0}, {1, 0, 1}, {1, 1, 1}, {1, 1, 0}};
    swap = table[o][0];
    rx = table[o][1];
    ry = table[o][2];
  }
  bool reverses_displayed_x() const { return swap ? ry : rx; }
  bool reverses_displayed_y() const { return swap ? rx : ry; }
};

struct Decompressor {
  jpeg_decompress_struct cinfo;
  ErrorMgr err;
  bool created = false;
  Decompressor() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.pub.output_message = no_output;
    err.message[0] = '\0';
  }
  ~Decompressor() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

JpegResult fail(JpegStatus s, std::string msg) {
  JpegResult r;
  r.status = s;
  r.message = std::move(msg);
  return r;
}

// Streams the decoded rows into the resize pass (resize_normalize_streamed_cpu): region row r (stored
// scanline row0 + r) is decoded into ring slot r % cap when the kernel first needs it; cap = the
// vertical taps, enough because the rows an output row reads never start before the previous row's.
struct RowFeed {
  Decompressor* d = nullptr;
  int64_t total = 0;                     // rows of the region
  int64_t done = 0;                      // rows decoded so far
  int64_t cap = 0, stride = 0, col = 0;  // ring rows, bytes per decoded row, offset of the region's first column
  uint8_t* ring = nullptr;
  const uint8_t** rows = nullptr;  // region row -> its first column in the ring
  bool ok = true;                  // false once libjpeg gave up (the kernel then stops)
};

bool feed_rows(void* ctx, int64_t end) {
  RowFeed& f = *static_cast<RowFeed*>(ctx);
  end = std::min(end, f.total);
  if (f.done >= end) return true;
  const bool ok = guarded(f.d->err, [&] {
    JSAMPROW ptrs[16];
    while (f.done < end) {
      const int64_t n = std::min<int64_t>(16, end - f.done);
      for (int64_t k = 0; k < n; ++k) ptrs[k] = f.ring + ((f.done + k) % f.cap) * f.stride;
      const JDIMENSION got = jpeg_read_scanlines(&f.d->cinfo, ptrs, static_cast<JDIMENSION>(n));
      if (got == 0) break;
      for (JDIMENSION k = 0; k < got; ++k) f.rows[f.done + k] = ptrs[k] + f.col;
      f.done += got;
    }
  });
  f.ok = ok && f.done >= end;
  return f.ok;
}

// Regions larger than this stream their rows into the resize pass instead of being decoded whole
// first: beyond the L2 cache the whole region costs a write and a read through memory (and that
// much memory per thread: 36 MB for a 4000x3000 photo at full scale); below it the region stays in
// the cache and the whole-region path (16 rows per decode call) is kept. Measured (1 thread, train
// crops, scale 1): streaming saves ~3% on 4000x3000 photos, is within 1% on 1600x1200 ones and costs
// ~18% on 500x375 ones (a feed per output row and a staged sample for a few hundred kB saved).
constexpr int64_t kStreamRegionBytes = int64_t{1} << 20;

bool starts_increase(const ResampleCoeffs& c) {
  for (size_t i = 1; i < c.start.size(); ++i)
    if (c.start[i] < c.start[i - 1]) return false;
  return true;
}

JpegResult run_job(const JpegJob& job, void* out, int64_t out_count, size_t sample_bytes, const RCNParams& p,
                   int max_scale_denom) {
  if (job.out_index < 0 || job.out_index >= out_count) return fail(JpegStatus::BadArgument, "out_index out of range");
  if (job.orientation < 1 || job.orientation > 8)
    return fail(JpegStatus::BadArgument, "orientation must be 1..8, got " + std::to_string(job.orientation));
  if (!job.data || job.size == 0) return fail(JpegStatus::BadArgument, "empty JPEG buffer");
  Decompressor d;
  jpeg_decompress_struct& ci = d.cinfo;
  if (!guarded(d.err, [&] {
        jpeg_create_decompress(&ci);
        d.created = true;
        jpeg_mem_src(&ci, const_cast<unsigned char*>(job.data), static_cast<unsigned long>(job.size));
        jpeg_read_header(&ci, TRUE);
      }))
    return fail(JpegStatus::DecodeFailed, d.err.message);
  const int channels = ci.num_components == 1 ? 1 : 3;
  if (ci.num_components != 1 && ci.num_components != 3)
    return fail(JpegStatus::DecodeFailed, "unsupported number of components " + std::to_string(ci.num_components));

  const Orientation orient(job.orientation);
  const int64_t W = ci.image_width, H = ci.image_height;
  const int64_t Wd = orient.swap ? H : W, Hd = orient.swap ? W : H;  // displayed size
  if ((job.expect_h || job.expect_w) && (job.expect_h != Hd || job.expect_w != Wd))
    return fail(JpegStatus::DecodeFailed, "the image is " + std::to_string(Wd) + "x" + std::to_string(Hd) +
                                              ", not the expected " + std::to_string(job.expect_w) + "x" +
                                              std::to_string(job.expect_h));

  // the clip must lie in the image and the box in the clip (the 1e-3 px slack of resize_crop_normalize)
  const int64_t* cl = job.clip;
  if (cl[2] <= 0 || cl[3] <= 0 || cl[0] < 0 || cl[1] < 0 || cl[0] + cl[2] > Wd || cl[1] + cl[3] > Hd)
    return fail(JpegStatus::BadArgument, "clip (" + std::to_string(cl[0]) + ", " + std::to_string(cl[1]) + ", " +
                                             std::to_string(cl[2]) + ", " + std::to_string(cl[3]) +
                                             ") lies outside the " + std::to_string(Wd) + "x" + std::to_string(Hd) +
                                             " image");
  // the box must lie in the clip (resize_crop_normalize's check and clamp: a caller bug otherwise)
  check_box(job.box, cl[3], cl[2], 0);
  double box[4];
  clamp_box(job.box, cl[3], cl[2], box);
  const double bx = box[0], by = box[1], bw = box[2], bh = box[3];

  // the largest allowed DCT scale whose scaled box still covers the output
  int den = 1;
  for (int cand : {8, 4, 2}) {
    if (cand <= max_scale_denom && bw / cand >= static_cast<double>(p.out_w) &&
        bh / cand >= static_cast<double>(p.out_h)) {
      den = cand;
      break;
    }
  }
  ci.scale_num = 1;
  ci.scale_denom = static_cast<unsigned int>(den);
  ci.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (!guarded(d.err, [&] { jpeg_calc_output_dimensions(&ci); })) return fail(JpegStatus::DecodeFailed, d.err.message);
  const int64_t Ws = ci.output_width, Hs = ci.output_height;               // stored, scaled
  const int64_t Wds = orient.swap ? Hs : Ws, Hds = orient.swap ? Ws : Hs;  // displayed, scaled

  // clip and box in displayed scaled pixels
  const double padx = orient.reverses_displayed_x() ? static_cast<double>(Wds * den - Wd) : 0.0;
  const double pady = orient.reverses_displayed_y() ? static_cast<double>(Hds * den - Hd) : 0.0;
  const int64_t cx0 = static_cast<int64_t>(std::floor((cl[0] + padx) / den));
  const int64_t cy0 = static_cast<int64_t>(std::floor((cl[1] + pady) / den));
  const int64_t cx1 = std::min<int64_t>(static_cast<int64_t>(std::ceil((cl[0] + cl[2] + padx) / den)), Wds);
  const int64_t cy1 = std::min<int64_t>(static_cast<int64_t>(std::ceil((cl[1] + cl[3] + pady) / den)), Hds);
  // (integer offset + pad + box) / d: at d = 1 this is the clip-relative box itself, bit for bit
  double sbx = (static_cast<double>(cl[0] - cx0 * den) + padx + bx) / den;
  double sby = (static_cast<double>(cl[1] - cy0 * den) + pady + by) / den;
  double sbw = bw / den, sbh = bh / den;
  sbw = std::min(sbw, static_cast<double>(cx1 - cx0) - std::max(sbx, 0.0));
  sbh = std::min(sbh, static_cast<double>(cy1 - cy0) - std::max(sby, 0.0));
  sbx = std::max(sbx, 0.0);
  sby = std::max(sby, 0.0);
  const bool area_up = !p.antialias && p.interp == Interp::Area && (sbw < p.out_w || sbh < p.out_h);
  ResampleCoeffs tx = compute_resample_coeffs(cx1 - cx0, sbx, sbw, p.out_w, p.interp, p.antialias, area_up);
  ResampleCoeffs ty = compute_resample_coeffs(cy1 - cy0, sby, sbh, p.out_h, p.interp, p.antialias, area_up);

  // displayed region the taps read, then the stored rows/columns holding it
  const int64_t X0 = cx0 + tx.lo, X1 = cx0 + tx.hi, Y0 = cy0 + ty.lo, Y1 = cy0 + ty.hi;
  int64_t rx0, rx1, ry0, ry1;
  if (!orient.swap) {
    rx0 = orient.rx ? Ws - X1 : X0;
    rx1 = orient.rx ? Ws - X0 : X1;
    ry0 = orient.ry ? Hs - Y1 : Y0;
    ry1 = orient.ry ? Hs - Y0 : Y1;
  } else {
    rx0 = orient.rx ? Ws - Y1 : Y0;
    rx1 = orient.rx ? Ws - Y0 : Y1;
    ry0 = orient.ry ? Hs - X1 : X0;
    ry1 = orient.ry ? Hs - X0 : X1;
  }

  // decode stored rows [ry0, ry1), columns [xoff, xoff + cw) ⊇ [rx0, rx1)
  thread_local std::vector<uint8_t> raw;
  JDIMENSION xoff = static_cast<JDIMENSION>(rx0), cw = static_cast<JDIMENSION>(rx1 - rx0);
  int64_t stride = 0;
  const int64_t rows = ry1 - ry0;
  // Full-width output needs no crop; the decoder widens a crop to whole iMCU columns.
  const bool crop = cw < static_cast<JDIMENSION>(Ws);
  if (!guarded(d.err, [&] {
        ci.dct_method = JDCT_ISLOW;
        jpeg_start_decompress(&ci);
        if (crop) {
          // Fancy chroma upsampling treats the ends of a cropped scanline as the image's edges: widen
          // the crop by one iMCU column on each side so the columns we use see their real neighbours.
          const int64_t margin = static_cast<int64_t>(ci.max_h_samp_factor) * ci.min_DCT_scaled_size;
          const int64_t a = std::max<int64_t>(rx0 - margin, 0), b = std::min<int64_t>(rx1 + margin, Ws);
          xoff = static_cast<JDIMENSION>(a);
          cw = static_cast<JDIMENSION>(b - a);
          if (cw < ci.output_width) jpeg_crop_scanline(&ci, &xoff, &cw);
          else xoff = 0, cw = ci.output_width;
        } else {
          xoff = 0, cw = ci.output_width;
        }
      }))
    return fail(JpegStatus::DecodeFailed, d.err.message);
  stride = static_cast<int64_t>(cw) * channels;
  void* dst = static_cast<char*>(out) + static_cast<size_t>(job.out_index) * sample_bytes;
  // taps relative to the decoded region
  for (auto& s : tx.start) s -= tx.lo;
  for (auto& s : ty.start) s -= ty.lo;
  tx.hi -= tx.lo;
  tx.lo = 0;
  ty.hi -= ty.lo;
  ty.lo = 0;
  // the per-thread buffers live as long as the thread: do not keep one huge photo's worth around
  constexpr size_t kKeep = size_t{64} << 20;
  // skip to the region's first row: the rows above it are entropy-decoded only
  if (!guarded(d.err, [&] {
        if (ry0 > 0) jpeg_skip_scanlines(&ci, static_cast<JDIMENSION>(ry0));
      }))
    return fail(JpegStatus::DecodeFailed, d.err.message);
  JpegResult done;
  done.scale_denom = den;
  done.decoded_w = static_cast<int64_t>(cw);
  done.decoded_h = rows;
  if (job.orientation == 1 && rows * stride > kStreamRegionBytes && starts_increase(ty)) {
    thread_local std::vector<uint8_t> ring, staged;
    thread_local std::vector<const uint8_t*> row_ptrs;
    RowFeed f;
    f.d = &d;
    f.total = rows;
    f.cap = std::min<int64_t>(ty.taps, rows);
    f.stride = stride;
    f.col = (rx0 - static_cast<int64_t>(xoff)) * channels;
    if (ring.size() < static_cast<size_t>(f.cap * stride)) ring.resize(static_cast<size_t>(f.cap * stride));
    row_ptrs.assign(static_cast<size_t>(rows), nullptr);
    f.ring = ring.data();
    f.rows = row_ptrs.data();
    // the output goes to a staging sample first, so that a file libjpeg gives up on halfway leaves
    // its batch sample untouched (the caller's general decoder fills it)
    if (staged.size() < sample_bytes) staged.resize(sample_bytes);
    resize_normalize_streamed_cpu(Y1 - Y0, X1 - X0, channels, row_ptrs.data(), feed_rows, &f, tx, ty, job.flip,
                                  staged.data(), p);
    if (!f.ok)
      return fail(JpegStatus::DecodeFailed, d.err.message[0] ? std::string(d.err.message) : "decoder stopped early");
    std::memcpy(dst, staged.data(), sample_bytes);
    if (ring.capacity() > kKeep) std::vector<uint8_t>().swap(ring);
    return done;
  }
  if (raw.size() < static_cast<size_t>(rows * stride)) raw.resize(static_cast<size_t>(rows * stride));
  uint8_t* rbuf = raw.data();
  if (!guarded(d.err, [&] {
        JSAMPROW ptrs[16];
        while (ci.output_scanline < static_cast<JDIMENSION>(ry1)) {
          const int64_t at = static_cast<int64_t>(ci.output_scanline) - ry0;
          const int64_t n = std::min<int64_t>(16, ry1 - ci.output_scanline);
          for (int64_t k = 0; k < n; ++k) ptrs[k] = rbuf + (at + k) * stride;
          if (jpeg_read_scanlines(&ci, ptrs, static_cast<JDIMENSION>(n)) == 0) break;
        }
      }))
    return fail(JpegStatus::DecodeFailed, d.err.message);
  if (ci.output_scanline < static_cast<JDIMENSION>(ry1)) return fail(JpegStatus::DecodeFailed, "decoder stopped early");
  // Stop here: what lies below the last row needed is never decoded (jpeg_destroy aborts).

  ImageView view;
  view.c = channels;
  view.w = X1 - X0;
  view.h = Y1 - Y0;
  thread_local std::vector<uint8_t> oriented;
  if (job.orientation == 1) {
    view.data = rbuf + (rx0 - static_cast<int64_t>(xoff)) * channels;
    view.row_stride = stride;
  } else {  // rearrange the decoded stored region into displayed order
    view.row_stride = view.w * channels;
    if (oriented.size() < static_cast<size_t>(view.h * view.row_stride))
      oriented.resize(static_cast<size_t>(view.h * view.row_stride));
    const int64_t base_x = -static_cast<int64_t>(xoff);
    for (int64_t y = Y0; y < Y1; ++y) {
      uint8_t* dst = oriented.data() + (y - Y0) * view.row_stride;
      for (int64_t x = X0; x < X1; ++x) {
        int64_t sx, sy;
        if (!orient.swap) {
          sx = orient.rx ? Ws - 1 - x : x;
          sy = orient.ry ? Hs - 1 - y : y;
        } else {
          sx = orient.rx ? Ws - 1 - y : y;
          sy = orient.ry ? Hs - 1 - x : x;
        }
        const uint8_t* src = rbuf + (sy - ry0) * stride + (sx + base_x) * channels;
        for (int c = 0; c < channels; ++c) dst[(x - X0) * channels + c] = src[c];
      }
    }
    view.data = oriented.data();
  }
  resize_normalize_with_coeffs_cpu(view, tx, ty, job.flip, dst, p);
  if (raw.capacity() > kKeep) std::vector<uint8_t>().swap(raw);
  if (oriented.capacity() > kKeep) std::vector<uint8_t>().swap(oriented);
  return done;
}

}  // namespace

void jpeg_decode_resize_cpu(const std::vector<JpegJob>& jobs, void* out, int64_t out_count, const RCNParams& p,
                            int max_scale_denom, int num_threads, std::vector<JpegResult>& results) {
  check_params(p);
  if (max_scale_denom != 1 && max_scale_denom != 2 && max_scale_denom != 4 && max_scale_denom != 8)
    throw ArgumentError("jpeg_decode_resize: max_scale_denom must be 1, 2, 4 or 8");
  const size_t sample_bytes = static_cast<size_t>(3 * p.out_h * p.out_w) * itemsize(p.dtype);
  const int64_t n = static_cast<int64_t>(jobs.size());
  results.assign(static_cast<size_t>(n), JpegResult());
  parallel_for(n, num_threads, [&](int64_t i) {
    try {
      results[static_cast<size_t>(i)] =
          run_job(jobs[static_cast<size_t>(i)], out, out_count, sample_bytes, p, max_scale_denom);
    } catch (const std::exception& e) {  // an exception must not leave an OpenMP region
      results[static_cast<size_t>(i)] = fail(JpegStatus::BadArgument, e.what());
    }
  });
}

}  // namespace hubcls
