// The vector layer of the per-ISA CPU kernels: one set of small functions over "a vector of kLanes
// floats", implemented with AVX-512 (16 lanes), AVX2 + FMA + F16C (8 lanes) or plain C++ (1 lane)
// depending on the flags of the translation unit that includes it. Kernels written against it are
// compiled once per ISA (csrc/ops/cpu/*_avx512.cpp, *_avx2.cpp, *_scalar.cpp) and picked at run time
// (csrc/cpu_features.cpp).
//
// Include it ONLY from those per-ISA files. Everything here has internal linkage (anonymous
// namespace) and uses no C++ library templates: an inline function compiled with -mavx512f in one
// file must never be merged by the linker with its baseline copy from another (that would run
// AVX-512 code on a CPU without it).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "half.h"

namespace hubcls {
namespace {

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// Scratch memory of a kernel call, 64-byte aligned (C allocation: no library templates).
struct Scratch {
  void* mem = nullptr;
  explicit Scratch(size_t bytes) {
    mem = std::malloc(bytes + 64);
    if (!mem) throw std::bad_alloc();
  }
  ~Scratch() { std::free(mem); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  char* base() const { return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(mem) + 63) & ~uintptr_t{63}); }
};

inline uint8_t to_u8_scalar(float v) {  // round half up, saturate (what the uint8 output promises)
  v = v < 0.f ? 0.f : (v > 255.f ? 255.f : v);
  return static_cast<uint8_t>(static_cast<int>(v + 0.5f));
}

#if defined(__AVX512F__)
// ------------------------------------------------------------------------------------- AVX-512
constexpr int kLanes = 16;
constexpr const char* kIsaName = "avx512";
using VF = __m512;
using VI = __m512i;

inline VF vzero() { return _mm512_setzero_ps(); }
inline VF vset1(float x) { return _mm512_set1_ps(x); }
inline VF vload(const float* p) { return _mm512_loadu_ps(p); }
inline VI vload_i(const int32_t* p) { return _mm512_loadu_si512(p); }
inline void vstore(float* p, VF v) { _mm512_storeu_ps(p, v); }
// one 64-byte line from src to the 64-byte aligned dst, bypassing the caches
inline void copy64(uint8_t* dst, const uint8_t* src) { _mm512_storeu_si512(dst, _mm512_loadu_si512(src)); }
inline void vstream_line(uint8_t* dst, const uint8_t* src) {
  _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), _mm512_loadu_si512(src));
}
inline VF vfma(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }
inline VF vmul(VF a, VF b) { return _mm512_mul_ps(a, b); }
// kLanes bytes -> floats
inline VF vload_u8(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
// Byte-shuffle tables of load_px: dword l of channel ch's vector takes byte C*l + ch (zero-extended).
template <int C>
struct PxShuffle {
  alignas(64) uint8_t idx[3][64];
  constexpr PxShuffle() : idx{} {
    for (int ch = 0; ch < 3; ++ch)
      for (int b = 0; b < 64; ++b) idx[ch][b] = static_cast<uint8_t>(b % 4 == 0 ? C * (b / 4) + ch : 0);
  }
};
constexpr PxShuffle<3> kPx3{};
constexpr PxShuffle<4> kPx4{};

// kLanes pixels of C interleaved uint8 channels at p -> one float vector per channel (at most 3:
// alpha is dropped; swap: channel order 2, 1, 0). The byte permute (VBMI) de-interleaves and widens
// in one instruction; the load reads exactly the kLanes * C bytes.
template <int C>
inline void load_px(const uint8_t* p, bool swap, VF* out) {
  if (C == 1) {
    out[0] = vload_u8(p);
    return;
  }
  const __m512i v = C == 3 ? _mm512_maskz_loadu_epi8((__mmask64{1} << 48) - 1, p) : _mm512_loadu_si512(p);
  const uint8_t (*tab)[64] = C == 3 ? kPx3.idx : kPx4.idx;
  for (int ch = 0; ch < 3; ++ch) {
    const __m512i idx = _mm512_load_si512(tab[swap ? 2 - ch : ch]);
    out[ch] = _mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(0x1111111111111111ull, idx, v));
  }
}

