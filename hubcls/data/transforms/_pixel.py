"""Pixel augmentations with Pillow semantics on uint8 images: AutoAugment and RandAugment (the
primitives live in hubcls.data.autoaugment)."""
from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ._base import AUGMENTERS, Context, TransformOp


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

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        from ..autoaugment import apply_steps, autoaugment_draw

        steps = autoaugment_draw(rng)
        return _policy_apply(img, ctx, "AutoAugment", lambda im: apply_steps(im, steps, self.fillcolor))


@AUGMENTERS.register(name="RandAugment")
class RandAugment(TransformOp):
    """RandAugment: ``num_layers`` ops drawn uniformly from 14, at level ``magnitude``/10."""

    def __init__(self, num_layers=2, magnitude=5, fillcolor=(128, 128, 128)):
        from ..autoaugment import randaugment_levels

        self.num_layers = int(num_layers)
        self.magnitude = float(magnitude)
        self.fillcolor = tuple(int(c) for c in fillcolor)
        self._levels = randaugment_levels(self.magnitude)

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        from ..autoaugment import apply_steps, randaugment_draw

        steps = randaugment_draw(rng, self.num_layers, self._levels)
        return _policy_apply(img, ctx, "RandAugment", lambda im: apply_steps(im, steps, self.fillcolor))

