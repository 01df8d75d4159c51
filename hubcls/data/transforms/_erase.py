"""Erasing ops (any layout, uint8 or float): Cutout, RandomErasing, HideAndSeek, GridMask. The
rectangles and masks are drawn here; the filling runs in hubcls.ops (fill_rects, gridmask)."""
from __future__ import annotations

import math

import numpy as np

from ...errors import ConfigError
from ._base import AUGMENTERS, Context, TransformOp, eval_number


def _hw(img, ctx):
    return img.shape[1:3] if ctx.layout == "CHW" else img.shape[:2]


def _erase(img, ctx, rects, values=None):
    """A copy of ``img`` with ``rects`` ((y0, y1, x0, x1) each) filled by ``values`` (one per rect: a
    scalar, per-channel values or (h, w, C) per-pixel values), through hubcls.ops.fill_rects."""
    from ...ops import fill_rects

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

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
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
        self.EPSILON = eval_number(EPSILON, "RandomErasing.EPSILON")
        self.sl = eval_number(sl, "RandomErasing.sl")
        self.sh = eval_number(sh, "RandomErasing.sh")
        r1 = eval_number(r1, "RandomErasing.r1")
        self.use_log_aspect = bool(use_log_aspect)
        self.r1 = (math.log(r1), math.log(1 / r1)) if self.use_log_aspect else (r1, 1 / r1)
        self.mean = [float(m) for m in mean]
        self.attempt = int(attempt)
        if mode not in ("const", "rand", "pixel"):
            raise ConfigError(f"RandomErasing.mode must be const, rand or pixel, got {mode!r}")
        self.mode = mode

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
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

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
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

    def current_prob(self, epoch: int) -> float:
        """Probability of masking at ``epoch`` (PaddleClas's linear ramp)."""
        if self.num_epochs <= 0:
            return self.prob
        return self.prob * min(1.0, float(epoch) / self.num_epochs)

    def mask(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """An (h, w) 0/1 grid mask (1 keeps the pixel), rotated by a random angle below ``rotate``."""
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

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        if rng.random() > self.current_prob(ctx.epoch):
            return img
        h, w = _hw(img, ctx)
        m = self.mask(h, w, rng)
        if img.ndim == 3 and img.dtype in (np.uint8, np.float32, np.float16):
            from ...ops import gridmask

            out = np.array(img, copy=True, order="C")
            gridmask(out[None], m[None], layout="NCHW" if ctx.layout == "CHW" else "NHWC", num_threads=1)
            return out
        m = m[None] if ctx.layout == "CHW" else m[:, :, None]
        return (img * m).astype(img.dtype)

