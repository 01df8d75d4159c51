"""The JPEG path of a compiled pipeline: decode only what each crop needs, straight into the batch.

When a pipeline's first stage after decoding is fused (crop/resize/flip/normalize, see
hubcls.data.transforms), a plain JPEG is not decoded up front: :func:`hubcls.data.decode.read_image_or_jpeg`
returns a :class:`~hubcls.data.decode.JpegSource` with the displayed size from the file's header, the
sample's random crop is drawn from that size (the same draws as for the decoded image, so results do
not depend on the path), and :func:`run_fused_stage` hands the whole batch to one
``hubcls.ops.jpeg_decode_resize`` call: libjpeg-turbo decodes only the crop's rows and columns,
DCT-scaled by 1/2, 1/4 or 1/8 when the scaled crop still covers the output (``scaled_decode``), and
resamples it into the batch buffer. Other images of the batch (PNGs, arrays, JPEGs libjpeg refuses)
go through ``resize_crop_normalize`` as before.

Switches: ``DecodeImage: {scaled_decode: false}`` or ``HUBCLS_SCALED_DECODE=0`` keep the crop-aware
decode but never scale the DCT — the pixels are then exactly those of full decode + the fused kernel
(PaddleClas-compatible); ``HUBCLS_JPEG_DECODER=0`` (or a core built without libjpeg-turbo) turns the
whole path off. docs/preprocessing.md has the measured effect of DCT scaling on pixels and accuracy.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ImageDecodeError
from .decode import JpegSource

ENV_SCALED_DECODE = "HUBCLS_SCALED_DECODE"


def scaled_decode_default() -> bool:
    """DCT-scaled decoding is on unless ``HUBCLS_SCALED_DECODE`` is 0/false/off."""
    return os.environ.get(ENV_SCALED_DECODE, "").strip().lower() not in ("0", "false", "off", "no")


def jpeg_path_available() -> bool:
    """True when the core has the libjpeg-turbo decoder and HUBCLS_JPEG_DECODER does not disable it."""
    from ..ops.jpeg import jpeg_decoder_available

    return jpeg_decoder_available()


def run_fused_stage(imgs: Sequence, states: list, size_wh: Tuple[int, int], kw: dict, *,
                    out: Optional[np.ndarray] = None, scaled: bool = True, channel_order: str = "RGB",
                    materialize: Callable[[int], tuple]) -> Tuple[np.ndarray, List[Tuple[int, ImageDecodeError]]]:
    """Run one fused stage over a batch that holds JpegSources and/or decoded arrays.

    ``states[k]``: sample k's GeomState (box, clip, flip). ``kw``: resize_crop_normalize's output
    arguments. ``materialize(k)`` decodes sample k the general way and returns ``(array, state)``
    (re-planned if the decoded size differs from the header's) or raises ImageDecodeError/SampleError;
    it is called for JPEGs libjpeg refuses. Returns ``(batch, dropped)``: the batch holds the samples
    that survived, in order (``out[:n_kept]`` when ``out`` is given), ``dropped`` lists ``(k, error)``.
    """
    from .. import ops as hops
    from ..ops.jpeg import jpeg_decode_resize
    from .transforms._base import SampleError  # not the package: it imports this module

    n = len(imgs)
    w, h = size_wh
    nchw = kw["layout"] == "NCHW"
    dtype = np.dtype(kw["dtype"])
    sample = (3, h, w) if nchw else (h, w, 3)
    if out is None:
        out = np.empty((n,) + sample, dtype)
    arrays = {}
    dropped: List[Tuple[int, ImageDecodeError]] = []
    jpeg_k = [k for k, im in enumerate(imgs) if isinstance(im, JpegSource)]
    for k, im in enumerate(imgs):
        if not isinstance(im, JpegSource):
            arrays[k] = (im, states[k])
    if jpeg_k:
        clips = np.asarray([states[k].clip for k in jpeg_k], np.int64).reshape(-1, 4)
        boxes = np.asarray([states[k].box_in_clip() for k in jpeg_k], np.float64).reshape(-1, 4)
        _, report = jpeg_decode_resize(
            [imgs[k].data for k in jpeg_k], clips, boxes, (h, w), orientations=[imgs[k].orientation for k in jpeg_k],
            sizes=[(imgs[k].height, imgs[k].width) for k in jpeg_k],
            flip=[states[k].flip for k in jpeg_k], out_index=jpeg_k, out=out, channel_order=channel_order,
            max_scale_denom=8 if scaled else 1, strict=False, **kw)
        for j in report.failed:  # libjpeg refused the data (or its size): the general decoder decides
            k = jpeg_k[j]
            try:
                arrays[k] = materialize(k)
            except (ImageDecodeError, SampleError) as exc:
                err = exc if isinstance(exc, ImageDecodeError) else ImageDecodeError(imgs[k].name, str(exc))
                dropped.append((k, err))
    # decoded arrays: one resize_crop_normalize call per run of consecutive samples
    ks = sorted(arrays)
    i = 0
    while i < len(ks):
        j = i
        while j + 1 < len(ks) and ks[j + 1] == ks[j] + 1:
            j += 1
        run = ks[i:j + 1]
        views = [arrays[k][1].view(arrays[k][0]) for k in run]
        hops.resize_crop_normalize([v for v, _ in views], np.asarray([b for _, b in views], np.float64).reshape(-1, 4),
                                   (h, w), flip=np.asarray([arrays[k][1].flip for k in run], bool),
                                   out=out[run[0]:run[-1] + 1], **kw)  # arrays are already in output order
        i = j + 1
    if dropped:  # close the gaps (rare: only files that every decoder refuses)
        gone = {k for k, _ in dropped}
        dst = 0
        for k in range(n):
            if k in gone:
                continue
            if dst != k:
                out[dst] = out[k]
            dst += 1
    return out[:n - len(dropped)], dropped

