"""TrivialAugment (Müller & Hutter 2021, arXiv:2103.10869), "wide" variant.

Per image: ONE operation drawn uniformly from 14 (identity, auto-contrast, equalize, rotate,
solarize, color, posterize, contrast, brightness, sharpness, shear x/y, translate x/y) and ONE
strength drawn uniformly from ``num_magnitude_bins`` levels over the wide ranges of the paper
(rotate 135 degrees, shear 0.99, translate 32 px, enhancement factors 1 +- 0.99, posterize 2-8
bits, solarize threshold 256-0). Signed operations get a random sign. No tuning parameters.

Built on hubcls's augmentation primitives (``hubcls.data.autoaugment.apply_primitive``, the same
PIL-based primitives AutoAugment/RandAugment use); all randomness comes from the per-sample
generator the pipeline hands in, so results are reproducible per (seed, epoch, index).
"""
from __future__ import annotations

import numpy as np

from hubcls.data.autoaugment import apply_primitive
from hubcls.data.transforms import TransformOp

from . import HUBCLS_PLUGIN_API  # noqa: F401

OPS = ("identity", "autocontrast", "equalize", "rotate", "solarize", "color", "posterize", "contrast",
       "brightness", "sharpness", "shearX", "shearY", "translateX", "translateY")
SIGNED = frozenset({"rotate", "color", "contrast", "brightness", "sharpness", "shearX", "shearY",
                    "translateX", "translateY"})


def wide_magnitude(op: str, level: float, width: int, height: int) -> float:
    """Strength of ``op`` at ``level`` in [0, 1] (TrivialAugment's wide ranges)."""
    if op == "rotate":
        return 135.0 * level
    if op in ("shearX", "shearY"):
        return 0.99 * level
    if op == "translateX":
        return 32.0 * level / max(1, width)   # apply_primitive translates by m * width pixels
    if op == "translateY":
        return 32.0 * level / max(1, height)
    if op in ("color", "contrast", "brightness", "sharpness"):
        return 0.99 * level                    # enhance(1 +- m)
    if op == "posterize":
        return int(round(8 - 6 * level))       # 8 .. 2 bits
    if op == "solarize":
        return 256.0 - 256.0 * level          # threshold 256 (no-op) .. 0
    return 0.0


class TrivialAugment(TransformOp):
    """``- TrivialAugment: {num_magnitude_bins: 31, fillcolor: [128, 128, 128]}`` in transform_ops."""

    def __init__(self, num_magnitude_bins: int = 31, fillcolor=(128, 128, 128), ops=None):
        if int(num_magnitude_bins) < 2:
            raise ValueError(f"TrivialAugment: num_magnitude_bins must be >= 2, got {num_magnitude_bins}")
        self.num_magnitude_bins = int(num_magnitude_bins)
        self.fillcolor = tuple(int(c) for c in fillcolor)
        self.ops = tuple(ops) if ops is not None else OPS
        unknown = sorted(set(self.ops) - set(OPS))
        if unknown:
            raise ValueError(f"TrivialAugment: unknown ops {unknown}; choose from {list(OPS)}")

    def draw(self, rng: np.random.Generator, width: int, height: int):
        """(op, magnitude, sign) for one image."""
        op = self.ops[int(rng.integers(0, len(self.ops)))]
        level = int(rng.integers(0, self.num_magnitude_bins)) / (self.num_magnitude_bins - 1)
        sign = (-1 if rng.integers(0, 2) == 0 else 1) if op in SIGNED else 1
        return op, wide_magnitude(op, level, width, height), sign

    def apply(self, img, rng, ctx):
        if getattr(ctx, "layout", "HWC") != "HWC" or img.dtype != np.uint8 or img.ndim != 3:
            raise ValueError("TrivialAugment works on uint8 HWC RGB images: put it before NormalizeImage/ToCHWImage")
        op, m, sign = self.draw(rng, img.shape[1], img.shape[0])
        if op == "identity":
            return img
        if op == "rotate":  # apply_primitive rotates by +m (AutoAugment has no sign for rotate)
            m = m * sign
            sign = 1
        return apply_primitive(img, op, m, sign, self.fillcolor)
