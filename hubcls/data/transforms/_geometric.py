"""Geometric ops: resize, centre crop, random-resized crop, flip.

Each op works two ways: ``apply`` transforms an image op by op (cv2/Pillow, PaddleClas's
semantics), and ``draw`` + ``plan`` map the op onto a :class:`GeomState` (a crop box and a flip flag
on the source image) so that the pipeline compiler can run a whole run of them, plus the
normalisation, as one ``hubcls.ops.resize_crop_normalize`` call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Optional, Tuple

import numpy as np

from ...errors import ConfigError
from ._base import AUGMENTERS, Context, SampleError, TransformOp, as_pair

_INTERPS = ("nearest", "bilinear", "bicubic", "area", "lanczos", "box", "hamming", "random")
# what the fused kernel reproduces: cv2's INTER_* (antialias off) and Pillow's filters (antialias on)
_FUSABLE = {"cv2": {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic", "area": "area"},
            "pil": {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic", "box": "area"}}


def fused_interp(interp: Optional[str], backend: str) -> Optional[str]:
    """The fused kernel's interpolation for a PaddleClas ``interpolation``/``backend`` pair, or None when
    the kernel cannot reproduce it (the op then runs op by op)."""
    return _FUSABLE[backend].get((interp or "bilinear").lower())


def _check_interp(interp, backend, name):
    if interp is not None and str(interp).lower() not in _INTERPS:
        raise ConfigError(f"{name}.interpolation must be one of {_INTERPS}, got {interp!r}")
    if str(backend).lower() not in ("cv2", "pil"):
        raise ConfigError(f"{name}.backend must be 'cv2' or 'pil', got {backend!r}")


def _resize(img, size_wh, interp, backend, rng):
    """Op-by-op resize with PaddleClas's UnifiedResize semantics."""
    import cv2

    interp = (interp or "bilinear").lower()
    if interp == "random":
        interp = ("bilinear", "bicubic")[int(rng.integers(0, 2))]
    if backend == "pil":
        from PIL import Image

        pil_f = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
                 "box": Image.BOX, "lanczos": Image.LANCZOS, "hamming": Image.HAMMING,
                 "area": Image.BOX}[interp]
        return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize(tuple(size_wh), pil_f))
    cv_f = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
            "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4, "box": cv2.INTER_AREA,
            "hamming": cv2.INTER_LINEAR}[interp]
    return cv2.resize(np.ascontiguousarray(img), tuple(int(s) for s in size_wh), interpolation=cv_f)


# ----------------------------------------------------------------------------------------------
# geometric state used by the fused path
# ----------------------------------------------------------------------------------------------
@dataclass
class GeomState:
    """The current (virtual) image = flip?(resample(source[clip][box], size)).

    ``clip`` is the integer source region the pixels may come from: a crop taken *before* any
    resampling (RandCropImage's crop, a CropImage before ResizeImage) really cuts the image, so the
    resampler must replicate the crop's border instead of reading the neighbours outside it; a
    crop taken after the resize only moves the box.
    """
    box: Tuple[float, float, float, float]   # x, y, w, h in source pixels
    size: Tuple[int, int]                    # (w, h) of the current image
    flip: bool = False
    clip: Tuple[int, int, int, int] = (0, 0, 0, 0)
    resampled: bool = False

    @classmethod
    def start(cls, h: int, w: int) -> "GeomState":
        """The untouched (h, w) source image."""
        return cls((0.0, 0.0, float(w), float(h)), (int(w), int(h)), False, (0, 0, int(w), int(h)), False)

    def crop(self, x0: float, y0: float, cw: int, ch: int) -> "GeomState":
        """Crop (x0, y0, cw, ch) of the current image."""
        W, H = self.size
        if self.flip:  # the current image is mirrored: x0 counts from the right of the box
            x0 = W - x0 - cw
        bx, by, bw, bh = self.box
        sx, sy = bw / W, bh / H
        box = (bx + x0 * sx, by + y0 * sy, cw * sx, ch * sy)
        clip = self.clip
        if not self.resampled:  # pixel-exact crop of the source: box is integer here
            clip = tuple(int(round(v)) for v in box)
        return GeomState(box, (int(cw), int(ch)), self.flip, clip, self.resampled)

    def resize(self, w: int, h: int) -> "GeomState":
        """Resample the current image to (w, h)."""
        return GeomState(self.box, (int(w), int(h)), self.flip, self.clip,
                         self.resampled or (int(w), int(h)) != tuple(self.size))

    def box_in_clip(self) -> Tuple[float, float, float, float]:
        """The box relative to the clip's origin."""
        cx, cy, _, _ = self.clip
        bx, by, bw, bh = self.box
        return bx - cx, by - cy, bw, bh

    def view(self, img: np.ndarray) -> Tuple[np.ndarray, Tuple[float, float, float, float]]:
        """(source view, box relative to it) for the kernel."""
        cx, cy, cw, ch = self.clip
        return img[cy:cy + ch, cx:cx + cw], self.box_in_clip()


class GeometricOp(TransformOp):
    kind = "geometric"
    fusable = True
    interpolation = None
    backend = "cv2"

    def draw(self, hw: Tuple[int, int], rng: np.random.Generator) -> Any:
        """Random parameters for an input of shape (h, w); None when the op is deterministic."""
        return None

    def plan(self, state: GeomState, params: Any) -> GeomState:
        """The geometric state after this op, given the parameters :meth:`draw` returned."""
        raise NotImplementedError