// table[idx] for idx in [0, kLanes) / [0, 2*kLanes) / [0, 4*kLanes) of the floats at p
inline VF vpermute1(VF a, VI idx) { return _mm512_permutexvar_ps(idx, a); }
inline VF vpermute2(VF a, VF b, VI idx) { return _mm512_permutex2var_ps(a, idx, b); }
inline VF vpermute4(VF a, VF b, VF c, VF d, VI idx) {
  const __mmask16 hi = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(2 * kLanes));
  return _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(a, idx, b), _mm512_permutex2var_ps(c, idx, d));
}
inline VF vgather(const float* p, VI idx) { return _mm512_i32gather_ps(idx, p, 4); }
inline void vstore_f16(uint16_t* p, VF v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstore_u8(uint8_t* p, VF v) {
  v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(255.f));
  const __m512i i = _mm512_cvttps_epi32(_mm512_add_ps(v, _mm512_set1_ps(0.5f)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtusepi32_epi8(i));
}

// interleave3's tables: output k, lane l holds interleaved element j = kLanes*k + l, i.e. lane j / 3
// of plane j % 3, in the planes seen as one array [p0 | p1 | p2]. The first permute fills the lanes
// that come from p0 | p1, the second the rest from p2.
struct Interleave3 {
  alignas(64) int32_t first[3][kLanes];
  alignas(64) int32_t second[3][kLanes];
  constexpr Interleave3() : first{}, second{} {
    for (int k = 0; k < 3; ++k)
      for (int l = 0; l < kLanes; ++l) {
        const int j = kLanes * k + l;
        const int e = (j % 3) * kLanes + j / 3;
        first[k][l] = e < 2 * kLanes ? e : 0;
        second[k][l] = e < 2 * kLanes ? l : kLanes + (e - 2 * kLanes);
      }
  }
};
constexpr Interleave3 kInterleave3{};

// three planes -> 3*kLanes interleaved floats (RGBRGB...)
inline void interleave3(VF p0, VF p1, VF p2, VF& a, VF& b, VF& c) {
  VF* o[3] = {&a, &b, &c};
  for (int k = 0; k < 3; ++k) {
    const VF lo = _mm512_permutex2var_ps(p0, vload_i(kInterleave3.first[k]), p1);
    *o[k] = _mm512_permutex2var_ps(lo, vload_i(kInterleave3.second[k]), p2);
  }
}
inline void vfence() { _mm_sfence(); }

#elif defined(__AVX2__)
// ------------------------------------------------------------------------------------- AVX2
constexpr int kLanes = 8;
constexpr const char* kIsaName = "avx2";
using VF = __m256;
using VI = __m256i;

inline VF vzero() { return _mm256_setzero_ps(); }
inline VF vset1(float x) { return _mm256_set1_ps(x); }
inline VF vload(const float* p) { return _mm256_loadu_ps(p); }
inline VI vload_i(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void vstore(float* p, VF v) { _mm256_storeu_ps(p, v); }
inline void copy64(uint8_t* dst, const uint8_t* src) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32),
                      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32)));
}
inline void vstream_line(uint8_t* dst, const uint8_t* src) {
  _mm256_stream_si256(reinterpret_cast<__m256i*>(dst), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
  _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + 32),
                      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32)));
}
inline VF vfma(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
inline VF vmul(VF a, VF b) { return _mm256_mul_ps(a, b); }
inline VF vload_u8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
// Byte-shuffle tables of load_px. The 8 pixels are loaded as two overlapping 16-byte halves
// (C = 3: bytes 0-15 and 8-23; C = 4: bytes 0-15 and 16-31) so no byte past the 8 pixels is read;
// dword l of channel ch takes its pixel's byte, zero-extended (0x80 = zero).
template <int C>
struct PxShuffle {
  alignas(32) uint8_t idx[3][32];
  constexpr PxShuffle() : idx{} {
    const int second = C == 3 ? 8 : 16;  // byte offset of the upper half's load
    for (int ch = 0; ch < 3; ++ch)
      for (int b = 0; b < 32; ++b) {
        const int px = b / 4;  // 0..7
        const int src = C * px + ch - (px >= 4 ? second : 0);
        idx[ch][b] = static_cast<uint8_t>(b % 4 == 0 ? src : 0x80);
      }
  }
};
constexpr PxShuffle<3> kPx3{};
constexpr PxShuffle<4> kPx4{};

template <int C>
inline void load_px(const uint8_t* p, bool swap, VF* out) {
  if (C == 1) {
    out[0] = vload_u8(p);
    return;
  }
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (C == 3 ? 8 : 16)));
  const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
  const uint8_t (*tab)[32] = C == 3 ? kPx3.idx : kPx4.idx;
  for (int ch = 0; ch < 3; ++ch) {
    const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(tab[swap ? 2 - ch : ch]));
    out[ch] = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, idx));
  }
}

