"""Pixel augmentations with Pillow semantics on uint8 images: AutoAugment and RandAugment (the
primitives live in hubcls.data.autoaugment), ColorJitter; PCALighting's colour noise."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

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


def _jitter_range(name: str, value, center: float = 1.0, bound: Optional[float] = None):
    """PaddleClas / paddle.vision's ColorJitter argument -> (low, high) of the factor, or None."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] > value[1]:
            raise ConfigError(f"ColorJitter.{name} must be a number or [low, high], got {value!r}")
        low, high = float(value[0]), float(value[1])
    else:
        v = float(value)
        if v < 0:
            raise ConfigError(f"ColorJitter.{name} must be >= 0, got {value!r}")
        if v == 0:
            return None
        low, high = center - v, center + v
        if center == 1.0:
            low = max(low, 0.0)
    if bound is not None and (low < -bound or high > bound):
        raise ConfigError(f"ColorJitter.{name} must lie within [-{bound}, {bound}], got {value!r}")
    return low, high


def adjust_hue(img: np.ndarray, factor: float) -> np.ndarray:
    """paddle.vision.transforms.adjust_hue on a uint8 RGB image (its Pillow path): shift the hue
    channel of Pillow's HSV by ``uint8(factor * 255)``, wrapping around."""
    from PIL import Image

    h, s, v = Image.fromarray(img, "RGB").convert("HSV").split()
    shifted = np.asarray(h, np.uint8) + np.uint8(np.int64(factor * 255) & 0xFF)
    return np.asarray(Image.merge("HSV", (Image.fromarray(shifted, "L"), s, v)).convert("RGB"))


@AUGMENTERS.register(name="ColorJitter")
class ColorJitter(TransformOp):
    """Random brightness, contrast, saturation and hue, each by a factor drawn uniformly from its
    range, in a random order (PaddleClas's ColorJitter = paddle.vision.transforms.ColorJitter on
    Pillow images): brightness/contrast/saturation ``b`` -> factor in [max(0, 1 - b), 1 + b]
    (Pillow's ImageEnhance formulas, from the C++ core), hue ``h`` -> shift in [-h, h] (h <= 0.5).
    ``prob``: chance that the op runs at all (PaddleClas's default 2: always)."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, prob=2):
        self.brightness = _jitter_range("brightness", brightness)
        self.contrast = _jitter_range("contrast", contrast)
        self.saturation = _jitter_range("saturation", saturation)
        self.hue = _jitter_range("hue", hue, center=0.0, bound=0.5)
        self.prob = float(prob)

    def draw(self, rng: np.random.Generator) -> List[Tuple[str, float]]:
        """The sample's (kind, factor) steps in order, [] when the op does not run."""
        if rng.random() >= self.prob:
            return []
        kinds = [k for k in ("brightness", "contrast", "saturation", "hue") if getattr(self, k) is not None]
        return [(k, float(rng.uniform(*getattr(self, k)))) for k in (kinds[i] for i in rng.permutation(len(kinds)))]

    @staticmethod
    def run_steps(img: np.ndarray, steps: Sequence[Tuple[str, float]]) -> np.ndarray:
        """Apply drawn steps to a uint8 HWC RGB image."""
        from ...ops import augment as aug

        fns = {"brightness": aug.brightness, "contrast": aug.contrast, "saturation": aug.color}
        for kind, factor in steps:
            img = adjust_hue(img, factor) if kind == "hue" else fns[kind](np.ascontiguousarray(img), factor)
        return img

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        steps = self.draw(rng)
        if not steps:
            return img
        return _policy_apply(img, ctx, "ColorJitter", lambda im: self.run_steps(im, steps))


@AUGMENTERS.register(name="PCALighting")
class PCALighting(TransformOp):
    """AlexNet-style PCA lighting noise as PaddleClas applies it (used by its DiverseBranchBlock
    configs): each image gets ``eigvec @ (alpha * eigval)``, alpha ~ N(0, alphastd), added to every
    pixel of its channels. PaddleClas adds it to the 0..255 values, so the output is float32 (the
    ImageNet eigenvalues were meant for 0..1 images: the noise is tiny there, kept as it is)."""

    out_dtype = "float32"  # what it hands the next op (the pipeline then normalises op by op)
    EIGVAL = (0.2175, 0.0188, 0.0045)
    EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))

    def __init__(self, alphastd=0.1, eigval=EIGVAL, eigvec=EIGVEC):
        self.alphastd = float(alphastd)
        self.eigval = np.asarray(eigval, np.float32).reshape(3)
        self.eigvec = np.asarray(eigvec, np.float32).reshape(3, 3)

    def noise(self, rng: np.random.Generator) -> np.ndarray:
        """The per-channel offset for one image."""
        alpha = rng.normal(0.0, self.alphastd, 3).astype(np.float32)
        return (self.eigvec * (alpha * self.eigval)[None, :]).sum(1)

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        if self.alphastd == 0:
            return img
        rgb = self.noise(rng)
        shape = (3, 1, 1) if ctx.layout == "CHW" else (1, 1, 3)
        return img.astype(np.float32) + rgb.reshape(shape)
