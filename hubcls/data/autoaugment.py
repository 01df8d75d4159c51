"""AutoAugment (ImageNet policy) and RandAugment with PaddleClas's parameter semantics.

Magnitude tables, the 25 ImageNet sub-policies, the grey fill (128) and the random signs follow
PaddleClas's ``ppcls/data/preprocess/ops/{autoaugment,randaugment}.py``; what differs is where the
randomness comes from: every draw uses the per-sample ``numpy.random.Generator`` handed in by the
pipeline (seeded from (seed, epoch, index)), never the global ``random`` module.

The primitives work on uint8 HxWx3 RGB arrays through Pillow, so they match PaddleClas pixel for
pixel given the same draws.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

FILL = (128, 128, 128)

# magnitude index (0..9) -> value, for AutoAugment
_AA_RANGES = {
    "shearX": np.linspace(0, 0.3, 10),
    "shearY": np.linspace(0, 0.3, 10),
    "translateX": np.linspace(0, 150 / 331, 10),
    "translateY": np.linspace(0, 150 / 331, 10),
    "rotate": np.linspace(0, 30, 10),
    "color": np.linspace(0.0, 0.9, 10),
    "posterize": np.round(np.linspace(8, 4, 10), 0).astype(int),
    "solarize": np.linspace(256, 0, 10),
    "contrast": np.linspace(0.0, 0.9, 10),
    "sharpness": np.linspace(0.0, 0.9, 10),
    "brightness": np.linspace(0.0, 0.9, 10),
    "autocontrast": [0] * 10,
    "equalize": [0] * 10,
    "invert": [0] * 10,
}

# (p1, op1, magnitude index 1, p2, op2, magnitude index 2): the ImageNet policy, 25 sub-policies
IMAGENET_POLICY = (
    (0.4, "posterize", 8, 0.6, "rotate", 9),
    (0.6, "solarize", 5, 0.6, "autocontrast", 5),
    (0.8, "equalize", 8, 0.6, "equalize", 3),
    (0.6, "posterize", 7, 0.6, "posterize", 6),
    (0.4, "equalize", 7, 0.2, "solarize", 4),
    (0.4, "equalize", 4, 0.8, "rotate", 8),
    (0.6, "solarize", 3, 0.6, "equalize", 7),
    (0.8, "posterize", 5, 1.0, "equalize", 2),
    (0.2, "rotate", 3, 0.6, "solarize", 8),
    (0.6, "equalize", 8, 0.4, "posterize", 6),
    (0.8, "rotate", 8, 0.4, "color", 0),
    (0.4, "rotate", 9, 0.6, "equalize", 2),
    (0.0, "equalize", 7, 0.8, "equalize", 8),
    (0.6, "invert", 4, 1.0, "equalize", 8),
    (0.6, "color", 4, 1.0, "contrast", 8),
    (0.8, "rotate", 8, 1.0, "color", 2),
    (0.8, "color", 8, 0.8, "solarize", 7),
    (0.4, "sharpness", 7, 0.6, "invert", 8),
    (0.6, "shearX", 5, 1.0, "equalize", 9),
    (0.4, "color", 0, 0.6, "equalize", 3),
    (0.4, "equalize", 7, 0.2, "solarize", 4),
    (0.6, "solarize", 5, 0.6, "autocontrast", 5),
    (0.6, "invert", 4, 1.0, "equalize", 8),
    (0.6, "color", 4, 1.0, "contrast", 8),
    (0.8, "equalize", 8, 0.6, "equalize", 3),
)

# ops whose PaddleClas implementation draws a random sign (random.choice([-1, 1]))
SIGNED = frozenset({"shearX", "shearY", "translateX", "translateY", "color", "contrast", "sharpness",
                    "brightness"})


def _sign(rng) -> int:
    return -1 if rng.integers(0, 2) == 0 else 1


def apply_primitive(img: np.ndarray, op: str, magnitude: float, sign: int = 1, fill: Tuple[int, int, int] = FILL,
                    backend: str = "core") -> np.ndarray:
    """One AutoAugment/RandAugment primitive on a uint8 HxWx3 RGB array (PaddleClas semantics).

    ``backend="core"`` runs hubcls.ops's Pillow-exact C++ kernels; ``"pil"`` runs Pillow itself
    (PaddleClas's code path, the reference the tests compare with)."""
    if backend == "core":
        return _apply_core(img, op, magnitude, sign, fill)
    from PIL import Image, ImageEnhance, ImageOps

    pil = Image.fromarray(np.ascontiguousarray(img))
    w, h = pil.size
    m = magnitude
    if op == "shearX":
        out = pil.transform(pil.size, Image.AFFINE, (1, m * sign, 0, 0, 1, 0), Image.BICUBIC, fillcolor=fill)
    elif op == "shearY":
        out = pil.transform(pil.size, Image.AFFINE, (1, 0, 0, m * sign, 1, 0), Image.BICUBIC, fillcolor=fill)
    elif op == "translateX":
        out = pil.transform(pil.size, Image.AFFINE, (1, 0, m * w * sign, 0, 1, 0), fillcolor=fill)
    elif op == "translateY":
        out = pil.transform(pil.size, Image.AFFINE, (1, 0, 0, 0, 1, m * h * sign), fillcolor=fill)
    elif op == "rotate":
        # rotate with a grey fill (PaddleClas's rotate_with_fill: RGBA composite; no random sign)
        rot = pil.convert("RGBA").rotate(m)
        out = Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert(pil.mode)
    elif op == "color":
        out = ImageEnhance.Color(pil).enhance(1 + m * sign)
    elif op == "posterize":
        out = ImageOps.posterize(pil, int(m))
    elif op == "solarize":
        out = ImageOps.solarize(pil, m)
    elif op == "contrast":
        out = ImageEnhance.Contrast(pil).enhance(1 + m * sign)
    elif op == "sharpness":
        out = ImageEnhance.Sharpness(pil).enhance(1 + m * sign)
    elif op == "brightness":
        out = ImageEnhance.Brightness(pil).enhance(1 + m * sign)
    elif op == "autocontrast":
        out = ImageOps.autocontrast(pil)
    elif op == "equalize":
        out = ImageOps.equalize(pil)
    elif op == "invert":
        out = ImageOps.invert(pil)
    else:
        raise ValueError(f"unknown augmentation primitive {op!r}")
    return np.asarray(out)


def _apply_core(img, op, m, sign, fill):
    from ..ops import augment as A

    img = np.ascontiguousarray(img)
    h, w = img.shape[:2]
    if op == "shearX":
        return A.affine(img, A.shear_x_matrix(m * sign), interpolation="bicubic", fill=fill)
    if op == "shearY":
        return A.affine(img, A.shear_y_matrix(m * sign), interpolation="bicubic", fill=fill)
    if op == "translateX":
        return A.affine(img, A.translate_x_matrix(m * w * sign), interpolation="nearest", fill=fill)
    if op == "translateY":
        return A.affine(img, A.translate_y_matrix(m * h * sign), interpolation="nearest", fill=fill)
    if op == "rotate":  # PaddleClas's rotate_with_fill: nearest, grey (128) outside
        return A.rotate(img, m, interpolation="nearest", fill=(128, 128, 128))
    if op in ("color", "contrast", "sharpness", "brightness"):
        return getattr(A, op)(img, 1 + m * sign)
    if op == "posterize":
        return A.posterize(img, int(m))
    if op == "solarize":
        return A.solarize(img, m)
    if op in ("autocontrast", "equalize", "invert"):
        return getattr(A, op)(img)
    raise ValueError(f"unknown augmentation primitive {op!r}")


def autoaugment_draw(rng: np.random.Generator, policy: Sequence[tuple] = IMAGENET_POLICY) -> List[Tuple[str, float, int]]:
    """Draw one sub-policy application: list of (op, magnitude, sign) actually applied."""
    p1, op1, m1, p2, op2, m2 = policy[int(rng.integers(0, len(policy)))]
    steps = []
    # PaddleClas draws the sign inside the op, i.e. only when the op runs
    if rng.random() < p1:
        steps.append((op1, _AA_RANGES[op1][m1], _sign(rng) if op1 in SIGNED else 1))
    if rng.random() < p2:
        steps.append((op2, _AA_RANGES[op2][m2], _sign(rng) if op2 in SIGNED else 1))
    return steps


def randaugment_levels(magnitude: float, max_level: float = 10) -> Dict[str, float]:
    """RandAugment's magnitude of each of its 14 ops at level ``magnitude`` / ``max_level`` (PaddleClas)."""
    a = magnitude / max_level
    return {
        "shearX": 0.3 * a, "shearY": 0.3 * a,
        "translateX": 150.0 / 331 * a, "translateY": 150.0 / 331 * a,
        "rotate": 30 * a, "color": 0.9 * a,
        "posterize": int(4.0 * a),  # PaddleClas: int(4 * level) bits (sic: small magnitudes -> few bits)
        "solarize": 256.0 * a, "contrast": 0.9 * a, "sharpness": 0.9 * a, "brightness": 0.9 * a,
        "autocontrast": 0, "equalize": 0, "invert": 0,
    }


def randaugment_draw(rng: np.random.Generator, num_layers: int, levels: Dict[str, float]) -> List[Tuple[str, float, int]]:
    """``num_layers`` ops drawn uniformly (with replacement), each with its level and a random sign."""
    names = list(levels)
    steps = []
    for _ in range(num_layers):
        op = names[int(rng.integers(0, len(names)))]
        steps.append((op, levels[op], _sign(rng) if op in SIGNED else 1))
    return steps


def apply_steps(img: np.ndarray, steps: List[Tuple[str, float, int]], fill: Tuple[int, int, int] = FILL,
                backend: str = "core") -> np.ndarray:
    """Apply drawn (op, magnitude, sign) steps in order."""
    for op, m, s in steps:
        img = apply_primitive(img, op, m, s, fill, backend)
    return img
