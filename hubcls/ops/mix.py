"""Batch mix ops: mixup and cutmix (per-batch lambda like PaddleClas, optionally per sample)."""
from __future__ import annotations

import math

import numpy as np

from .. import _C
from . import _device
from ._common import DTYPE_CODES, as_array, check_num_threads
from .erase import batch_array, device_batch


def _batch_any(batch, layout):
    """(array-or-device-batch, nchw, C, H, W, n, DeviceBatch|None)."""
    db = device_batch(batch, layout)
    if db is not None:
        return batch, db.nchw, db.c, db.h, db.w, db.shape[0], db
    a, nchw, c, h, w = batch_array(batch, layout, writeable=False)
    return a, nchw, c, h, w, a.shape[0], None


def _device_out(db, out):
    if out is None:
        return _device.device_empty(db.d, db.shape, db.d.dtype)
    o = _device.check_out(out, db.shape, db.d.dtype, db.d.device)
    if o.ptr == db.d.ptr:
        raise ValueError("out must not overlap the input batch (samples read each other)")
    return out


def _labels_any(labels, n, perm):
    if labels is None:
        return None, None
    if _device.device_array(labels) is not None:  # device labels: index with the framework
        return labels, labels[_device_index(labels, perm)]
    return _labels(labels, n, perm)


def _device_index(like, perm):
    fw = type(like).__module__.split(".")[0]
    if fw == "torch":
        import torch

        return torch.as_tensor(perm, device=like.device)
    if fw == "cupy":
        import cupy

        return cupy.asarray(perm)
    return perm


def _perm_lam(n, rng, perm, lam, alpha, per_sample):
    if perm is None:
        if rng is None:
            raise ValueError("pass rng (np.random.Generator) or an explicit perm")
        perm = rng.permutation(n)
    perm = np.asarray(perm)
    if perm.shape != (n,) or not np.issubdtype(perm.dtype, np.integer) or (n and (perm.min() < 0 or perm.max() >= n)):
        raise ValueError(f"perm must be {n} integer indices into the batch, got {perm!r}")
    if lam is None:
        if rng is None:
            raise ValueError("pass rng to draw lam, or lam itself")
        if not (alpha > 0):
            raise ValueError(f"alpha must be > 0, got {alpha}")
        lam = rng.beta(alpha, alpha, size=n) if per_sample else float(rng.beta(alpha, alpha))
    lam_arr = np.broadcast_to(np.asarray(lam, dtype=np.float64), (n,)).astype(np.float32)
    if not np.all(np.isfinite(lam_arr)) or np.any(lam_arr < 0) or np.any(lam_arr > 1):
        raise ValueError(f"lam must lie in [0, 1], got {lam!r}")
    return np.ascontiguousarray(perm.astype(np.int64)), lam, np.ascontiguousarray(lam_arr)


def _out(a, out):
    if out is None:
        return np.empty_like(a)
    o = as_array(out, "out")
    if o.shape != a.shape or o.dtype != a.dtype or not o.flags.c_contiguous or not o.flags.writeable:
        raise ValueError(f"out must be a writeable C-contiguous {a.dtype} array of shape {a.shape}")
    if np.shares_memory(o, a):
        raise ValueError("out must not overlap the input batch (samples read each other)")
    return o


def _labels(labels, n, perm):
    if labels is None:
        return None, None
    lab = as_array(labels, "labels")
    if lab.shape[:1] != (n,):
        raise ValueError(f"labels must have {n} rows, got shape {lab.shape}")
    return lab, lab[perm]


def mixup(batch, labels=None, lam=None, *, alpha=0.2, rng=None, perm=None, per_sample=False, layout="NCHW",
          out=None, num_threads=None):
    """Mixup (PaddleClas MixupOperator): lam ~ Beta(alpha, alpha) once per batch (per sample with
    per_sample=True), perm a random permutation; mixed = lam * x + (1 - lam) * x[perm].
    Returns (mixed, labels_a, labels_b, lam, perm); the loss is lam*L(a) + (1-lam)*L(b)."""
    a, nchw, c, h, w, n, db = _batch_any(batch, layout)
    perm, lam, lam_arr = _perm_lam(n, rng, perm, lam, alpha, per_sample)
    if db is not None:
        o = _device_out(db, out)
        _C.mix_cuda(False, db.d.ptr, db.shape, nchw, DTYPE_CODES[db.d.dtype], perm, lam_arr,
                    _device.device_array(o).ptr, db.d.device, db.d.stream)
    else:
        o = _out(a, out)
        _C.mix_blend(a, nchw, perm, lam_arr, o, check_num_threads(num_threads))
    la, lb = _labels_any(labels, n, perm)
    return o, la, lb, lam, perm


def cutmix_box(h: int, w: int, lam: float, rng) -> tuple[int, int, int, int]:
    """PaddleClas's CutmixOperator._rand_bbox in image terms: a box of sqrt(1 - lam) of each side
    centred at a uniform pixel, clipped to the image; (x0, y0, x1, y1)."""
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = int(np.clip(cy - cut_h // 2, 0, h)), int(np.clip(cy + cut_h // 2, 0, h))
    x0, x1 = int(np.clip(cx - cut_w // 2, 0, w)), int(np.clip(cx + cut_w // 2, 0, w))
    return x0, y0, x1, y1


def cutmix(batch, labels=None, lam=None, *, alpha=0.2, rng=None, perm=None, box=None, per_sample=False,
           layout="NCHW", out=None, num_threads=None):
    """CutMix (PaddleClas CutmixOperator): one box for the batch (per sample with per_sample=True)
    pasted from x[perm]; lam is then corrected to the kept area, 1 - box_area / (H * W).
    box: (x0, y0, x1, y1), or (N, 4) per sample; drawn with `cutmix_box` when None.
    Returns (mixed, labels_a, labels_b, lam, perm, box)."""
    a, nchw, c, h, w, n, db = _batch_any(batch, layout)
    if box is None:
        perm, lam, lam_arr = _perm_lam(n, rng, perm, lam, alpha, per_sample)
        if per_sample:
            box = np.array([cutmix_box(h, w, float(l), rng) for l in lam_arr], np.int32)
        else:
            box = np.array(cutmix_box(h, w, float(lam_arr[0]), rng), np.int32)
    else:
        perm, _, _ = _perm_lam(n, rng, perm, 0.0 if lam is None else lam, alpha, per_sample)
    b = np.asarray(box)
    if b.shape == (4,):
        boxes = np.broadcast_to(b, (n, 4))
    elif b.shape == (n, 4):
        boxes = b
    else:
        raise ValueError(f"box must be (x0, y0, x1, y1) or shape ({n}, 4), got {b.shape}")
    boxes = np.ascontiguousarray(np.clip(boxes, 0, [w, h, w, h]).astype(np.int32))
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    lam_adj = 1.0 - area / float(h * w)
    if db is not None:
        o = _device_out(db, out)
        _C.mix_cuda(True, db.d.ptr, db.shape, nchw, DTYPE_CODES[db.d.dtype], perm, boxes,
                    _device.device_array(o).ptr, db.d.device, db.d.stream)
    else:
        o = _out(a, out)
        _C.mix_paste(a, nchw, perm, boxes, o, check_num_threads(num_threads))
    la, lb = _labels_any(labels, n, perm)
    return o, la, lb, (lam_adj if (per_sample or b.ndim == 2) else float(lam_adj[0])), perm, (boxes if b.ndim == 2 or per_sample else tuple(int(v) for v in boxes[0]))
