"""jpeg_decode_resize: compressed JPEGs -> normalised batch, decoding only what each crop needs.

The C++ op (csrc/ops/jpeg_decode.h, built when CMake finds libjpeg-turbo) decodes, per image, only
the rows and columns the crop's resampling taps read — rows below the crop are never decoded, rows
above it only entropy-decoded, columns outside it never inverse-transformed — optionally with the
inverse DCT scaling the image by 1/2, 1/4 or 1/8 while the scaled crop still covers the output, and
resamples that region straight into the batch with the resize_crop_normalize pass (its SIMD row
kernel, picked at run time like :func:`hubcls.ops.resize_crop_normalize`'s; regions over 1 MB are
streamed into it row by row as they are decoded, without a whole intermediate image). One call per
batch, the GIL released, OpenMP over images.

Pixels. With ``max_scale_denom=1`` the output equals full decode (same libjpeg-turbo, ISLOW IDCT,
fancy upsampling) followed by :func:`hubcls.ops.resize_crop_normalize` on the same box — exactly.
With DCT scaling it differs: the scaled IDCT is another low-pass filter than the resampler's; see
docs/preprocessing.md for the measured difference and its effect on accuracy.

The reference this op is tested against is exactly that: ``hubcls.data.read_image`` (or Pillow's
``draft`` for the DCT-scaled decode) + ``resize_crop_normalize``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from .. import _C
from ._common import INTERPOLATIONS, check_num_threads, size_hw
from .resize import _check_output_args

#: runtime switch: ``HUBCLS_JPEG_DECODER=0`` makes every caller take the OpenCV/Pillow path as if the
#: core had been built without libjpeg-turbo (for comparisons and as an escape hatch)
ENV_DISABLE = "HUBCLS_JPEG_DECODER"

STATUS_OK, STATUS_DECODE_FAILED, STATUS_BAD_ARGUMENT = 0, 1, 2


def jpeg_library() -> Optional[str]:
    """The libjpeg-turbo the core was built against (e.g. ``"libjpeg-turbo 2.1.5"``), or None."""
    return getattr(_C, "jpeg_library", None)


def jpeg_decoder_available() -> bool:
    """True when the core has the libjpeg-turbo op and ``HUBCLS_JPEG_DECODER`` does not switch it off."""
    if os.environ.get(ENV_DISABLE, "").strip().lower() in ("0", "false", "off", "no"):
        return False
    return hasattr(_C, "jpeg_decode_resize")


@dataclass
class JpegDecodeReport:
    """Per image: ``status`` (0 ok, 1 libjpeg refused the data: decode it with the general decoder,
    2 the clip/box did not fit the image — reported only with ``strict=False``),
    the DCT ``scale_denom`` used (1, 2, 4, 8), the ``decoded`` region's (w, h) after scaling and
    libjpeg's ``messages``."""
    status: np.ndarray
    scale_denom: np.ndarray
    decoded: np.ndarray
    messages: List[str]

    @property
    def failed(self) -> List[int]:
        """Positions not decoded (decode them with the general decoder)."""
        return [int(i) for i in np.flatnonzero(self.status != STATUS_OK)]


def _rows(values, n, width, dtype, what):
    a = np.ascontiguousarray(np.asarray(values, dtype=dtype))
    shape = (n,) if width == 1 else (n, width)
    if a.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {a.shape}")
    return a


