"""VisualDL logging for ``Global.use_visualdl: True`` (PaddleClas's switch; the ``visualdl`` extra).

Written by rank 0 to ``Global.visualdl_dir`` (default ``<run dir>/vdl``, where PaddleClas writes):
per-step ``train/loss``, ``train/lr``, ``train/top1`` (when the batch has hard labels),
``train/batch_cost``, ``train/reader_cost``, ``train/ips``; per-epoch ``epoch/*`` (training loss,
eval metrics); ``Global.visualdl_images`` (default 4) training images of each epoch's first batch,
after augmentation, un-normalised for display. ``visualdl --logdir <run dir>/vdl`` shows them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError

INSTALL_HINT = "pip install 'hubcls[visualdl]'"


def require_visualdl():
    """Import VisualDL's LogWriter or say how to install it (before any model is built)."""
    try:
        from visualdl import LogWriter
    except ImportError as exc:
        raise ConfigError(f"Global.use_visualdl is on but VisualDL is not installed ({exc}); "
                          f"{INSTALL_HINT}, or set -o Global.use_visualdl=False") from None
    return LogWriter


def _normalize_params(transform_ops) -> Optional[tuple]:
    """(scale, mean, std) of the NormalizeImage op in a PaddleClas op list, to undo it for display."""
    from ..data.transforms._base import eval_number

    for op in transform_ops or []:
        if isinstance(op, dict) and "NormalizeImage" in op:
            p = op["NormalizeImage"] or {}
            scale = eval_number(p.get("scale", 1.0 / 255.0), "NormalizeImage.scale")
            return scale, list(p.get("mean", [0.485, 0.456, 0.406])), list(p.get("std", [0.229, 0.224, 0.225]))
    return None


def to_display(images: np.ndarray, normalize: Optional[tuple]) -> np.ndarray:
    """(N, C, H, W) float network input -> (N, H, W, 3) uint8 for display."""
    x = np.asarray(images, np.float32)
    if x.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {x.shape}")
    x = x[:, :3]
    if normalize is not None:
        scale, mean, std = normalize
        c = x.shape[1]
        x = (x * np.asarray(std[:c], np.float32).reshape(1, c, 1, 1)
             + np.asarray(mean[:c], np.float32).reshape(1, c, 1, 1)) / np.float32(scale)
    else:  # unknown preprocessing: stretch each image to 0..255
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        hi = x.max(axis=(1, 2, 3), keepdims=True)
        x = (x - lo) / np.maximum(hi - lo, 1e-12) * 255.0
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return np.ascontiguousarray(x)


class VisualDLLogger:
    def __init__(self, logdir, *, transform_ops: Sequence = (), max_images: int = 4):
        LogWriter = require_visualdl()
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.writer = LogWriter(logdir=str(self.logdir))
        self.max_images = int(max_images)
        self._normalize = _normalize_params(transform_ops)

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        for k, v in values.items():
            if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and np.isfinite(v):
                self.writer.add_scalar(tag=f"{prefix}/{k}", value=float(v), step=int(step))

    def images(self, tag: str, batch, step: int) -> None:
        if self.max_images <= 0:
            return
        arr = batch.numpy() if hasattr(batch, "numpy") else np.asarray(batch)
        if arr.ndim != 4:
            return
        for i, img in enumerate(to_display(arr[: self.max_images], self._normalize)):
            self.writer.add_image(tag=f"{tag}/{i}", img=img, step=int(step))

    def close(self) -> None:
        self.writer.close()
