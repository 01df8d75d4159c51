"""Conversion ops every pipeline has: decode (bytes/path -> uint8 HWC RGB), normalise (-> float)
and the HWC -> CHW layout change."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ...errors import ConfigError
from ._base import AUGMENTERS, Context, TransformOp, eval_number


@AUGMENTERS.register(name="DecodeImage")
class DecodeImage(TransformOp):
    """Bytes/path -> uint8 HWC RGB (``to_rgb: False`` gives BGR, ``channel_first`` CHW).

    hubcls extras: ``max_pixels`` (decompression-bomb limit); ``scaled_decode`` (default: on unless
    ``HUBCLS_SCALED_DECODE=0``): when a fused crop/resize follows, JPEGs are decoded only where the
    crop needs them and, with this on, DCT-scaled by 1/2..1/8 while the crop still covers the output
    (changes pixels slightly; off = exactly full decode + resize, see hubcls.data.fused_decode);
    ``reduce`` (the older, unfused form: DCT-scaled decoding before a ResizeImage(resize_short) that
    the pipeline cannot fuse; off by default).
    """
    kind = "decode"

    def __init__(self, to_rgb=True, to_np=False, channel_first=False, max_pixels=None, reduce=False,
                 scaled_decode=None):
        self.to_rgb = bool(to_rgb)
        self.to_np = to_np
        self.channel_first = bool(channel_first)
        self.max_pixels = max_pixels
        self.reduce = bool(reduce)
        self.scaled_decode = None if scaled_decode is None else bool(scaled_decode)
        self.reduce_to = None  # set by the pipeline compiler when `reduce` is on

    def apply(self, img: Any, rng: Optional[np.random.Generator] = None, ctx: Optional[Context] = None) -> np.ndarray:
        from ..decode import read_image

        if isinstance(img, np.ndarray):
            arr = img
        else:
            arr = read_image(img, max_pixels=self.max_pixels, reduce_to=self.reduce_to)
        if not self.to_rgb:
            arr = arr[:, :, ::-1]
        if self.channel_first:
            arr = arr.transpose(2, 0, 1)
        return np.ascontiguousarray(arr)



@AUGMENTERS.register(name="NormalizeImage")
class NormalizeImage(TransformOp):
    """(img * scale - mean) / std on the current layout (``order`` is accepted for compatibility:
    the compiled pipeline knows the layout). ``channel_num: 4`` appends a zero channel."""
    kind = "normalize"

    def __init__(self, scale=None, mean=None, std=None, order="chw", output_fp16=False, channel_num=3):
        self.scale = eval_number(scale, "NormalizeImage.scale") if scale is not None else 1.0 / 255.0
        self.mean = [float(m) for m in (mean if mean is not None else [0.485, 0.456, 0.406])]
        self.std = [float(s) for s in (std if std is not None else [0.229, 0.224, 0.225])]
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ConfigError("NormalizeImage.mean and .std need 3 values")
        if channel_num not in (3, 4):
            raise ConfigError(f"NormalizeImage.channel_num must be 3 or 4, got {channel_num!r}")
        self.order = order
        self.output_fp16 = bool(output_fp16)
        self.channel_num = int(channel_num)

    @property
    def dtype(self) -> str:
        """Output dtype: float16 with ``output_fp16``, else float32."""
        return "float16" if self.output_fp16 else "float32"

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        shape = (3, 1, 1) if ctx.layout == "CHW" else (1, 1, 3)
        mean = np.asarray(self.mean, np.float32).reshape(shape)
        std = np.asarray(self.std, np.float32).reshape(shape)
        out = (img.astype(np.float32) * np.float32(self.scale) - mean) / std
        if self.channel_num == 4:
            axis = 0 if ctx.layout == "CHW" else 2
            pad_shape = list(out.shape)
            pad_shape[axis] = 1
            out = np.concatenate([out, np.zeros(pad_shape, np.float32)], axis=axis)
        return out.astype(self.dtype)


@AUGMENTERS.register(name="ToCHWImage")
class ToCHWImage(TransformOp):
    kind = "layout"

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        if ctx.layout == "CHW":
            return img
        return img.transpose(2, 0, 1)