def jpeg_decode_resize(datas: Sequence[bytes], clips: ArrayLike, boxes: ArrayLike, size: Union[int, Tuple[int, int]], *,
                       orientations: Optional[ArrayLike] = None, sizes: Optional[ArrayLike] = None,
                       flip: Optional[ArrayLike] = None,
                       out_index: Optional[ArrayLike] = None, out: Optional[np.ndarray] = None,
                       mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225),
                       scale: float = 1 / 255, interpolation: str = "bilinear", antialias: bool = True,
                       layout: str = "NCHW", dtype: str = "float32", channel_order: str = "RGB",
                       max_scale_denom: int = 8, num_threads: Optional[int] = None,
                       strict: bool = True) -> Tuple[np.ndarray, "JpegDecodeReport"]:
    """Decode each JPEG of ``datas`` (bytes) and resample ``boxes[i]`` of it into sample
    ``out_index[i]`` of the batch (default: i). Returns ``(out, JpegDecodeReport)``.

    clips: (n, 4) integer (x, y, w, h) regions of the displayed image (EXIF ``orientations[i]``, 1..8,
    applied) that pixels may come from — outside it the border is replicated, as when the image was
    cropped before resampling. boxes: (n, 4) (x, y, w, h) relative to the clip's origin. The output
    arguments mean what they mean for :func:`hubcls.ops.resize_crop_normalize`, except
    ``channel_order``: the order of the *output* channels (the decoder produces RGB).
    ``max_scale_denom``: 1 disables DCT scaling; 2, 4 or 8 allow it up to that factor. ``sizes``:
    (n, 2) displayed (h, w) each clip/box was drawn for; an image of another size is refused (its
    geometry is meaningless for it) instead of being cut where the numbers happen to fit.

    Images libjpeg refuses (corrupt or truncated data; a warning counts) leave their sample
    untouched and are reported in ``report.failed``: decode those with ``hubcls.data.read_image``,
    which owns the error policy. A clip or box that does not fit its image is a ``ValueError``;
    with ``strict=False`` (callers whose geometry comes from the files themselves: a header that
    disagrees with what libjpeg reads must not fail the batch) it is reported like refused data.
    """
    if not hasattr(_C, "jpeg_decode_resize"):
        raise RuntimeError("this hubcls core was built without libjpeg-turbo (see hubcls.ops.jpeg_library())")
    datas = [d if isinstance(d, bytes) else bytes(d) for d in datas]
    n = len(datas)
    oh, ow = size_hw(size)
    clips = _rows(clips, n, 4, np.int64, "clips")
    boxes = _rows(boxes, n, 4, np.float64, "boxes")
    if n and not np.isfinite(boxes).all():
        raise ValueError("boxes contain NaN or infinity")
    orientations = _rows(np.ones(n) if orientations is None else orientations, n, 1, np.int64, "orientations")
    sizes = _rows(np.zeros((n, 2)) if sizes is None else sizes, n, 2, np.int64, "sizes")
    fl = np.zeros(n, np.uint8) if flip is None else np.broadcast_to(np.asarray(flip), (n,)).astype(np.uint8)
    idx = _rows(np.arange(n) if out_index is None else out_index, n, 1, np.int64, "out_index")
    if max_scale_denom not in (1, 2, 4, 8):
        raise ValueError(f"max_scale_denom must be 1, 2, 4 or 8, got {max_scale_denom!r}")
    if channel_order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
    nchw, code, np_dtype, m, s = _check_output_args(interpolation, layout, dtype, "RGB", mean, std)
    if not (isinstance(scale, (int, float, np.floating)) and math.isfinite(scale)):
        raise ValueError(f"scale must be a finite number, got {scale!r}")
    sample = (3, oh, ow) if nchw else (oh, ow, 3)
    if out is None:
        out = np.empty((n,) + sample, dtype=np_dtype)
    elif (not isinstance(out, np.ndarray) or out.shape[1:] != sample or out.dtype != np_dtype
          or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous {np.dtype(np_dtype).name} array of shape (N,) + "
                         f"{sample}")
    if n and (idx.min() < 0 or idx.max() >= out.shape[0]):
        raise ValueError(f"out_index must lie in [0, {out.shape[0]})")
    status, den, decoded, messages = _C.jpeg_decode_resize(
        datas, orientations, sizes, clips, boxes, fl, idx, out, oh, ow, m, s, float(scale), INTERPOLATIONS[interpolation],
        bool(antialias), nchw, code, channel_order == "BGR", int(max_scale_denom), check_num_threads(num_threads))
    bad = np.flatnonzero(status == STATUS_BAD_ARGUMENT)
    if bad.size and strict:
        i = int(bad[0])
        raise ValueError(f"JPEG {i}: {messages[i]}")
    return out, JpegDecodeReport(status, den, decoded, list(messages))
