// The list of augment primitives. One X(Name, python_name, Kind) line per primitive: the enum
// below, the Python enum hubcls._C.AugOp (read by hubcls/ops/augment.py) and the kernels'
// dispatch are all generated from it.
//
// Adding a primitive (3 files; docs/preprocessing.md "Adding an augment primitive"):
//   1. a line here, with the kind that says which generic kernel runs it;
//   2. its formula in csrc/ops/kernel_math.h (make_lut for the LUT kinds, blend_degenerate for the
//      blend kinds) — the CPU and the CUDA kernels both call it;
//   3. its Python wrapper in hubcls/ops/augment.py (plus a test against Pillow).
#pragma once

namespace hubcls {

// How a primitive is computed:
//   Lut           out = table[in] per channel, the table made from the parameter
//   HistogramLut  out = table[in] per channel, the table made from that channel's histogram
//   Blend         out = blend(degenerate(pixel), in, factor), degenerate from the pixel's neighbourhood
//   MeanBlend     Blend whose degenerate needs the image's mean grey level
//   Affine        resampled through an inverse affine matrix (params[0..5])
enum class AugKind : int { Lut, HistogramLut, Blend, MeanBlend, Affine };

#define HUBCLS_AUGMENT_OPS(X)                 \
  X(Invert, invert, Lut)                      \
  X(Posterize, posterize, Lut)                \
  X(Solarize, solarize, Lut)                  \
  X(SolarizeAdd, solarize_add, Lut)           \
  X(Equalize, equalize, HistogramLut)         \
  X(AutoContrast, autocontrast, HistogramLut) \
  X(Brightness, brightness, Blend)            \
  X(Contrast, contrast, MeanBlend)            \
  X(Color, color, Blend)                      \
  X(Sharpness, sharpness, Blend)              \
  X(Affine, affine, Affine)

enum class AugOp : int {
#define HUBCLS_AUG_ENUM(name, py, kind) name,
  HUBCLS_AUGMENT_OPS(HUBCLS_AUG_ENUM)
#undef HUBCLS_AUG_ENUM
};

constexpr int kNumAugOps = 0
#define HUBCLS_AUG_COUNT(name, py, kind) +1
    HUBCLS_AUGMENT_OPS(HUBCLS_AUG_COUNT)
#undef HUBCLS_AUG_COUNT
    ;

#if defined(__CUDACC__)
__host__ __device__
#endif
    constexpr AugKind aug_kind(AugOp op) {
  switch (op) {
#define HUBCLS_AUG_KIND(name, py, kind) \
  case AugOp::name: return AugKind::kind;
    HUBCLS_AUGMENT_OPS(HUBCLS_AUG_KIND)
#undef HUBCLS_AUG_KIND
  }
  return AugKind::Lut;
}

constexpr bool is_valid(AugOp op) { return static_cast<int>(op) >= 0 && static_cast<int>(op) < kNumAugOps; }

}  // namespace hubcls
