"""The accuracy gate that lets ``backend="auto"`` use reduced precision (bf16, INT8).

A reduced-precision candidate is allowed only when, on calibration images, its answers match fp32:
top-1 agreement >= ``TOP1_MIN`` and max |softmax(candidate) - softmax(fp32)| <= ``MAX_DPROB`` over
every image and class. The images are the user's (``calib_images=`` / ``--calib DIR``) or, when
none are given, the shipped set: scenes rendered by ``hubcls.data.demo`` (deterministic, generated
at run time, so no image files with licences to track). With fewer than 100 images, 99% agreement
means every image must agree.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError
from .postprocess import softmax  # the probabilities users get

TOP1_MIN = 0.99
MAX_DPROB = 0.02
SHIPPED_IMAGES = 32
MAX_USER_IMAGES = 256  # a folder's first 256 images (sorted paths): enough for the 99% figure, bounded memory
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class GateResult:
    """What the gate measured for one candidate (``backend/precision``) against fp32."""

    candidate: str
    images: int
    top1_agreement: float
    max_abs_dprob: float
    passed: bool
    calibration: str = ""

    def line(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return (f"accuracy gate {self.candidate}: top-1 agreement {100 * self.top1_agreement:.1f}% "
                f"(>= {100 * TOP1_MIN:.0f}%), max |dprob| {self.max_abs_dprob:.4f} (<= {MAX_DPROB}) "
                f"on {self.images} images ({self.calibration or 'calibration set'}): {verdict}")

    def as_dict(self) -> dict:
        return asdict(self)


def accuracy_gate(reference_logits, candidate_logits, candidate: str = "?", calibration: str = "") -> GateResult:
    """Compare a candidate's logits with fp32 logits of the same images (N, classes)."""
    ref, got = np.asarray(reference_logits), np.asarray(candidate_logits)
    if ref.shape != got.shape or ref.ndim != 2 or len(ref) == 0:
        raise ValueError(f"the gate compares two (N, classes) logit arrays of one shape, got {ref.shape} and {got.shape}")
    agree = float(np.mean(ref.argmax(1) == got.argmax(1)))
    if not np.isfinite(got).all():
        dprob = float("inf")
    else:
        dprob = float(np.abs(softmax(ref) - softmax(got)).max())
    return GateResult(candidate, len(ref), agree, dprob, agree >= TOP1_MIN and dprob <= MAX_DPROB, calibration)


def logits_in_chunks(backend, batch: np.ndarray, chunk: int = 8) -> np.ndarray:
    """Run ``batch`` through a backend ``chunk`` images at a time (bounded memory, the batch sizes served)."""
    return np.concatenate([backend(np.ascontiguousarray(batch[i:i + chunk])) for i in range(0, len(batch), chunk)])


# --------------------------------------------------------------------------- calibration images
def shipped_images(n: int = SHIPPED_IMAGES, seed: int = 0) -> List[np.ndarray]:
    """``n`` uint8 RGB scenes of the demo data set (all its classes in turn, 224-320 px), generated."""
    return list(_rendered(n, seed))


@functools.lru_cache(maxsize=4)
def _rendered(n: int, seed: int):
    from ..data.demo import CLASSES, render_sample

    rng = np.random.default_rng(seed)
    imgs = tuple(render_sample(CLASSES[i % len(CLASSES)], rng, size_range=(224, 320)) for i in range(n))
    for im in imgs:
        im.flags.writeable = False  # shared by every load in this process
    return imgs


def shipped_id(n: int = SHIPPED_IMAGES, seed: int = 0) -> str:
    from ..data.demo import _VERSION

    return f"shipped-demo-v{_VERSION}-n{n}-seed{seed}"


def images_from_folder(folder: Union[str, Path], n: Optional[int] = None, what: str = "calibration") -> List[np.ndarray]:
    """Up to ``n`` images from ``folder`` (recursively; evenly spread over the sorted paths) as uint8 RGB arrays."""
    from ..data import read_image

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{what} images: {folder} is not a directory")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if n is not None and len(files) > n:  # spread over the sorted paths: a folder per class keeps every class
        files = [files[int(i)] for i in np.linspace(0, len(files) - 1, n)]
    if not files:
        raise ConfigError(f"{what} images: none found in {folder} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return [read_image(str(f)) for f in files]


def calibration_source(calib_images, n: Optional[int] = MAX_USER_IMAGES):
    """(list of uint8 RGB images, id for cache keys, description) from a folder, a list of images
    (arrays / paths), or None for the shipped set; at most ``n`` of the user's images."""
    if calib_images is None:
        return shipped_images(), shipped_id(), f"shipped set: {SHIPPED_IMAGES} generated demo scenes"
    if isinstance(calib_images, (str, Path)):
        imgs = images_from_folder(calib_images, n)
        desc = f"{len(imgs)} images from {calib_images}"
    else:
        from ..data import read_image

        imgs = [read_image(str(x)) if isinstance(x, (str, Path)) else np.asarray(x) for x in list(calib_images)[:n]]
        if not imgs:
            raise ConfigError("calib_images is empty")
        desc = f"{len(imgs)} given images"
    h = hashlib.blake2b(digest_size=12)
    for im in imgs:
        h.update(str(im.shape).encode())
        h.update(np.ascontiguousarray(im).tobytes())
    return imgs, "user-" + h.hexdigest(), desc


def preprocess_images(images: Sequence[np.ndarray], pretrained_cfg=None, input_size=None) -> np.ndarray:
    """float32 NCHW batch through the model's eval preprocessing (or resize + ImageNet mean/std when
    the model carries no pretrained config)."""
    from ..data import build_transforms, eval_transforms_for

    if pretrained_cfg is not None:
        out = np.asarray(eval_transforms_for(pretrained_cfg).batch(list(images)), np.float32)
        if input_size is None or tuple(out.shape[1:]) == tuple(int(v) for v in input_size):
            return out
        # exported at another size than the config's eval crop: plain resize to the program's input
    if input_size is None:
        raise ConfigError("calibration images need the model's preprocessing or its input size")
    h, w = int(input_size[-2]), int(input_size[-1])
    ops = [{"ResizeImage": {"size": [w, h]}},
           {"NormalizeImage": {"scale": 1.0 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "order": ""}},
           {"ToCHWImage": None}]
    return np.asarray(build_transforms(ops).batch(list(images)), np.float32)
