// CPU kernel of resize_crop_normalize. Per output row: a vertical pass over the needed source rows
// (contiguous uint8 -> float FMA, vectorises) into a row buffer, then a horizontal pass with
// precomputed taps that writes normalised values straight into the output layout.
#include "ops/resize_crop_normalize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common.h"
#include "half.h"

namespace hubcls {

namespace {

struct Work {
  const ImageView* im;
  ResampleCoeffs cx, cy;
  bool flip;
};

inline uint8_t to_u8(float v) {
  v = std::min(std::max(v, 0.f), 255.f);
  return static_cast<uint8_t>(static_cast<int>(v + 0.5f));
}

// Horizontal pass of one row: vb holds the vertically resampled source span (interleaved, C
// channels); dst[oc] receives output channel oc (already flipped and normalised). TX > 0 fixes the
// tap count at compile time so the accumulators stay in registers.
template <int C, int TX>
void hpass(const float* vb, const ResampleCoeffs& cx, int64_t W, bool flip, float* const* dst, const float* a,
           const float* b, const int* in_of_out) {
  const int taps = TX > 0 ? TX : cx.taps;
  const int32_t* st = cx.start.data();
  const float* wt = cx.weight.data();
  const int lo = cx.lo;
  // per output channel: which accumulator feeds it (channel swap / grey replication), resolved here
  const int i0 = in_of_out[0], i1 = in_of_out[1], i2 = in_of_out[2];
  const float a0 = a[0], a1 = a[1], a2 = a[2], b0 = b[0], b1 = b[1], b2 = b[2];
  float* d0 = dst[0];
  float* d1 = dst[1];
  float* d2 = dst[2];
  for (int64_t x = 0; x < W; ++x) {
    const float* s = vb + static_cast<int64_t>(st[x] - lo) * C;
    const float* w = wt + x * taps;
    float acc[C > 0 ? C : 1];
    for (int c = 0; c < C; ++c) acc[c] = 0.f;
    for (int k = 0; k < taps; ++k) {
      const float wk = w[k];
      for (int c = 0; c < C; ++c) acc[c] += wk * s[k * C + c];
    }
    const int64_t ox = flip ? W - 1 - x : x;
    float v0, v1, v2;
    if (C == 1) {
      v0 = v1 = v2 = acc[0];
    } else {
      // i* are 0..2 permutations; selecting with ternaries keeps acc in registers
      v0 = i0 == 0 ? acc[0] : (i0 == 1 ? acc[1 % C] : acc[2 % C]);
      v1 = i1 == 0 ? acc[0] : (i1 == 1 ? acc[1 % C] : acc[2 % C]);
      v2 = i2 == 0 ? acc[0] : (i2 == 1 ? acc[1 % C] : acc[2 % C]);
    }
    d0[ox] = v0 * a0 + b0;
    d1[ox] = v1 * a1 + b1;
    d2[ox] = v2 * a2 + b2;
  }
}

template <int C>
void hpass_dispatch(const float* vb, const ResampleCoeffs& cx, int64_t W, bool flip, float* const* dst, const float* a,
                    const float* b, const int* in_of_out) {
  switch (cx.taps) {
    case 1: hpass<C, 1>(vb, cx, W, flip, dst, a, b, in_of_out); break;
    case 2: hpass<C, 2>(vb, cx, W, flip, dst, a, b, in_of_out); break;
    case 3: hpass<C, 3>(vb, cx, W, flip, dst, a, b, in_of_out); break;
    case 4: hpass<C, 4>(vb, cx, W, flip, dst, a, b, in_of_out); break;
    case 5: hpass<C, 5>(vb, cx, W, flip, dst, a, b, in_of_out); break;
    case 6: hpass<C, 6>(vb, cx, W, flip, dst, a, b, in_of_out); break;
    default: hpass<C, 0>(vb, cx, W, flip, dst, a, b, in_of_out); break;
  }
}

template <int C>
void run_rows(const Work& wk, int64_t y0, int64_t y1, const RCNParams& p, const float* a, const float* b,
              void* out_img) {
  const ImageView& im = *wk.im;
  const ResampleCoeffs& cx = wk.cx;
  const ResampleCoeffs& cy = wk.cy;
  const int64_t W = p.out_w, H = p.out_h;
  const int64_t span = static_cast<int64_t>(cx.hi - cx.lo) * C;
  std::vector<float> vbuf(static_cast<size_t>(span));
  std::vector<float> obuf(static_cast<size_t>(3 * W));
  std::vector<float> ibuf(p.nchw ? 0 : static_cast<size_t>(3 * W));
  const int ty = cy.taps;
  int in_of_out[3];
  for (int oc = 0; oc < 3; ++oc) in_of_out[oc] = C == 1 ? 0 : (p.swap_rb ? 2 - oc : oc);
  // float32 NCHW is written straight into the output planes; everything else goes through obuf
  const bool direct = p.nchw && p.dtype == OutDType::Float32;
  for (int64_t y = y0; y < y1; ++y) {
    // vertical pass: contiguous uint8 rows -> float span (vectorises)
    const float* wy = &cy.weight[static_cast<size_t>(y * ty)];
    const uint8_t* base = im.data + static_cast<int64_t>(cy.start[y]) * im.row_stride + static_cast<int64_t>(cx.lo) * C;
    float* vb = vbuf.data();
    {
      const float w0 = wy[0];
      for (int64_t i = 0; i < span; ++i) vb[i] = w0 * static_cast<float>(base[i]);
    }
    for (int k = 1; k < ty; ++k) {
      const float wk_ = wy[k];
      if (wk_ == 0.f) continue;
      const uint8_t* r = base + k * im.row_stride;
      for (int64_t i = 0; i < span; ++i) vb[i] += wk_ * static_cast<float>(r[i]);
    }
    float* dst[3];
    for (int oc = 0; oc < 3; ++oc)
      dst[oc] = direct ? static_cast<float*>(out_img) + (oc * H + y) * W : obuf.data() + oc * W;
    hpass_dispatch<C>(vb, cx, W, wk.flip, dst, a, b, in_of_out);
    if (direct) continue;
    const float* row = obuf.data();
    if (!p.nchw) {  // interleave
      float* ib = ibuf.data();
      for (int64_t x = 0; x < W; ++x)
        for (int oc = 0; oc < 3; ++oc) ib[x * 3 + oc] = obuf[static_cast<size_t>(oc * W + x)];
      row = ib;
    }
    for (int plane = 0; plane < (p.nchw ? 3 : 1); ++plane) {
      const int64_t n = p.nchw ? W : 3 * W;
      const float* srow = row + (p.nchw ? plane * W : 0);
      const int64_t off = p.nchw ? (plane * H + y) * W : y * 3 * W;
      switch (p.dtype) {
        case OutDType::Float32:
          std::memcpy(static_cast<float*>(out_img) + off, srow, static_cast<size_t>(n) * sizeof(float));
          break;
        case OutDType::Float16:
          floats_to_halves(srow, static_cast<uint16_t*>(out_img) + off, n);
          break;
        case OutDType::UInt8: {
          uint8_t* d = static_cast<uint8_t*>(out_img) + off;
          for (int64_t i = 0; i < n; ++i) d[i] = to_u8(srow[i]);
          break;
        }
      }
    }
  }
}

}  // namespace

void check_box(const double* bx, int64_t img_h, int64_t img_w, int64_t index) {
  const double x = bx[0], y = bx[1], w = bx[2], h = bx[3];
  const double eps = 1e-3;
  const std::string name = "resize_crop_normalize: box " + std::to_string(index);
  if (!(std::isfinite(x) && std::isfinite(y) && std::isfinite(w) && std::isfinite(h))) throw ArgumentError(name + " is not finite");
  if (!(w > 0 && h > 0)) throw ArgumentError(name + " has a non-positive width or height");
  if (x < -eps || y < -eps || x + w > img_w + eps || y + h > img_h + eps)
    throw ArgumentError(name + " (" + std::to_string(x) + ", " + std::to_string(y) + ", " + std::to_string(w) + ", " +
                        std::to_string(h) + ") lies outside its " + std::to_string(img_w) + "x" + std::to_string(img_h) +
                        " image");
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
  Work wk;
  wk.im = &im;
  wk.cx = cx;
  wk.cy = cy;
  wk.flip = flip;
  switch (im.c) {
    case 1: run_rows<1>(wk, 0, p.out_h, p, a, b, out_img); break;
    case 3: run_rows<3>(wk, 0, p.out_h, p, a, b, out_img); break;
    default: run_rows<4>(wk, 0, p.out_h, p, a, b, out_img); break;
  }
}

void resize_crop_normalize_cpu(const std::vector<ImageView>& images, const double* boxes, const uint8_t* flips,
                               void* out, const RCNParams& p, int num_threads) {
  const int64_t n = static_cast<int64_t>(images.size());
  check_params(p);
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& im = images[i];
    if (!im.data || im.h <= 0 || im.w <= 0) throw ArgumentError("resize_crop_normalize: image " + std::to_string(i) + " is empty");
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
  const size_t elem = p.dtype == OutDType::Float32 ? 4 : (p.dtype == OutDType::Float16 ? 2 : 1);
  const int64_t img_elems = 3 * p.out_h * p.out_w;
  parallel_for(n * chunks, num_threads, [&](int64_t t) {
    const int64_t i = t / chunks, ch = t % chunks;
    const int64_t y0 = p.out_h * ch / chunks, y1 = p.out_h * (ch + 1) / chunks;
    if (y0 >= y1) return;
    const ImageView& im = images[i];
    double box[4];
    clamp_box(boxes + 4 * i, im.h, im.w, box);
    const double x = box[0], y = box[1], w = box[2], h = box[3];
    Work wk;
    wk.im = &im;
    const bool area_up = !p.antialias && p.interp == Interp::Area && (w < p.out_w || h < p.out_h);
    wk.cx = compute_resample_coeffs(im.w, x, w, p.out_w, p.interp, p.antialias, area_up);
    wk.cy = compute_resample_coeffs(im.h, y, h, p.out_h, p.interp, p.antialias, area_up);
    wk.flip = flips ? flips[i] != 0 : false;
    void* oimg = static_cast<char*>(out) + static_cast<size_t>(i * img_elems) * elem;
    switch (im.c) {
      case 1: run_rows<1>(wk, y0, y1, p, a, b, oimg); break;
      case 3: run_rows<3>(wk, y0, y1, p, a, b, oimg); break;
      default: run_rows<4>(wk, y0, y1, p, a, b, oimg); break;
    }
  });
}

}  // namespace hubcls
