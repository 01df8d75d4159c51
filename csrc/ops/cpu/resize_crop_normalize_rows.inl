// Row kernel of resize_crop_normalize, written once against the vector layer of simd.h and
// compiled per ISA by resize_crop_normalize_{scalar,avx2,avx512}.cpp (each defines
// HUBCLS_RCN_ROWS, the entry point's name, then includes simd.h and this file).
//
// Per output row:
//   1. vertical pass: the few source rows it needs, uint8 -> float, weighted sum over the span of
//      columns the crop reads, into one float plane per OUTPUT channel (the byte shuffle that
//      widens the pixels also de-interleaves them and applies the channel swap; grey feeds all
//      three). The normalisation is folded in: weights * a[c], sums start at b[c] (the horizontal
//      weights sum to 1, so adding b before the horizontal pass is the same as after it);
//   2. horizontal pass per plane: each block of kLanes outputs reads a small window of its plane;
//      the taps are fetched with register permutes (one, two or four loaded vectors, chosen per
//      block from the window width) or, for wide windows, a gather; flip is folded into the tables.
//      float32 NCHW rows are written straight to the output (or to the streaming stage);
//   3. otherwise a store pass converts (float16 / uint8) and / or interleaves (NHWC).
// Outputs of 8 MB and more are written with non-temporal stores (LineStreamer).
// Everything is in an anonymous namespace except the entry point (see simd.h for why).

