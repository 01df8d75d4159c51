"""Crop-box geometry for resize_crop_normalize: the eval transform (resize short side, centre crop)
and the train transform (RandomResizedCrop) expressed as one box in source pixels."""
from __future__ import annotations

import math

import numpy as np


def resize_short_size(h: int, w: int, resize_short: int) -> tuple[int, int]:
    """(new_h, new_w) that PaddleClas's ResizeImage(resize_short=S) gives: scale = S / min(h, w),
    each side int(round(side * scale))."""
    if h <= 0 or w <= 0 or resize_short <= 0:
        raise ValueError(f"sizes must be positive, got h={h} w={w} resize_short={resize_short}")
    percent = float(resize_short) / min(h, w)
    return int(round(h * percent)), int(round(w * percent))


def resize_short_center_crop_box(h: int, w: int, resize_short: int, crop) -> tuple[float, float, float, float]:
    """The box (x, y, bw, bh) in source pixels such that resampling it to crop x crop equals
    "cv2.resize the short side to resize_short, then centre-crop crop x crop" (PaddleClas eval:
    ResizeImage + CropImage). The resized image is (nh, nw) = resize_short_size(...); one resized
    pixel is w/nw by h/nh source pixels, the crop offset is ((nw - cw)//2, (nh - ch)//2)."""
    ch, cw = (crop, crop) if isinstance(crop, (int, np.integer)) else tuple(int(c) for c in crop)
    nh, nw = resize_short_size(h, w, resize_short)
    if ch > nh or cw > nw:
        raise ValueError(f"crop {ch}x{cw} is larger than the resized image {nh}x{nw}")
    sx, sy = w / nw, h / nh
    ox, oy = (nw - cw) // 2, (nh - ch) // 2
    return (ox * sx, oy * sy, cw * sx, ch * sy)


def random_resized_crop_box(h: int, w: int, rng: np.random.Generator, scale=(0.08, 1.0),
                            ratio=(3.0 / 4.0, 4.0 / 3.0), attempts: int = 10) -> tuple[int, int, int, int]:
    """A RandomResizedCrop box (x, y, bw, bh), integer pixels, torchvision/PaddleClas semantics:
    area fraction ~ U(scale), log-aspect ~ U(log ratio); 10 attempts, then a centre crop clamped to
    the ratio range."""
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    lo, hi = float(scale[0]), float(scale[1])
    if not (0 < lo <= hi):
        raise ValueError(f"scale must satisfy 0 < lo <= hi, got {scale}")
    rlo, rhi = float(ratio[0]), float(ratio[1])
    if not (0 < rlo <= rhi):
        raise ValueError(f"ratio must satisfy 0 < lo <= hi, got {ratio}")
    area = h * w
    log_r = (math.log(rlo), math.log(rhi))
    for _ in range(attempts):
        target = area * rng.uniform(lo, hi)
        ar = math.exp(rng.uniform(*log_r))
        bw = int(round(math.sqrt(target * ar)))
        bh = int(round(math.sqrt(target / ar)))
        if 0 < bw <= w and 0 < bh <= h:
            y = int(rng.integers(0, h - bh + 1))
            x = int(rng.integers(0, w - bw + 1))
            return (x, y, bw, bh)
    in_ratio = w / h
    if in_ratio < rlo:
        bw, bh = w, int(round(w / rlo))
    elif in_ratio > rhi:
        bh, bw = h, int(round(h * rhi))
    else:
        bw, bh = w, h
    bw, bh = max(1, min(bw, w)), max(1, min(bh, h))
    return ((w - bw) // 2, (h - bh) // 2, bw, bh)
