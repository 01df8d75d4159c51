"""Config-driven transform pipelines with PaddleClas's op names and parameters.

``build_transforms([{"DecodeImage": {...}}, {"RandCropImage": {"size": 224}}, ...])`` returns a
:class:`Pipeline`. The pipeline *compiles* the op list: every maximal run of consecutive geometric
ops (ResizeImage, CropImage, RandCropImage, RandFlipImage with flip_code 1; at most one resampling
op per run) followed by NormalizeImage and ToCHWImage becomes ONE call of
``hubcls.ops.resize_crop_normalize`` over the whole batch: each geometric op only maps a crop box
and a flip flag back onto the source image, and the kernel resamples that box straight into the
normalised output. Everything else runs op by op, per sample.

Randomness: an op never touches global RNG state. Each sample carries its own
``numpy.random.Generator`` (seeded from (seed, epoch, index), see hubcls.data.rng); ops draw from
it in pipeline order, identically in the fused and the op-by-op path, so both give the same
result and the number of loader workers does not matter.

Layout: ops know the layout (HWC / CHW) and dtype their input will have, from the compiled
pipeline, and handle both — PaddleClas's HideAndSeek/GridMask assume CHW while its configs feed
them HWC; here they erase the spatial dims whatever the layout.

Augmenter protocol (built-ins and plugins registered in ``AUGMENTERS``): a class constructed
with the op's config keyword arguments. A subclass of :class:`TransformOp` implements
``apply(img, rng, ctx)``; any other callable ``op(img) -> img`` (PaddleClas style, HWC uint8 RGB)
is wrapped, with Python's and NumPy's global generators seeded from the sample's generator first,
so it stays reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, ImageDecodeError
from ..registry import Registry
from .rng import sample_rng, seed_globals


def _load_plugins(registry: Registry) -> None:
    # Entry-point plugins (group "hubcls.augmenters") fill this registry on first lookup.
    try:
        from ..plugins import load_entry_points
    except ImportError:
        return
    load_entry_points("hubcls.augmenters", registry)


AUGMENTERS = Registry("augmenter", on_first_lookup=_load_plugins)


class SampleError(ValueError):
    """A sample cannot go through the pipeline (e.g. smaller than a fixed crop): a bad sample."""


@dataclass
class Context:
    """What an op may know besides the image: position in training and the input layout."""
    epoch: int = 0
    index: int = 0
    layout: str = "HWC"        # layout of the op's input
    dtype: str = "uint8"       # dtype of the op's input


# ----------------------------------------------------------------------------------------------
# base classes
# ----------------------------------------------------------------------------------------------
class TransformOp:
    """Base of every pipeline op. ``kind`` tells the compiler what it may do with the op."""

    kind = "image"             # "decode" | "geometric" | "normalize" | "layout" | "image"
    changes_size = False       # geometric ops that resample

    def apply(self, img, rng: np.random.Generator, ctx: Context):
        raise NotImplementedError

    def __call__(self, img, rng: Optional[np.random.Generator] = None, ctx: Optional[Context] = None):
        return self.apply(img, rng if rng is not None else np.random.default_rng(), ctx or Context())

    def out_size(self, in_size):
        """(w, h) of the output given the input's (w, h) (None = unknown/variable)."""
        return in_size

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class _ForeignOp(TransformOp):
    """Wraps a plain callable ``op(img) -> img`` (PaddleClas-style plugin augmenter)."""

    def __init__(self, name, obj):
        self.name = name
        self._obj = obj

    def apply(self, img, rng, ctx):
        seed_globals(rng)
        out = self._obj(img)
        return np.asarray(out)

    def __repr__(self):
        return f"{self.name}<{self._obj!r}>"