namespace hubcls {
namespace {

enum BlockMode : int32_t { kGather = 0, kPerm1 = 1, kPerm2 = 2, kPerm4 = 4 };

// Horizontal taps of the output row, per block of kLanes outputs (the last block padded by
// repeating the last output).
struct HTable {
  int64_t blocks = 0;
  int taps = 0;
  int32_t* base = nullptr;  // per block: plane index its window starts at
  int32_t* mode = nullptr;  // per block: BlockMode
  int32_t* idx = nullptr;   // [block][tap][lane]: index into the window
  float* w = nullptr;       // [block][tap][lane]: weight
};

void build_htable(const rcn::Job& job, HTable& t) {
  const rcn::Axis& ax = job.x;
  const int64_t W = job.out_w;
  const int taps = ax.taps;
  for (int64_t j = 0; j < t.blocks; ++j) {
    int32_t s[kLanes];
    int64_t src_out[kLanes];
    int32_t lo = 0x7fffffff, hi = 0;
    for (int l = 0; l < kLanes; ++l) {
      const int64_t x = imin(j * kLanes + l, W - 1);
      src_out[l] = job.flip ? W - 1 - x : x;
      s[l] = ax.start[src_out[l]] - ax.lo;
      lo = s[l] < lo ? s[l] : lo;
      hi = s[l] > hi ? s[l] : hi;
    }
    const int32_t window = hi - lo + taps;
    int32_t mode = kGather;
    if (kLanes > 1) {
      if (window <= kLanes) mode = kPerm1;
      else if (window <= 2 * kLanes) mode = kPerm2;
      else if (window <= 4 * kLanes) mode = kPerm4;
    }
    t.base[j] = lo;
    t.mode[j] = mode;
    for (int k = 0; k < taps; ++k)
      for (int l = 0; l < kLanes; ++l) {
        t.idx[(j * taps + k) * kLanes + l] = s[l] - lo + k;
        t.w[(j * taps + k) * kLanes + l] = ax.weight[src_out[l] * taps + k];
      }
  }
}

// Horizontal pass of the 3 planes into dst[c] (blocks * kLanes floats each). TAPS > 0 fixes the
// tap count so the tables of a block stay in registers across the planes.
template <int TAPS>
void hpass(const HTable& t, const float* const* planes, float* const* dst) {
  const int taps = TAPS > 0 ? TAPS : t.taps;
  constexpr int R = TAPS > 0 ? TAPS : 1;
  for (int64_t j = 0; j < t.blocks; ++j) {
    const int32_t* ix = t.idx + j * taps * kLanes;
    const float* wx = t.w + j * taps * kLanes;
    const int32_t mode = t.mode[j];
    const int64_t base = t.base[j];
    VI I[R];
    VF Wt[R];
    if (TAPS > 0)
      for (int k = 0; k < R; ++k) {
        I[k] = vload_i(ix + k * kLanes);
        Wt[k] = vload(wx + k * kLanes);
      }
    auto tap = [&](int k) -> VI { return TAPS > 0 ? I[k] : vload_i(ix + k * kLanes); };
    auto wt = [&](int k) -> VF { return TAPS > 0 ? Wt[k] : vload(wx + k * kLanes); };
    for (int p = 0; p < 3; ++p) {
      const float* src = planes[p] + base;
      VF acc = vzero();
      if (mode == kPerm2) {
        const VF A = vload(src), B = vload(src + kLanes);
        for (int k = 0; k < taps; ++k) acc = vfma(wt(k), vpermute2(A, B, tap(k)), acc);
      } else if (mode == kPerm1) {
        const VF A = vload(src);
        for (int k = 0; k < taps; ++k) acc = vfma(wt(k), vpermute1(A, tap(k)), acc);
      } else if (mode == kPerm4) {
        const VF A = vload(src), B = vload(src + kLanes), C = vload(src + 2 * kLanes), D = vload(src + 3 * kLanes);
        for (int k = 0; k < taps; ++k) acc = vfma(wt(k), vpermute4(A, B, C, D, tap(k)), acc);
      } else {
        for (int k = 0; k < taps; ++k) acc = vfma(wt(k), vgather(src, tap(k)), acc);
      }
      vstore(dst[p] + j * kLanes, acc);
    }
  }
}

void hpass_dispatch(const HTable& t, const float* const* planes, float* const* dst) {
  switch (t.taps) {
    case 1: hpass<1>(t, planes, dst); break;
    case 2: hpass<2>(t, planes, dst); break;
    case 3: hpass<3>(t, planes, dst); break;
    case 4: hpass<4>(t, planes, dst); break;
    case 5: hpass<5>(t, planes, dst); break;
    case 6: hpass<6>(t, planes, dst); break;
    default: hpass<0>(t, planes, dst); break;
  }
}

// Vertical pass into the 3 output-channel planes: planes[c][i] = b[c] + sum_k wk[k] * a[c] *
// rows[k][i * C + src(c)] for i in [0, span), the rows already offset to the span's first column;
// src(c) = 2 - c with swap (BGR input), c otherwise, 0 for grey. N > 0 fixes the number of rows.
template <int C, int N>
void vpass(const uint8_t* const* rows_in, const float* wk, int n_in, int64_t span, const float* a, const float* b,
           bool swap, float* const* planes) {
  const int n = N > 0 ? N : n_in;
  constexpr int R = N > 0 ? N : 1;
  const uint8_t* rows[R];
  VF W[R][3];
  if (N > 0)
    for (int k = 0; k < R; ++k) {
      rows[k] = rows_in[k];
      for (int c = 0; c < 3; ++c) W[k][c] = vset1(wk[k] * a[c]);
    }
  const VF B0 = vset1(b[0]), B1 = vset1(b[1]), B2 = vset1(b[2]);
  int64_t i = 0;
  for (; i + kLanes <= span; i += kLanes) {
    VF acc[3] = {B0, B1, B2};
    for (int k = 0; k < n; ++k) {
      VF px[3];
      load_px<C>((N > 0 ? rows[k] : rows_in[k]) + i * C, swap, px);
      for (int c = 0; c < 3; ++c) {
        const VF w = N > 0 ? W[k][c] : vset1(wk[k] * a[c]);
        acc[c] = vfma(w, px[C == 1 ? 0 : c], acc[c]);
      }
    }
    for (int c = 0; c < 3; ++c) vstore(planes[c] + i, acc[c]);
  }
  for (; i < span; ++i)
    for (int c = 0; c < 3; ++c) {
      const int ch = C == 1 ? 0 : (swap ? 2 - c : c);
      float s = b[c];
      for (int k = 0; k < n_in; ++k) s += wk[k] * a[c] * static_cast<float>(rows_in[k][i * C + ch]);
      planes[c][i] = s;
    }
}

template <int C>
void vpass_dispatch(const uint8_t* const* rows, const float* wk, int n, int64_t span, const rcn::Job& job,
                    float* const* planes) {
  const bool swap = job.in_of_out[0] == 2;
  switch (n) {
    case 1: vpass<C, 1>(rows, wk, n, span, job.a, job.b, swap, planes); break;
    case 2: vpass<C, 2>(rows, wk, n, span, job.a, job.b, swap, planes); break;
    case 3: vpass<C, 3>(rows, wk, n, span, job.a, job.b, swap, planes); break;
    case 4: vpass<C, 4>(rows, wk, n, span, job.a, job.b, swap, planes); break;
    default: vpass<C, 0>(rows, wk, n, span, job.a, job.b, swap, planes); break;
  }
}

// Converts n floats to dtype (float16: round to nearest even; uint8: round half up, saturate).
void convert_row(const float* t, int64_t n, OutDType dtype, uint8_t* dst) {
  const int64_t full = n / kLanes * kLanes;
  switch (dtype) {
    case OutDType::Float32:
      std::memcpy(dst, t, static_cast<size_t>(n) * sizeof(float));
      break;
    case OutDType::Float16: {
      uint16_t* d = reinterpret_cast<uint16_t*>(dst);
      for (int64_t x = 0; x < full; x += kLanes) vstore_f16(d + x, vload(t + x));
      for (int64_t x = full; x < n; ++x) d[x] = float_to_half(t[x]);
      break;
    }
    case OutDType::UInt8: {
      for (int64_t x = 0; x < full; x += kLanes) vstore_u8(dst + x, vload(t + x));
      for (int64_t x = full; x < n; ++x) dst[x] = to_u8_scalar(t[x]);
      break;
    }
  }
}

// Interleaves the three planes (HWC) and converts them to dtype.
void interleave_row(const float* const* T, int64_t n, OutDType dtype, uint8_t* dst) {
  const int64_t full = n / kLanes * kLanes;
  for (int64_t x = 0; x < full; x += kLanes) {
    VF o0, o1, o2;
    interleave3(vload(T[0] + x), vload(T[1] + x), vload(T[2] + x), o0, o1, o2);
    const int64_t e = x * 3;
    switch (dtype) {
      case OutDType::Float32: {
        float* d = reinterpret_cast<float*>(dst) + e;
        vstore(d, o0); vstore(d + kLanes, o1); vstore(d + 2 * kLanes, o2);
        break;
      }
      case OutDType::Float16: {
        uint16_t* d = reinterpret_cast<uint16_t*>(dst) + e;
        vstore_f16(d, o0); vstore_f16(d + kLanes, o1); vstore_f16(d + 2 * kLanes, o2);
        break;
      }
      case OutDType::UInt8: {
        uint8_t* d = dst + e;
        vstore_u8(d, o0); vstore_u8(d + kLanes, o1); vstore_u8(d + 2 * kLanes, o2);
        break;
      }
    }
  }
  for (int64_t x = full; x < n; ++x)
    for (int oc = 0; oc < 3; ++oc) {
      const float v = T[oc][x];
      const int64_t e = x * 3 + oc;
      switch (dtype) {
        case OutDType::Float32: reinterpret_cast<float*>(dst)[e] = v; break;
        case OutDType::Float16: reinterpret_cast<uint16_t*>(dst)[e] = float_to_half(v); break;
        case OutDType::UInt8: dst[e] = to_u8_scalar(v); break;
      }
    }
}

// Writes consecutive rows of one contiguous output region with non-temporal stores of whole
// 64-byte lines. A row is formatted into `stage` at offset 64 (buffer()); the bytes of the
// previous row that did not fill an aligned line wait just before it, so the line that straddles
// the two rows is one contiguous load. Every streamed line is written exactly once, in full,
// whatever the alignment of the output; the partial lines at the two ends of the region (shared
// with the neighbouring region or task) are written with ordinary stores.
struct LineStreamer {
  uint8_t* stage = nullptr;  // 64 + row bytes + 64 (copy64 slack), 64-byte aligned
  int pending = 0;           // bytes waiting at stage[64 - pending, 64)
  bool started = false;

