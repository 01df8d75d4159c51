"""PaddleClas's augmentation policies as parameter draws for the hubcls kernels.

Each ``draw_*`` function reproduces the semantics (parameters, defaults, distributions) of the
PaddleClas op of the same name, but draws from a NumPy Generator and returns the parameters for a
whole batch, so the kernels in ``hubcls.ops.erase`` / ``hubcls.ops.mix`` can apply them in one call.
Geometry is in image terms: rects are (x0, y0, x1, y1), half-open, rows = y.
"""
from __future__ import annotations

import math

import numpy as np


def draw_cutout_boxes(rng: np.random.Generator, n: int, h: int, w: int, n_holes: int = 1,
                      length: int = 112) -> list[np.ndarray]:
    """Cutout(n_holes, length): per hole a centre uniform over the pixels, a length x length square
    around it (length // 2 each side) clipped to the image."""
    if n_holes < 0 or length < 0:
        raise ValueError("n_holes and length must be >= 0")
    out = []
    half = length // 2
    for _ in range(n):
        ys = rng.integers(0, h, n_holes)
        xs = rng.integers(0, w, n_holes)
        out.append(np.stack([np.clip(xs - half, 0, w), np.clip(ys - half, 0, h),
                             np.clip(xs + half, 0, w), np.clip(ys + half, 0, h)], axis=1).astype(np.int32))
    return out


def draw_random_erasing_params(rng: np.random.Generator, n: int, h: int, w: int, c: int = 3, EPSILON: float = 0.5,
                               sl: float = 0.02, sh: float = 0.4, r1: float = 0.3, mean=(0.0, 0.0, 0.0),
                               attempt: int = 100, use_log_aspect: bool = False, mode: str = "const"):
    """RandomErasing: with probability EPSILON, up to `attempt` tries of area ~ U(sl, sh) * H*W and
    aspect ~ U(r1, 1/r1) (log-uniform with use_log_aspect); rect rows h_e = round(sqrt(area*aspect)),
    cols w_e = round(sqrt(area/aspect)), accepted when h_e < H and w_e < W, top-left uniform.
    Fill by mode: "const" -> mean, "rand" -> one N(0,1) value per channel, "pixel" -> N(0,1) per
    pixel and channel. Returns (rects, values) for ``erase.random_erasing``."""
    if mode not in ("const", "rand", "pixel"):
        raise ValueError(f'mode must be "const", "rand" or "pixel", got {mode!r}')
    if not (0 < r1) or not (0 <= sl <= sh):
        raise ValueError("need 0 < r1 and 0 <= sl <= sh")
    lo, hi = (math.log(r1), math.log(1 / r1)) if use_log_aspect else (r1, 1 / r1)
    mean = np.asarray(mean, np.float32)
    rects, values = [], []
    for _ in range(n):
        if rng.random() > EPSILON:
            rects.append(np.zeros((0, 4), np.int32))
            values.append([])
            continue
        got = None
        for _ in range(attempt):
            area = h * w * rng.uniform(sl, sh)
            ar = rng.uniform(lo, hi)
            if use_log_aspect:
                ar = math.exp(ar)
            eh = int(round(math.sqrt(area * ar)))
            ew = int(round(math.sqrt(area / ar)))
            if ew < w and eh < h:
                y0 = int(rng.integers(0, h - eh + 1))
                x0 = int(rng.integers(0, w - ew + 1))
                if mode == "pixel":
                    val = rng.standard_normal((eh, ew, c)).astype(np.float32)
                elif mode == "rand":
                    val = rng.standard_normal(c).astype(np.float32)
                else:
                    val = np.broadcast_to(mean, (c,)) if mean.size in (1, c) else mean[:c]
                got = (np.array([[x0, y0, x0 + ew, y0 + eh]], np.int32), [val])
                break
        if got is None:
            rects.append(np.zeros((0, 4), np.int32))
            values.append([])
        else:
            rects.append(got[0])
            values.append(got[1])
    return rects, values


def draw_hide_and_seek(rng: np.random.Generator, n: int, h: int, w: int, grid_sizes=(0, 16, 32, 44, 56),
                       hide_prob: float = 0.5) -> list:
    """HideAndSeek: a grid size per sample from grid_sizes (0 = no hiding), each g x g cell hidden
    with probability hide_prob. Returns [(g, hidden bool (ceil(H/g), ceil(W/g)))] for
    ``erase.hide_and_seek``. (PaddleClas's loop bounds rows by W and columns by H, which only
    matters for non-square inputs; here rows and columns are bounded by H and W.)"""
    out = []
    for _ in range(n):
        g = int(grid_sizes[int(rng.integers(len(grid_sizes)))])
        if g == 0:
            out.append((0, None))
            continue
        out.append((g, rng.random((-(-h // g), -(-w // g))) <= hide_prob))
    return out


def gridmask_prob(prob: float, epoch: int, num_epochs: int = 240) -> float:
    """PaddleClas GridMask ramps its probability linearly to `prob` over num_epochs."""
    return prob * min(1.0, epoch / num_epochs)


def draw_gridmask_masks(rng: np.random.Generator, n: int, h: int, w: int, d1: int = 96, d2: int = 224,
                        rotate: int = 1, ratio: float = 0.5, mode: int = 0, prob: float = 1.0) -> np.ndarray:
    """GridMask(d1, d2, rotate, ratio, mode, prob): per sample, with probability prob, a grid of
    period d ~ U[d1, d2) with stripes of width l = int(d*ratio + 0.5) at random offsets, drawn on a
    1.5x canvas, rotated by an integer angle in [0, rotate) degrees (Pillow, nearest), centre
    cropped; mode 1 inverts. Returns (N, H, W) uint8 masks, 1 = keep."""
    from PIL import Image

    if not (0 < d1 < d2):
        raise ValueError(f"need 0 < d1 < d2, got d1={d1} d2={d2}")
    masks = np.ones((n, h, w), np.uint8)
    hh, ww = int(1.5 * h), int(1.5 * w)
    for i in range(n):
        if rng.random() > prob:
            continue
        d = int(rng.integers(d1, d2))
        l = int(d * ratio + 0.5)
        m = np.ones((hh, ww), np.uint8)
        st_h, st_w = int(rng.integers(d)), int(rng.integers(d))
        for k in range(-1, hh // d + 1):
            s = d * k + st_h
            m[max(min(s, hh), 0):max(min(s + l, hh), 0), :] = 0
        for k in range(-1, ww // d + 1):
            s = d * k + st_w
            m[:, max(min(s, ww), 0):max(min(s + l, ww), 0)] = 0
        r = int(rng.integers(rotate)) if rotate > 0 else 0
        if r:
            m = np.asarray(Image.fromarray(m).rotate(r))
        m = m[(hh - h) // 2:(hh - h) // 2 + h, (ww - w) // 2:(ww - w) // 2 + w]
        masks[i] = 1 - m if mode == 1 else m
    return masks