inline VF vpermute1(VF a, VI idx) { return _mm256_permutevar8x32_ps(a, idx); }
// bit 3 of the index picks b: move it to the sign bit for blendv
inline VF vpermute2(VF a, VF b, VI idx) {
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, idx), _mm256_permutevar8x32_ps(b, idx),
                          _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}
inline VF vpermute4(VF a, VF b, VF c, VF d, VI idx) {
  return _mm256_blendv_ps(vpermute2(a, b, idx), vpermute2(c, d, idx), _mm256_castsi256_ps(_mm256_slli_epi32(idx, 27)));
}
inline VF vgather(const float* p, VI idx) { return _mm256_i32gather_ps(p, idx, 4); }
inline void vstore_f16(uint16_t* p, VF v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstore_u8(uint8_t* p, VF v) {
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(255.f));
  const __m256i i = _mm256_cvttps_epi32(_mm256_add_ps(v, _mm256_set1_ps(0.5f)));
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(w, w));
}

// interleave3's tables: output k, lane l holds interleaved element j = 8k + l, i.e. lane
// idx = (j / 3) of plane src = j % 3.
struct Interleave3 {
  alignas(32) int32_t idx[3][kLanes];
  alignas(32) int32_t src[3][kLanes];
  constexpr Interleave3() : idx{}, src{} {
    for (int k = 0; k < 3; ++k)
      for (int l = 0; l < kLanes; ++l) {
        const int j = kLanes * k + l;
        idx[k][l] = j / 3;
        src[k][l] = j % 3;
      }
  }
};
constexpr Interleave3 kInterleave3{};

inline VF select_from(const VF* in, int n_in, const int32_t* idx, const int32_t* src) {
  const VI i = vload_i(idx);
  const VI s = vload_i(src);
  VF r = _mm256_permutevar8x32_ps(in[0], i);
  for (int j = 1; j < n_in; ++j) {
    const VF m = _mm256_castsi256_ps(_mm256_cmpeq_epi32(s, _mm256_set1_epi32(j)));
    r = _mm256_blendv_ps(r, _mm256_permutevar8x32_ps(in[j], i), m);
  }
  return r;
}

inline void interleave3(VF p0, VF p1, VF p2, VF& a, VF& b, VF& c) {
  const Interleave3& t = kInterleave3;
  const VF in[3] = {p0, p1, p2};
  a = select_from(in, 3, t.idx[0], t.src[0]);
  b = select_from(in, 3, t.idx[1], t.src[1]);
  c = select_from(in, 3, t.idx[2], t.src[2]);
}
inline void vfence() { _mm_sfence(); }

#else
// ------------------------------------------------------------------------------------- scalar
constexpr int kLanes = 1;
constexpr const char* kIsaName = "scalar";
using VF = float;
using VI = int32_t;

inline VF vzero() { return 0.f; }
inline VF vset1(float x) { return x; }
inline VF vload(const float* p) { return *p; }
inline VI vload_i(const int32_t* p) { return *p; }
inline void vstore(float* p, VF v) { *p = v; }
inline void copy64(uint8_t* dst, const uint8_t* src) { std::memcpy(dst, src, 64); }
inline void vstream_line(uint8_t* dst, const uint8_t* src) { std::memcpy(dst, src, 64); }
inline VF vfma(VF a, VF b, VF c) { return a * b + c; }
inline VF vmul(VF a, VF b) { return a * b; }
inline VF vload_u8(const uint8_t* p) { return static_cast<float>(*p); }
template <int C>
inline void load_px(const uint8_t* p, bool swap, VF* out) {
  for (int ch = 0; ch < (C == 1 ? 1 : 3); ++ch) out[ch] = static_cast<float>(p[C == 1 ? 0 : (swap ? 2 - ch : ch)]);
}

inline VF vpermute1(VF a, VI) { return a; }
inline VF vpermute2(VF a, VF b, VI idx) { return idx ? b : a; }
inline VF vpermute4(VF a, VF b, VF c, VF d, VI idx) { return idx == 0 ? a : (idx == 1 ? b : (idx == 2 ? c : d)); }
inline VF vgather(const float* p, VI idx) { return p[idx]; }
inline void vstore_f16(uint16_t* p, VF v) { *p = float_to_half(v); }
inline void vstore_u8(uint8_t* p, VF v) { *p = to_u8_scalar(v); }
inline void interleave3(VF p0, VF p1, VF p2, VF& a, VF& b, VF& c) {
  a = p0;
  b = p1;
  c = p2;
}
inline void vfence() {}
#endif

}  // namespace
}  // namespace hubcls