  uint8_t* buffer() const { return stage + 64; }

  // Streams the n >= 64 bytes formatted at buffer() to dst (the continuation of the previous row).
  void flush(uint8_t* dst, int64_t n) {
    const uint8_t* src = stage + 64;
    if (!started) {
      const int64_t head = imin(n, static_cast<int64_t>((64 - (reinterpret_cast<uintptr_t>(dst) & 63)) & 63));
      std::memcpy(dst, src, static_cast<size_t>(head));
      dst += head; src += head; n -= head;
      started = true;
    } else if (pending) {
      const int64_t take = 64 - pending;
      vstream_line(dst - pending, src - pending);
      dst += take; src += take; n -= take;
      pending = 0;
    }
    for (; n >= 64; dst += 64, src += 64, n -= 64) vstream_line(dst, src);
    copy64(stage + 64 - n, src);  // the tail waits for the next row (copy64 loads before it stores)
    pending = static_cast<int>(n);
  }
  // end: the address just past the last row written
  void finish(uint8_t* end) {
    std::memcpy(end - pending, stage + 64 - pending, static_cast<size_t>(pending));
    pending = 0;
  }
};

// Horizontal pass of output row y and its store: float32 NCHW goes straight from the horizontal
// pass to the output row (or to the streaming stage); the other formats through tmp.
void write_row(const rcn::Job& job, int64_t y, const HTable& t, const float* const* planes, float* const* tmp,
               LineStreamer* streams) {
  const int64_t W = job.out_w, H = job.out_h;
  const int64_t isz = itemsize(job.dtype);
  uint8_t* out = static_cast<uint8_t*>(job.out);
  if (job.nchw) {
    uint8_t* row[3];
    for (int c = 0; c < 3; ++c) row[c] = out + ((c * H + y) * W) * isz;
    if (job.dtype == OutDType::Float32 && (job.stream || W % kLanes == 0)) {
      float* dst[3];
      for (int c = 0; c < 3; ++c) dst[c] = job.stream ? reinterpret_cast<float*>(streams[c].buffer()) : reinterpret_cast<float*>(row[c]);
      hpass_dispatch(t, planes, dst);
    } else {
      hpass_dispatch(t, planes, tmp);
      for (int c = 0; c < 3; ++c) convert_row(tmp[c], W, job.dtype, job.stream ? streams[c].buffer() : row[c]);
    }
    if (job.stream)
      for (int c = 0; c < 3; ++c) streams[c].flush(row[c], W * isz);
    return;
  }
  hpass_dispatch(t, planes, tmp);
  uint8_t* row = out + y * W * 3 * isz;
  interleave_row(tmp, W, job.dtype, job.stream ? streams[0].buffer() : row);
  if (job.stream) streams[0].flush(row, W * 3 * isz);
}

template <int C>
void run_rows(const rcn::Job& job) {
  constexpr int np = 3;
  const int64_t span = job.x.hi - job.x.lo;
  const int64_t plane_len = (span + 4 * kLanes + 15) / 16 * 16;  // room for the widest window load
  HTable t;
  t.taps = job.x.taps;
  t.blocks = (job.out_w + kLanes - 1) / kLanes;
  const int64_t wpad = t.blocks * kLanes;
  const int64_t table_len = t.blocks * t.taps * kLanes;
  const int ty = job.y.taps;
  // streaming: per output region a stage of 64 + one formatted row + 64 bytes
  const int64_t stage_bytes = 3 * wpad * itemsize(job.dtype) + 128;
  const int n_stages = job.stream ? (job.nchw ? 3 : 1) : 0;
  const size_t bytes = sizeof(float) * static_cast<size_t>(np * plane_len + np * wpad + table_len) +
                       static_cast<size_t>(n_stages * stage_bytes) +
                       sizeof(int32_t) * static_cast<size_t>(table_len + 2 * t.blocks) +
                       (sizeof(const uint8_t*) + sizeof(float)) * static_cast<size_t>(ty) + 16 * 64;  // + rounding of each take
  Scratch scratch(bytes);
  char* cur = scratch.base();
  auto take = [&](size_t n) {
    char* p = cur;
    cur += (n + 63) / 64 * 64;
    return p;
  };
  float* planes[3];
  float* tmp[3];
  for (int p = 0; p < np; ++p) {
    planes[p] = reinterpret_cast<float*>(take(sizeof(float) * plane_len));
    // the window loads of the last blocks may read past the span: keep that padding defined
    std::memset(planes[p] + span, 0, sizeof(float) * static_cast<size_t>(plane_len - span));
  }
  for (int p = 0; p < np; ++p) tmp[p] = reinterpret_cast<float*>(take(sizeof(float) * wpad));
  t.w = reinterpret_cast<float*>(take(sizeof(float) * table_len));
  t.idx = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * table_len));
  t.base = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * t.blocks));
  t.mode = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * t.blocks));
  const uint8_t** rows = reinterpret_cast<const uint8_t**>(take(sizeof(const uint8_t*) * ty));
  float* wk = reinterpret_cast<float*>(take(sizeof(float) * ty));
  LineStreamer streams[3];
  for (int k = 0; k < n_stages; ++k) streams[k].stage = reinterpret_cast<uint8_t*>(take(static_cast<size_t>(stage_bytes)));
  build_htable(job, t);

  const uint8_t* first_col = job.src_rows ? nullptr : job.src + static_cast<int64_t>(job.x.lo) * C;
  for (int64_t y = job.y0; y < job.y1; ++y) {
    if (job.feed && !job.feed(job.feed_ctx, static_cast<int64_t>(job.y.start[y]) + ty)) break;
    int n = 0;  // the source rows with a non-zero weight
    for (int k = 0; k < ty; ++k) {
      const float w = job.y.weight[y * ty + k];
      if (w == 0.f) continue;
      const int64_t r = static_cast<int64_t>(job.y.start[y]) + k;
      rows[n] = job.src_rows ? job.src_rows[r] + static_cast<int64_t>(job.x.lo) * C : first_col + r * job.row_stride;
      wk[n] = w;
      ++n;
    }
    vpass_dispatch<C>(rows, wk, n, span, job, planes);
    write_row(job, y, t, planes, tmp, streams);
  }
  if (job.stream) {
    const int64_t isz = itemsize(job.dtype), W = job.out_w, H = job.out_h;
    uint8_t* out = static_cast<uint8_t*>(job.out);
    if (job.nchw)
      for (int oc = 0; oc < 3; ++oc) streams[oc].finish(out + ((oc * H + job.y1) * W) * isz);
    else
      streams[0].finish(out + job.y1 * W * 3 * isz);
    vfence();  // order the non-temporal stores before the caller reads the batch
  }
}

}  // namespace

namespace rcn {

void HUBCLS_RCN_ROWS(const Job& job) {
  switch (job.c) {
    case 1: run_rows<1>(job); break;
    case 3: run_rows<3>(job); break;
    default: run_rows<4>(job); break;
  }
}

}  // namespace rcn
}  // namespace hubcls
