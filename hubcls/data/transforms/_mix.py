"""Batch (mixing) transforms (PaddleClas ``batch_transform_ops``): MixupOperator, CutmixOperator, OpSampler.

They act on a whole batch — ``images`` (N, C, H, W) or (N, H, W, C) float array, ``labels`` int64
(N,) class ids or float32 (N, K) targets — and return mixed images and float32 (N, K) soft targets.
Draws come from the batch generator (seed, epoch, rank, batch number): reproducible whatever the
number of workers. ``class_num`` comes from the config (``Arch.class_num``) or the dataset.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ...errors import ConfigError
from ...registry import Registry
from ._base import build_op

#: Batch transform ops (PaddleClas ``batch_transform_ops``) by name.
BATCH_OPS = Registry("batch augmenter", group="hubcls.batch_augmenters")


def _core_ok(images) -> bool:
    """hubcls.ops's mix kernels take C-contiguous float32/float16/uint8 4-d batches."""
    return images.ndim == 4 and images.dtype in (np.float32, np.float16, np.uint8) and images.flags.c_contiguous


class BatchOp:
    """Base of the batch ops: ``op(images, labels, rng, layout) -> (images, float32 (N, K) targets)``."""

    def __init__(self, class_num: Optional[int] = None):
        self.class_num = class_num

    def _targets(self, labels):
        labels = np.asarray(labels)
        if labels.ndim == 2:
            return labels.astype(np.float32)
        if not self.class_num:
            raise ConfigError(f"{type(self).__name__} needs the number of classes: set Arch.class_num "
                              "or use a dataset that knows its classes")
        return np.eye(int(self.class_num), dtype=np.float32)[labels.astype(np.int64)]

    def __call__(self, images, labels, rng, layout="CHW"):
        raise NotImplementedError


@BATCH_OPS.register(name="MixupOperator")
class MixupOperator(BatchOp):
    """images = lam * images + (1 - lam) * images[perm]; lam ~ Beta(alpha, alpha)."""

    def __init__(self, alpha: float = 1.0, class_num: Optional[int] = None):
        super().__init__(class_num)
        if alpha <= 0:
            raise ConfigError(f"MixupOperator.alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def __call__(self, images, labels, rng, layout="CHW"):
        n = images.shape[0]
        idx = rng.permutation(n)
        lam = float(rng.beta(self.alpha, self.alpha))
        t = self._targets(labels)
        if _core_ok(images):
            from ...ops import mixup

            mixed = mixup(images, lam=lam, perm=idx, layout="NCHW" if layout == "CHW" else "NHWC", num_threads=1)[0]
            images[...] = mixed
        else:
            images[...] = (lam * images + (1 - lam) * images[idx]).astype(images.dtype)
        return images, (t * lam + t[idx] * (1 - lam)).astype(np.float32)


@BATCH_OPS.register(name="CutmixOperator")
class CutmixOperator(BatchOp):
    """Paste a box of images[perm] into images; the box side is sqrt(1 - lam) of each dimension,
    centred at a uniform point and clipped; targets mix by the pasted area."""

    def __init__(self, alpha: float = 0.2, class_num: Optional[int] = None):
        super().__init__(class_num)
        if alpha <= 0:
            raise ConfigError(f"CutmixOperator.alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    @staticmethod
    def rand_bbox(h: int, w: int, lam: float, rng: np.random.Generator) -> Tuple[int, int, int, int]:
        """(y1, y2, x1, x2): sides sqrt(1 - lam) of (h, w), centred at a uniform point, clipped."""
        cut_rat = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(h * cut_rat), int(w * cut_rat)
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, y2 = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
        x1, x2 = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
        return int(y1), int(y2), int(x1), int(x2)

    def __call__(self, images, labels, rng, layout="CHW"):
        n = images.shape[0]
        idx = rng.permutation(n)
        lam = float(rng.beta(self.alpha, self.alpha))
        h, w = images.shape[2:4] if layout == "CHW" else images.shape[1:3]
        y1, y2, x1, x2 = self.rand_bbox(h, w, lam, rng)
        if _core_ok(images):
            from ...ops import cutmix

            images[...] = cutmix(images, lam=lam, perm=idx, box=(x1, y1, x2, y2),
                                 layout="NCHW" if layout == "CHW" else "NHWC", num_threads=1)[0]
        else:
            src = images[idx]
            if layout == "CHW":
                images[:, :, y1:y2, x1:x2] = src[:, :, y1:y2, x1:x2]
            else:
                images[:, y1:y2, x1:x2] = src[:, y1:y2, x1:x2]
        lam = 1.0 - float((y2 - y1) * (x2 - x1)) / (h * w)
        t = self._targets(labels)
        return images, (t * lam + t[idx] * (1 - lam)).astype(np.float32)


@BATCH_OPS.register(name="OpSampler")
class OpSampler(BatchOp):
    """Pick one of several batch ops per batch by ``prob`` (the rest of the mass: no op)."""

    def __init__(self, class_num: Optional[int] = None, **op_dict):
        super().__init__(class_num)
        self.ops, self.probs = [], []
        for name, params in op_dict.items():
            params = dict(params or {})
            prob = float(params.pop("prob", 0.0))
            params.setdefault("class_num", class_num)
            self.ops.append(BATCH_OPS.get(name)(**params))
            self.probs.append(prob)
        if sum(self.probs) > 1 + 1e-9:
            raise ConfigError(f"OpSampler: the probabilities sum to {sum(self.probs)} > 1")

    def __call__(self, images, labels, rng, layout="CHW"):
        u = rng.random()
        acc = 0.0
        for op, p in zip(self.ops, self.probs):
            acc += p
            if u < acc:
                return op(images, labels, rng, layout)
        return images, self._targets(labels) if self.class_num else labels


class BatchPipeline:
    """The batch ops of one loader, applied in order."""

    def __init__(self, ops: List[BatchOp]):
        self.ops = ops

    @property
    def mixes_labels(self) -> bool:
        """Whether labels come out as soft (N, K) targets."""
        return bool(self.ops)

    def __call__(self, images, labels, rng, layout="CHW"):
        for op in self.ops:
            images, labels = op(images, labels, rng, layout)
        return images, labels


def build_batch_transforms(ops_config_list: Optional[List[dict]], *, class_num: Optional[int] = None,
                           where: str = "batch_transform_ops") -> BatchPipeline:
    """PaddleClas ``batch_transform_ops`` list -> :class:`BatchPipeline` (``class_num`` fills the ops'
    ``class_num`` unless an entry sets it)."""
    ops = [build_op(BATCH_OPS, entry, f"{where}[{k}]", class_num=class_num)
           for k, entry in enumerate(ops_config_list or [])]
    return BatchPipeline(ops)