def _as_pair(size, name) -> Tuple[int, int]:
    """PaddleClas size: int -> (s, s); [a, b] is passed to cv2.resize as (w, h)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ConfigError(f"{name}.size must be an int or [w, h], got {size!r}")


def _eval_number(v, name):
    # PaddleClas configs write things like scale: 1.0/255.0 (a YAML string it eval()s)
    if isinstance(v, str):
        try:
            num, _, den = v.partition("/")
            return float(num) / float(den) if den else float(num)
        except ValueError:
            raise ConfigError(f"{name}: cannot read {v!r} as a number") from None
    return float(v)


_INTERPS = ("nearest", "bilinear", "bicubic", "area", "lanczos", "box", "hamming", "random")
# what the fused kernel reproduces: cv2's INTER_* (antialias off) and Pillow's filters (antialias on)
_FUSABLE = {"cv2": {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic", "area": "area"},
            "pil": {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic", "box": "area"}}


def _fused_interp(interp, backend):
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
    def start(cls, h, w):
        return cls((0.0, 0.0, float(w), float(h)), (int(w), int(h)), False, (0, 0, int(w), int(h)), False)

    def crop(self, x0, y0, cw, ch) -> "GeomState":
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

    def resize(self, w, h) -> "GeomState":
        return GeomState(self.box, (int(w), int(h)), self.flip, self.clip,
                         self.resampled or (int(w), int(h)) != tuple(self.size))

    def view(self, img):
        """(source view, box relative to it) for the kernel."""
        cx, cy, cw, ch = self.clip
        bx, by, bw, bh = self.box
        return img[cy:cy + ch, cx:cx + cw], (bx - cx, by - cy, bw, bh)


class GeometricOp(TransformOp):
    kind = "geometric"
    fusable = True
    interpolation = None
    backend = "cv2"

    def draw(self, hw, rng):
        """Random parameters for an input of shape (h, w); None when the op is deterministic."""
        return None

    def plan(self, state: GeomState, params) -> GeomState:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# the ops
# ----------------------------------------------------------------------------------------------
@AUGMENTERS.register(name="DecodeImage")
class DecodeImage(TransformOp):
    """Bytes/path -> uint8 HWC RGB (``to_rgb: False`` gives BGR, ``channel_first`` CHW).

    hubcls extras: ``max_pixels`` (decompression-bomb limit), ``reduce`` (allow DCT-scaled JPEG
    decoding when the next op downscales anyway; off by default because it changes pixels slightly).
    """
    kind = "decode"

    def __init__(self, to_rgb=True, to_np=False, channel_first=False, max_pixels=None, reduce=False):
        self.to_rgb = bool(to_rgb)
        self.to_np = to_np
        self.channel_first = bool(channel_first)
        self.max_pixels = max_pixels
        self.reduce = bool(reduce)
        self.reduce_to = None  # set by the pipeline compiler when `reduce` is on

    def apply(self, img, rng=None, ctx=None):
        from .decode import read_image

        if isinstance(img, np.ndarray):
            arr = img
        else:
            arr = read_image(img, max_pixels=self.max_pixels, reduce_to=self.reduce_to)
        if not self.to_rgb:
            arr = arr[:, :, ::-1]
        if self.channel_first:
            arr = arr.transpose(2, 0, 1)
        return np.ascontiguousarray(arr)


@AUGMENTERS.register(name="ResizeImage")
class ResizeImage(GeometricOp):
    changes_size = True

    def __init__(self, size=None, resize_short=None, interpolation=None, backend="cv2", return_numpy=True):
        if resize_short is not None and resize_short > 0:
            self.resize_short, self.w, self.h = int(resize_short), None, None
        elif size is not None:
            self.resize_short = None
            self.w, self.h = _as_pair(size, "ResizeImage")
        else:
            raise ConfigError("ResizeImage needs `size` or `resize_short` (both are missing)")
        _check_interp(interpolation, backend, "ResizeImage")
        self.interpolation = interpolation
        self.backend = str(backend).lower()
        self.fusable = _fused_interp(interpolation, self.backend) is not None

    def target(self, h, w):
        if self.resize_short is not None:
            percent = float(self.resize_short) / min(w, h)
            return int(round(w * percent)), int(round(h * percent))
        return self.w, self.h

    def out_size(self, in_size):
        return (self.w, self.h) if self.resize_short is None else None

    def apply(self, img, rng, ctx):
        h, w = img.shape[:2]
        return _resize(img, self.target(h, w), self.interpolation, self.backend, rng)

    def plan(self, state, params):
        w, h = state.size
        return state.resize(*self.target(h, w))


@AUGMENTERS.register(name="CropImage")
class CropImage(GeometricOp):
    """Centre crop (PaddleClas: ``size`` int or [w, h])."""

    def __init__(self, size):
        self.size = _as_pair(size, "CropImage")

    def out_size(self, in_size):
        return self.size

    def _offsets(self, h, w):
        cw, ch = self.size
        if h < ch or w < cw:
            raise SampleError(f"CropImage size {cw}x{ch} is larger than the image ({w}x{h}); "
                              "put a ResizeImage before it")
        return (w - cw) // 2, (h - ch) // 2

    def apply(self, img, rng, ctx):
        h, w = img.shape[:2]
        x0, y0 = self._offsets(h, w)
        cw, ch = self.size
        return img[y0:y0 + ch, x0:x0 + cw]

    def plan(self, state, params):
        w, h = state.size
        x0, y0 = self._offsets(h, w)
        return state.crop(x0, y0, *self.size)


@AUGMENTERS.register(name="RandCropImage")
class RandCropImage(GeometricOp):
    """Random-resized crop with PaddleClas's draw (scale, ratio; area bound), then resize."""
    changes_size = True

    def __init__(self, size, scale=None, ratio=None, interpolation=None, backend="cv2"):
        self.size = _as_pair(size, "RandCropImage")
        self.scale = [0.08, 1.0] if scale is None else [float(s) for s in scale]
        self.ratio = [3.0 / 4.0, 4.0 / 3.0] if ratio is None else [float(r) for r in ratio]
        _check_interp(interpolation, backend, "RandCropImage")
        self.interpolation = interpolation
        self.backend = str(backend).lower()
        self.fusable = _fused_interp(interpolation, self.backend) is not None

    def out_size(self, in_size):
        return self.size

    def draw(self, hw, rng):
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

    def apply(self, img, rng, ctx):
        i, j, w, h = self.draw(img.shape[:2], rng)
        return _resize(img[j:j + h, i:i + w], self.size, self.interpolation, self.backend, rng)

    def plan(self, state, params):
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

    def draw(self, hw, rng):
        return bool(rng.integers(0, 2) == 1)

    def apply(self, img, rng, ctx):
        if not self.draw(img.shape[:2], rng):
            return img
        hdim, wdim = (1, 2) if ctx.layout == "CHW" else (0, 1)
        if self.flip_code == 1:
            return np.flip(img, wdim)
        if self.flip_code == 0:
            return np.flip(img, hdim)
        return np.flip(np.flip(img, hdim), wdim)

    def plan(self, state, params):
        return replace(state, flip=state.flip ^ bool(params))


