// jpeg_decode_resize: compressed JPEG -> normalised batch sample in one pass, decoding only what the
// output needs. libjpeg-turbo decodes the rows and columns the crop's resampling taps read
// (jpeg_skip_scanlines / jpeg_crop_scanline; rows below the crop are never entropy-decoded) and, when
// allowed, lets the inverse DCT scale the image down by 1/2, 1/4 or 1/8 as long as the scaled crop
// still covers the output; the decoded region then goes through the resize_crop_normalize pass
// (the SIMD row kernel of the level the CPU has) straight into the batch buffer — regions over 1 MB
// row by row as they are decoded, without a whole intermediate image. Built only when CMake finds
// libjpeg-turbo (HUBCLS_WITH_JPEG).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/resample.h"
#include "ops/resize_crop_normalize.h"

namespace hubcls {

// One compressed JPEG and what to cut out of it. Coordinates are those of the *displayed* image, i.e.
// after its EXIF orientation (1..8, applied to the decoded pixels) — the image read_image returns.
struct JpegJob {
  const uint8_t* data = nullptr;
  size_t size = 0;
  int orientation = 1;
  int64_t clip[4] = {0, 0, 0, 0};  // x, y, w, h: integer region the pixels may come from (its border is
                                   // replicated, as when the image is cropped before resampling)
  double box[4] = {0, 0, 0, 0};    // x, y, w, h resampled onto the output (fractional), relative to
                                   // the clip's origin (as resize_crop_normalize sees a cropped image)
  bool flip = false;               // horizontal flip of the output
  int64_t out_index = 0;           // sample of `out` to write
  // displayed size the clip/box were drawn for (0: unchecked); an image of another size is refused
  int64_t expect_h = 0, expect_w = 0;
};

enum class JpegStatus : int8_t {
  Ok = 0,
  DecodeFailed = 1,  // libjpeg reported an error or a warning (corrupt/truncated data): the caller
                     // decodes this file with its general decoder, which owns the error policy
  BadArgument = 2,   // box/clip/orientation do not fit the image: a caller bug
};

struct JpegResult {
  JpegStatus status = JpegStatus::Ok;
  int scale_denom = 1;                   // DCT scale the image was decoded at (1, 2, 4 or 8)
  int64_t decoded_w = 0, decoded_h = 0;  // size of the region actually decoded (after scaling)
  std::string message;
};

// max_scale_denom: 1 decodes at full size (pixels equal full decode + resize_crop_normalize);
// 2/4/8 allow DCT scaling down to that factor. Each job writes sample out_index of `out` (laid out as
// for resize_crop_normalize_cpu). Never throws for bad data (see JpegStatus); runs without touching
// Python (callers release the GIL); parallel over jobs.
void jpeg_decode_resize_cpu(const std::vector<JpegJob>& jobs, void* out, int64_t out_count, const RCNParams& p,
                            int max_scale_denom, int num_threads, std::vector<JpegResult>& results);

// "libjpeg-turbo 2.1.5" (the version the core was built against).
std::string jpeg_library_version();

}  // namespace hubcls
