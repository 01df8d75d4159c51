"""Real photos for the ops tests: sklearn's and skimage's sample images resized to 350-500 px."""
from __future__ import annotations

import functools

import cv2
import numpy as np


@functools.lru_cache(maxsize=1)
def photos() -> tuple[np.ndarray, ...]:
    out = []
    try:
        from sklearn.datasets import load_sample_images

        imgs = load_sample_images().images  # china.jpg, flower.jpg (427x640)
        out.append(cv2.resize(imgs[0], (500, 375), interpolation=cv2.INTER_AREA))
        out.append(cv2.resize(imgs[1], (410, 460), interpolation=cv2.INTER_AREA))
    except Exception:  # pragma: no cover - sklearn data missing
        pass
    try:
        import skimage.data as sd

        out.append(cv2.resize(sd.astronaut(), (450, 450), interpolation=cv2.INTER_AREA))
        out.append(cv2.resize(sd.chelsea(), (480, 352), interpolation=cv2.INTER_AREA))
    except Exception:  # pragma: no cover
        pass
    if not out:  # pragma: no cover - neither package: smooth synthetic photo-like images
        rng = np.random.default_rng(0)
        base = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        out.append(cv2.resize(base, (500, 375), interpolation=cv2.INTER_CUBIC))
    return tuple(np.ascontiguousarray(p) for p in out)