@AUGMENTERS.register(name="NormalizeImage")
class NormalizeImage(TransformOp):
    """(img * scale - mean) / std on the current layout (``order`` is accepted for compatibility:
    the compiled pipeline knows the layout). ``channel_num: 4`` appends a zero channel."""
    kind = "normalize"

    def __init__(self, scale=None, mean=None, std=None, order="chw", output_fp16=False, channel_num=3):
        self.scale = _eval_number(scale, "NormalizeImage.scale") if scale is not None else 1.0 / 255.0
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
    def dtype(self):
        return "float16" if self.output_fp16 else "float32"

    def apply(self, img, rng, ctx):
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

    def apply(self, img, rng, ctx):
        if ctx.layout == "CHW":
            return img
        return img.transpose(2, 0, 1)


# ---- pixel augmentations (uint8 HWC RGB) ------------------------------------------------------
def _policy_apply(img, ctx, name, fn):
    """Run a Pillow-semantics augmentation (uint8) on HWC or CHW input, keeping the layout."""
    if img.dtype != np.uint8:
        raise ConfigError(f"{name} works on uint8 images (Pillow semantics): put it before NormalizeImage "
                          f"(it got {img.dtype})")
    if ctx.layout == "CHW":
        return np.ascontiguousarray(fn(np.ascontiguousarray(img.transpose(1, 2, 0))).transpose(2, 0, 1))
    return fn(img)


@AUGMENTERS.register(name="AutoAugment")
class AutoAugment(TransformOp):
    """AutoAugment, ImageNet policy (25 sub-policies), PaddleClas magnitudes and grey fill."""

    def __init__(self, fillcolor=(128, 128, 128)):
        self.fillcolor = tuple(int(c) for c in fillcolor)

    def apply(self, img, rng, ctx):
        from .autoaugment import apply_steps, autoaugment_draw

        steps = autoaugment_draw(rng)
        return _policy_apply(img, ctx, "AutoAugment", lambda im: apply_steps(im, steps, self.fillcolor))


@AUGMENTERS.register(name="RandAugment")
class RandAugment(TransformOp):
    """RandAugment: ``num_layers`` ops drawn uniformly from 14, at level ``magnitude``/10."""

    def __init__(self, num_layers=2, magnitude=5, fillcolor=(128, 128, 128)):
        from .autoaugment import randaugment_levels

        self.num_layers = int(num_layers)
        self.magnitude = float(magnitude)
        self.fillcolor = tuple(int(c) for c in fillcolor)
        self._levels = randaugment_levels(self.magnitude)

    def apply(self, img, rng, ctx):
        from .autoaugment import apply_steps, randaugment_draw

        steps = randaugment_draw(rng, self.num_layers, self._levels)
        return _policy_apply(img, ctx, "RandAugment", lambda im: apply_steps(im, steps, self.fillcolor))


# ---- erasing (any layout, uint8 or float) -----------------------------------------------------
def _hw(img, ctx):
    return img.shape[1:3] if ctx.layout == "CHW" else img.shape[:2]