@AUGMENTERS.register(name="ResizeImage")
class ResizeImage(GeometricOp):
    changes_size = True

    def __init__(self, size=None, resize_short=None, interpolation=None, backend="cv2", return_numpy=True):
        if resize_short is not None and resize_short > 0:
            self.resize_short, self.w, self.h = int(resize_short), None, None
        elif size is not None:
            self.resize_short = None
            self.w, self.h = as_pair(size, "ResizeImage")
        else:
            raise ConfigError("ResizeImage needs `size` or `resize_short` (both are missing)")
        _check_interp(interpolation, backend, "ResizeImage")
        self.interpolation = interpolation
        self.backend = str(backend).lower()
        self.fusable = fused_interp(interpolation, self.backend) is not None

    def target(self, h: int, w: int) -> Tuple[int, int]:
        """Output (w, h) for an (h, w) input."""
        if self.resize_short is not None:
            percent = float(self.resize_short) / min(w, h)
            return int(round(w * percent)), int(round(h * percent))
        return self.w, self.h

    def out_size(self, in_size: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
        return (self.w, self.h) if self.resize_short is None else None

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        h, w = img.shape[:2]
        return _resize(img, self.target(h, w), self.interpolation, self.backend, rng)

    def plan(self, state: GeomState, params: Any) -> GeomState:
        w, h = state.size
        return state.resize(*self.target(h, w))


@AUGMENTERS.register(name="CropImage")
class CropImage(GeometricOp):
    """Centre crop (PaddleClas: ``size`` int or [w, h])."""

    def __init__(self, size):
        self.size = as_pair(size, "CropImage")

    def out_size(self, in_size: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
        return self.size

    def _offsets(self, h, w):
        cw, ch = self.size
        if h < ch or w < cw:
            raise SampleError(f"CropImage size {cw}x{ch} is larger than the image ({w}x{h}); "
                              "put a ResizeImage before it")
        return (w - cw) // 2, (h - ch) // 2

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        h, w = img.shape[:2]
        x0, y0 = self._offsets(h, w)
        cw, ch = self.size
        return img[y0:y0 + ch, x0:x0 + cw]

    def plan(self, state: GeomState, params: Any) -> GeomState:
        w, h = state.size
        x0, y0 = self._offsets(h, w)
        return state.crop(x0, y0, *self.size)


@AUGMENTERS.register(name="RandCropImage")
class RandCropImage(GeometricOp):
    """Random-resized crop with PaddleClas's draw (scale, ratio; area bound), then resize."""
    changes_size = True

    def __init__(self, size, scale=None, ratio=None, interpolation=None, backend="cv2"):
        self.size = as_pair(size, "RandCropImage")
        self.scale = [0.08, 1.0] if scale is None else [float(s) for s in scale]
        self.ratio = [3.0 / 4.0, 4.0 / 3.0] if ratio is None else [float(r) for r in ratio]
        _check_interp(interpolation, backend, "RandCropImage")
        self.interpolation = interpolation
        self.backend = str(backend).lower()
        self.fusable = fused_interp(interpolation, self.backend) is not None

    def out_size(self, in_size: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
        return self.size

    def draw(self, hw: Tuple[int, int], rng: np.random.Generator) -> Any:
        img_h, img_w = hw
        aspect_ratio = math.sqrt(rng.uniform(*self.ratio))
        w = 1.0 * aspect_ratio
        h = 1.0 / aspect_ratio
        bound = min((float(img_w) / img_h) / (w ** 2), (float(img_h) / img_w) / (h ** 2))
        scale_max = min(self.scale[1], bound)
        scale_min = min(self.scale[0], bound)
        target_area = img_w * img_h * rng.uniform(scale_min, scale_max)
        target_size = math.sqrt(target_area)
        w = max(1, min(img_w, int(target_size * w)))
        h = max(1, min(img_h, int(target_size * h)))
        i = int(rng.integers(0, img_w - w + 1))
        j = int(rng.integers(0, img_h - h + 1))
        return i, j, w, h

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        i, j, w, h = self.draw(img.shape[:2], rng)
        return _resize(img[j:j + h, i:i + w], self.size, self.interpolation, self.backend, rng)

    def plan(self, state: GeomState, params: Any) -> GeomState:
        i, j, w, h = params
        return state.crop(i, j, w, h).resize(*self.size)


@AUGMENTERS.register(name="RandFlipImage")
class RandFlipImage(GeometricOp):
    """Flip with probability 1/2; flip_code 1 horizontal (fusable), 0 vertical, -1 both."""

    def __init__(self, flip_code=1):
        if flip_code not in (-1, 0, 1):
            raise ConfigError(f"RandFlipImage.flip_code must be -1, 0 or 1, got {flip_code!r}")
        self.flip_code = int(flip_code)
        self.fusable = self.flip_code == 1

    def draw(self, hw: Tuple[int, int], rng: np.random.Generator) -> Any:
        return bool(rng.integers(0, 2) == 1)

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        if not self.draw(img.shape[:2], rng):
            return img
        hdim, wdim = (1, 2) if ctx.layout == "CHW" else (0, 1)
        if self.flip_code == 1:
            return np.flip(img, wdim)
        if self.flip_code == 0:
            return np.flip(img, hdim)
        return np.flip(np.flip(img, hdim), wdim)

    def plan(self, state: GeomState, params: Any) -> GeomState:
        return replace(state, flip=state.flip ^ bool(params))