def _erase(img, ctx, rects, values=None):
    """A copy of ``img`` with ``rects`` ((y0, y1, x0, x1) each) filled by ``values`` (one per rect: a
    scalar, per-channel values or (h, w, C) per-pixel values), through hubcls.ops.fill_rects."""
    from ..ops import fill_rects

    out = np.array(img, copy=True, order="C")
    if not rects:
        return out
    if values is None:
        values = [0.0] * len(rects)
    chw = ctx.layout == "CHW"
    c = out.shape[0] if chw else (out.shape[2] if out.ndim == 3 else 1)
    if out.ndim == 3 and out.dtype in (np.uint8, np.float32, np.float16):
        xy = [(x0, y0, x1, y1) for (y0, y1, x0, x1) in rects]
        vals = [np.asarray(v, np.float64) if np.ndim(v) != 1 else np.asarray(v, np.float64)[:c] for v in values]
        fill_rects(out[None], [np.asarray(xy, np.int64).reshape(-1, 4)], [vals],
                   layout="NCHW" if chw else "NHWC", num_threads=1)
        return out
    for (y0, y1, x0, x1), v in zip(rects, values):  # other dtypes / 2-d images: plain NumPy
        v = np.asarray(v, np.float64)
        if chw:
            out[:, y0:y1, x0:x1] = v.transpose(2, 0, 1) if v.ndim == 3 else (v.reshape(-1, 1, 1) if v.ndim == 1 else v)
        else:
            out[y0:y1, x0:x1] = v
    return out


@AUGMENTERS.register(name="Cutout")
class Cutout(TransformOp):
    """``n_holes`` squares of side ``length`` centred at uniform points, clipped to the image.
    ``fill_value``: a number or per-channel list (default 0), or 'none' for a random colour."""

    def __init__(self, n_holes=1, length=112, fill_value=(0, 0, 0)):
        self.n_holes = int(n_holes)
        self.length = int(length)
        self.fill_value = None if fill_value in ("none", None) else fill_value

    def apply(self, img, rng, ctx):
        h, w = _hw(img, ctx)
        rects, values = [], []
        for _ in range(self.n_holes):
            y = int(rng.integers(0, h))
            x = int(rng.integers(0, w))
            y1, y2 = int(np.clip(y - self.length // 2, 0, h)), int(np.clip(y + self.length // 2, 0, h))
            x1, x2 = int(np.clip(x - self.length // 2, 0, w)), int(np.clip(x + self.length // 2, 0, w))
            fill = self.fill_value
            if fill is None:
                fill = rng.integers(0, 256, size=3)
            rects.append((y1, y2, x1, x2))
            values.append(fill)
        return _erase(img, ctx, rects, values)


@AUGMENTERS.register(name="RandomErasing")
class RandomErasing(TransformOp):
    """Random erasing (PaddleClas/timm semantics): with probability EPSILON, up to ``attempt`` tries
    to place a rectangle of area in [sl, sh] and aspect in [r1, 1/r1] (log-uniform with
    use_log_aspect); filled with ``mean`` (mode const), one normal sample per channel (rand) or
    per pixel (pixel)."""

    def __init__(self, EPSILON=0.5, sl=0.02, sh=0.4, r1=0.3, mean=(0.0, 0.0, 0.0), attempt=100,
                 use_log_aspect=False, mode="const"):
        self.EPSILON = _eval_number(EPSILON, "RandomErasing.EPSILON")
        self.sl = _eval_number(sl, "RandomErasing.sl")
        self.sh = _eval_number(sh, "RandomErasing.sh")
        r1 = _eval_number(r1, "RandomErasing.r1")
        self.use_log_aspect = bool(use_log_aspect)
        self.r1 = (math.log(r1), math.log(1 / r1)) if self.use_log_aspect else (r1, 1 / r1)
        self.mean = [float(m) for m in mean]
        self.attempt = int(attempt)
        if mode not in ("const", "rand", "pixel"):
            raise ConfigError(f"RandomErasing.mode must be const, rand or pixel, got {mode!r}")
        self.mode = mode

    def apply(self, img, rng, ctx):
        if rng.random() > self.EPSILON:
            return img
        h_img, w_img = _hw(img, ctx)
        c = img.shape[0] if ctx.layout == "CHW" else (img.shape[2] if img.ndim == 3 else 1)
        area = h_img * w_img
        for _ in range(self.attempt):
            target_area = rng.uniform(self.sl, self.sh) * area
            aspect = rng.uniform(*self.r1)
            if self.use_log_aspect:
                aspect = math.exp(aspect)
            h = int(round(math.sqrt(target_area * aspect)))
            w = int(round(math.sqrt(target_area / aspect)))
            if w < w_img and h < h_img:
                if self.mode == "pixel":
                    pixels = rng.normal(size=(h, w, c))
                elif self.mode == "rand":
                    pixels = rng.normal(size=(c,))
                else:
                    pixels = np.asarray(self.mean[:c])
                y1 = int(rng.integers(0, h_img - h + 1))
                x1 = int(rng.integers(0, w_img - w + 1))
                return _erase(img, ctx, [(y1, y1 + h, x1, x1 + w)], [pixels])
        return img


@AUGMENTERS.register(name="HideAndSeek")
class HideAndSeek(TransformOp):
    """Split the image into a grid of side drawn from ``grid_sizes`` (0 = no hiding) and zero each
    cell with probability ``hide_prob`` — on the spatial dims of whatever layout it is given."""

    def __init__(self, grid_sizes=(0, 16, 32, 44, 56), hide_prob=0.5):
        self.grid_sizes = [int(g) for g in grid_sizes]
        self.hide_prob = float(hide_prob)

    def apply(self, img, rng, ctx):
        gs = self.grid_sizes[int(rng.integers(0, len(self.grid_sizes)))]
        if gs == 0:
            return img
        h, w = _hw(img, ctx)
        rects = []
        for x in range(0, w, gs):
            for y in range(0, h, gs):
                if rng.random() <= self.hide_prob:
                    rects.append((y, min(h, y + gs), x, min(w, x + gs)))
        return _erase(img, ctx, rects)


@AUGMENTERS.register(name="GridMask")
class GridMask(TransformOp):
    """GridMask. PaddleClas ramps the probability linearly from 0 at epoch 0 to ``prob`` at epoch
    ``num_epochs`` (its global NUM_EPOCHS = 240); hubcls takes the epoch from the loader."""

    def __init__(self, d1=96, d2=224, rotate=1, ratio=0.5, mode=0, prob=1.0, num_epochs=240):
        self.d1, self.d2 = int(d1), int(d2)
        self.rotate = int(rotate)
        self.ratio = float(ratio)
        self.mode = int(mode)
        self.prob = float(prob)
        self.num_epochs = int(num_epochs)

    def current_prob(self, epoch):
        if self.num_epochs <= 0:
            return self.prob
        return self.prob * min(1.0, float(epoch) / self.num_epochs)

    def mask(self, h, w, rng):
        from PIL import Image

        hh, ww = int(1.5 * h), int(1.5 * w)
        d = int(rng.integers(self.d1, self.d2))
        l = int(d * self.ratio + 0.5)
        mask = np.ones((hh, ww), np.float32)
        st_h = int(rng.integers(0, d))
        st_w = int(rng.integers(0, d))
        for i in range(-1, hh // d + 1):
            s = max(min(d * i + st_h, hh), 0)
            t = max(min(d * i + st_h + l, hh), 0)
            mask[s:t, :] = 0
        for i in range(-1, ww // d + 1):
            s = max(min(d * i + st_w, ww), 0)
            t = max(min(d * i + st_w + l, ww), 0)
            mask[:, s:t] = 0
        r = int(rng.integers(0, self.rotate)) if self.rotate > 0 else 0
        mask = np.asarray(Image.fromarray(np.uint8(mask)).rotate(r))
        mask = mask[(hh - h) // 2:(hh - h) // 2 + h, (ww - w) // 2:(ww - w) // 2 + w]
        if self.mode == 1:
            mask = 1 - mask
        return mask

    def apply(self, img, rng, ctx):
        if rng.random() > self.current_prob(ctx.epoch):
            return img
        h, w = _hw(img, ctx)
        m = self.mask(h, w, rng)
        if img.ndim == 3 and img.dtype in (np.uint8, np.float32, np.float16):
            from ..ops import gridmask

            out = np.array(img, copy=True, order="C")
            gridmask(out[None], m[None], layout="NCHW" if ctx.layout == "CHW" else "NHWC", num_threads=1)
            return out
        m = m[None] if ctx.layout == "CHW" else m[:, :, None]
        return (img * m).astype(img.dtype)


# ----------------------------------------------------------------------------------------------
# compile + run
# ----------------------------------------------------------------------------------------------
def _instantiate(entry, where: str):
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError(f"{where}: each op must be a one-key mapping {{OpName: {{params}}}}, got {entry!r}")
    (name, params), = entry.items()
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ConfigError(f"{where}.{name}: parameters must be a mapping, got {params!r}")
    try:
        cls = AUGMENTERS.get(name)
    except KeyError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        obj = cls(**params)
    except ConfigError as exc:
        raise ConfigError(f"{where}.{name}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{where}.{name}: bad parameters {sorted(params)}: {exc}") from None
    if not isinstance(obj, TransformOp):
        if not callable(obj):
            raise ConfigError(f"{where}.{name}: {cls!r} did not build a callable op")
        obj = _ForeignOp(name, obj)
    return obj


@dataclass
class _Stage:
    ops: list
    fused: bool
    layouts: list                 # input layout of each op
    out_layout: str = "HWC"
    norm: Optional[NormalizeImage] = None
    to_chw: bool = False


class Pipeline:
    """A compiled transform pipeline.

    ``pipeline(img)`` runs one image (uint8 HWC RGB array, or bytes/path when the pipeline starts
    with DecodeImage) and returns the model input; ``pipeline.run_batch(items, rngs)`` runs a batch
    and returns ``(array, kept)`` where ``kept`` lists the positions that survived (bad samples are
    dropped with ``on_error="skip"``).
    """

    def __init__(self, ops: Sequence[TransformOp], *, fuse: bool = True, num_threads: Optional[int] = 1,
                 decode_threads: int = 1):
        self.ops = list(ops)
        self.fuse = fuse
        self.num_threads = num_threads
        # decoding releases the GIL: >1 decodes a batch's files on that many threads
        self.decode_threads = max(1, int(decode_threads))
        self._executor = None
        self.decode = self.ops[0] if self.ops and isinstance(self.ops[0], DecodeImage) else None
        body = self.ops[1:] if self.decode else self.ops
        self.stages = self._compile(body)
        self.errors: List[ImageDecodeError] = []

    # -- compilation ------------------------------------------------------------------------
    def _compile(self, ops) -> List[_Stage]:
        layout = "CHW" if (self.decode and self.decode.channel_first) else "HWC"
        stages: List[_Stage] = []
        i = 0
        while i < len(ops):
            run_end = self._fusable_run(ops, i, layout) if self.fuse else i
            if run_end > i:
                run = ops[i:run_end]
                norm = next((o for o in run if isinstance(o, NormalizeImage)), None)
                to_chw = any(isinstance(o, ToCHWImage) for o in run)
                out_layout = "CHW" if to_chw else layout
                stages.append(_Stage(run, True, [layout] * len(run), out_layout, norm, to_chw))
                layout = out_layout
                i = run_end
                continue
            op = ops[i]
            if stages and not stages[-1].fused:
                stages[-1].ops.append(op)
                stages[-1].layouts.append(layout)
            else:
                stages.append(_Stage([op], False, [layout]))
            if isinstance(op, ToCHWImage):
                layout = "CHW"
            stages[-1].out_layout = layout
            i += 1
        if self.decode is not None and self.decode.reduce:
            first = stages[0].ops[0] if stages else None
            if isinstance(first, ResizeImage) and first.resize_short:
                self.decode.reduce_to = first.resize_short
        return stages

    @staticmethod
    def _fusable_run(ops, i, layout) -> int:
        """End (exclusive) of the fusable run starting at i, or i when ops[i] cannot start one."""
        if layout != "HWC":
            return i
        j = i
        resamples = 0
        geo = 0
        while j < len(ops) and isinstance(ops[j], GeometricOp) and ops[j].fusable:
            if ops[j].changes_size:
                if resamples == 1:
                    break
                resamples += 1
            geo += 1
            j += 1
        if j < len(ops) and isinstance(ops[j], NormalizeImage) and ops[j].channel_num == 3:
            j += 1
            if j < len(ops) and isinstance(ops[j], ToCHWImage):
                j += 1
            return j
        return j if geo > 0 else i

    def describe(self) -> str:
        """Human-readable stage plan (what got fused)."""
        lines = []
        if self.decode:
            lines.append(f"decode: {self.decode!r}")
        for s in self.stages:
            names = " -> ".join(type(o).__name__ if not isinstance(o, _ForeignOp) else o.name for o in s.ops)
            lines.append(f"{'fused' if s.fused else 'per-sample'} [{names}] -> {s.out_layout}")
        return "\n".join(lines)

    def static_output_spec(self):
        """(shape, dtype) of one sample's output when it does not depend on the input, else None."""
        size = None
        layout = "CHW" if (self.decode and self.decode.channel_first) else "HWC"
        dtype = "uint8"
        channels = 3
        for s in self.stages:
            for op in s.ops:
                if isinstance(op, _ForeignOp):
                    continue
                size = op.out_size(size) if isinstance(op, GeometricOp) else size
                if isinstance(op, NormalizeImage):
                    dtype = op.dtype
                    channels = op.channel_num
                if isinstance(op, ToCHWImage):
                    layout = "CHW"
        if size is None:
            return None
        w, h = size
        shape = (channels, h, w) if layout == "CHW" else (h, w, channels)
        return shape, dtype

    @property
    def output_layout(self) -> str:
        if self.stages:
            return self.stages[-1].out_layout
        return "CHW" if (self.decode and self.decode.channel_first) else "HWC"

    def __getstate__(self):  # workers get a copy without the (unpicklable) thread pool
        state = dict(self.__dict__)
        state["_executor"] = None
        return state

    def _decode_all(self, items):
        """[(array or exception)] for items, on ``decode_threads`` threads."""
        def one(item):
            try:
                return self._decode(item)
            except (ImageDecodeError, SampleError) as exc:
                return exc

        if self.decode_threads <= 1 or len(items) <= 1:
            return [one(it) for it in items]
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="hubcls-decode")
        return list(self._executor.map(one, items))

    # -- execution --------------------------------------------------------------------------
    def _decode(self, item):
        if self.decode is None:
            if not isinstance(item, np.ndarray):
                from .decode import read_image

                return read_image(item)
            return item
        return self.decode.apply(item)

    @staticmethod
    def _plan_fused(stage: _Stage, img, rng) -> GeomState:
        """Draw this sample's geometric parameters (may raise SampleError for this sample only)."""
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ConfigError(f"fused geometric ops need uint8 HxWx3 input, got {img.dtype} {img.shape}")
        st = GeomState.start(*img.shape[:2])
        for o in stage.ops:
            if isinstance(o, GeometricOp):
                w, h = st.size
                st = o.plan(st, o.draw((h, w), rng))
        return st

    def _run_fused(self, stage: _Stage, imgs, states, out=None):
        from .. import ops as hops

        interp, backend = "bilinear", "cv2"
        for o in stage.ops:
            if isinstance(o, GeometricOp) and o.changes_size:
                interp, backend = _fused_interp(o.interpolation, o.backend), o.backend
        sizes = {s.size for s in states}
        norm = stage.norm
        kw = dict(interpolation=interp, antialias=(backend == "pil"),
                  layout="NCHW" if stage.to_chw else "NHWC", num_threads=self.num_threads)
        if norm is not None:
            kw.update(mean=norm.mean, std=norm.std, scale=norm.scale, dtype=norm.dtype)
        else:
            kw.update(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), scale=1.0, dtype="uint8")
        views = [st.view(img) for img, st in zip(imgs, states)]
        if len(sizes) != 1:  # variable output size: one call per image
            return [hops.resize_crop_normalize([v], [b], (st.size[1], st.size[0]), flip=[st.flip], **kw)[0]
                    for (v, b), st in zip(views, states)]
        w, h = sizes.pop()
        boxes = np.asarray([b for _, b in views], np.float64).reshape(-1, 4)
        flips = np.asarray([s.flip for s in states], bool)
        return hops.resize_crop_normalize([v for v, _ in views], boxes, (h, w), flip=flips, out=out, **kw)

    def _run_per_sample(self, stage: _Stage, img, rng, ctx: Context):
        for op, layout in zip(stage.ops, stage.layouts):
            ctx.layout = layout
            ctx.dtype = str(img.dtype)
            if isinstance(op, GeometricOp) and layout == "CHW":
                # geometric ops think in HWC (cv2); run them on a view and come back to CHW
                ctx.layout = "HWC"
                img = np.ascontiguousarray(op.apply(img.transpose(1, 2, 0), rng, ctx).transpose(2, 0, 1))
            else:
                img = op.apply(img, rng, ctx)
        return img

    def run_batch(self, items, rngs, *, epoch: int = 0, indices=None, out=None, on_error: str = "raise"):
        """Run ``items`` (one generator each in ``rngs``). Returns (batch array, kept positions).

        ``out``: optional preallocated array of the output batch shape; the result is written into
        ``out[:len(kept)]``. ``on_error="skip"`` drops bad samples (ImageDecodeError/SampleError)
        and records them in ``self.errors``; ``"raise"`` re-raises.
        """
        indices = list(range(len(items))) if indices is None else list(indices)
        imgs, keep, rr = [], [], []
        ctxs = []
        decoded = self._decode_all(list(items))
        for pos, (item, rng, img) in enumerate(zip(items, rngs, decoded)):
            if isinstance(img, Exception):
                if on_error != "skip":
                    raise img
                self.errors.append(img if isinstance(img, ImageDecodeError)
                                   else ImageDecodeError(str(item), str(img)))
                continue
            imgs.append(img)
            keep.append(pos)
            rr.append(rng)
            ctxs.append(Context(epoch=epoch, index=indices[pos]))
        n_stages = len(self.stages)
        for si, stage in enumerate(self.stages):
            last = si == n_stages - 1
            new_imgs, new_keep, new_rr, new_ctx, states = [], [], [], [], []
            for img, pos, rng, ctx in zip(imgs, keep, rr, ctxs):
                try:
                    if stage.fused:
                        states.append(self._plan_fused(stage, img, rng))
                    else:
                        img = self._run_per_sample(stage, img, rng, ctx)
                except (ImageDecodeError, SampleError) as exc:
                    if on_error != "skip":
                        raise
                    src = items[pos] if not isinstance(items[pos], np.ndarray) else f"<sample {indices[pos]}>"
                    self.errors.append(exc if isinstance(exc, ImageDecodeError) else ImageDecodeError(src, str(exc)))
                    continue
                new_imgs.append(img)
                new_keep.append(pos)
                new_rr.append(rng)
                new_ctx.append(ctx)
            imgs, keep, rr, ctxs = new_imgs, new_keep, new_rr, new_ctx
            if stage.fused and imgs:
                res = self._run_fused(stage, imgs, states, out=out[:len(imgs)] if (last and out is not None) else None)
                if isinstance(res, list):
                    imgs = res
                elif last:
                    return res, keep
                else:
                    imgs = [res[k] for k in range(len(imgs))]
        if not imgs:
            if out is not None:
                return out[:0], keep
            return np.zeros((0,), np.float32), keep
        shapes = {im.shape for im in imgs}
        if len(shapes) != 1:
            raise SampleError(f"the pipeline produced images of different shapes {sorted(shapes)}; "
                              "add a fixed-size crop/resize to batch them")
        if out is not None:
            for k, im in enumerate(imgs):
                out[k] = im
            return out[:len(imgs)], keep
        return np.stack(imgs), keep

    def __call__(self, img, rng: Optional[np.random.Generator] = None, *, epoch: int = 0, index: int = 0):
        rng = rng if rng is not None else sample_rng(0, epoch, index)
        batch, _ = self.run_batch([img], [rng], epoch=epoch, indices=[index])
        return batch[0]

    def batch(self, imgs, *, seed: int = 0, epoch: int = 0):
        """Run a list of images (eval-style, e.g. predict/serve); returns the stacked batch."""
        rngs = [sample_rng(seed, epoch, i) for i in range(len(imgs))]
        out, _ = self.run_batch(list(imgs), rngs, epoch=epoch)
        return out

    def __repr__(self):
        return f"Pipeline(\n  {self.describe().replace(chr(10), chr(10) + '  ')}\n)"


def build_transforms(ops_config_list, *, fuse: bool = True, num_threads: Optional[int] = 1,
                     where: str = "transform_ops") -> Pipeline:
    """PaddleClas op list (``[{"OpName": {params}}, ...]``) -> compiled :class:`Pipeline`."""
    if ops_config_list is None:
        ops_config_list = []
    if not isinstance(ops_config_list, (list, tuple)):
        raise ConfigError(f"{where} must be a list of {{OpName: params}} mappings, got {type(ops_config_list).__name__}")
    ops = [_instantiate(e, f"{where}[{k}]") for k, e in enumerate(ops_config_list)]
    return Pipeline(ops, fuse=fuse, num_threads=num_threads)


def eval_ops_config(pretrained_cfg) -> list:
    """PaddleClas's eval op list for a model: ResizeImage(resize_short) -> CropImage -> NormalizeImage
    -> ToCHWImage, from the model's PretrainedCfg (input_size, resize_short, mean, std, interpolation)."""
    size = int(getattr(pretrained_cfg, "input_size", 224) or 224)
    short = getattr(pretrained_cfg, "resize_short", None) or int(round(size / 0.875))
    interp = getattr(pretrained_cfg, "interpolation", None) or "bilinear"
    return [
        {"ResizeImage": {"resize_short": int(short), "interpolation": interp}},
        {"CropImage": {"size": size}},
        {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": list(getattr(pretrained_cfg, "mean", (0.485, 0.456, 0.406))),
                            "std": list(getattr(pretrained_cfg, "std", (0.229, 0.224, 0.225))), "order": ""}},
        {"ToCHWImage": None},
    ]


def eval_transforms_for(pretrained_cfg, *, fuse: bool = True, num_threads: Optional[int] = None) -> Pipeline:
    """The eval preprocessing every consumer (eval, predict, serve, export) shares."""
    return build_transforms(eval_ops_config(pretrained_cfg), fuse=fuse, num_threads=num_threads,
                            where=f"eval transforms of {getattr(pretrained_cfg, 'name', '?')}")
