"""Erase ops on image batches, in place: cutout, random_erasing, hide_and_seek, gridmask.

The kernels only paint; what to paint is drawn in Python (``hubcls.ops.policies`` holds
PaddleClas's parameter draws). Rectangles are (x0, y0, x1, y1) half-open pixel ranges, clipped to
the image. All ops take float32 / float16 / uint8 batches in NCHW or NHWC and return the batch
(a NumPy view of it when a DLPack tensor was passed: the tensor itself is modified).
"""
from __future__ import annotations

import numpy as np

from .. import _C
from . import _device
from ._common import DTYPE_CODES, as_array, check_layout, check_num_threads


class _DeviceBatch:
    """A CUDA batch seen through its DeviceArray, with the (array, nchw, C, H, W) of batch_array."""

    def __init__(self, d, layout):
        self.d = d
        self.nchw = check_layout(layout)
        if len(d.shape) != 4:
            raise ValueError(f"batch must be 4-d ({layout}), got shape {d.shape}")
        if d.dtype not in DTYPE_CODES:
            raise TypeError(f"batch must be float32, float16 or uint8, got {d.dtype}")
        if not d.c_contiguous:
            raise ValueError("batch must be C-contiguous (the op works in place)")
        self.shape = d.shape
        self.c, self.h, self.w = (d.shape[1], d.shape[2], d.shape[3]) if self.nchw else (d.shape[3], d.shape[1], d.shape[2])


def device_batch(batch, layout):
    d = _device.device_array(batch)
    return None if d is None else _DeviceBatch(d, layout)


def batch_array(batch, layout: str, *, writeable: bool = True) -> tuple[np.ndarray, bool, int, int, int]:
    """(array, nchw, C, H, W) of a 4-d batch; validates dtype, contiguity, writeability."""
    a = as_array(batch, "batch")
    nchw = check_layout(layout)
    if a.ndim != 4:
        raise ValueError(f"batch must be 4-d ({layout}), got shape {a.shape}")
    if a.dtype not in (np.float32, np.float16, np.uint8):
        raise TypeError(f"batch must be float32, float16 or uint8, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError("batch must be C-contiguous (the op works in place)")
    if writeable and not a.flags.writeable:
        raise ValueError("batch must be writeable (the op works in place)")
    c, h, w = (a.shape[1], a.shape[2], a.shape[3]) if nchw else (a.shape[3], a.shape[1], a.shape[2])
    if min(c, h, w) <= 0:
        raise ValueError(f"batch has an empty dimension: {a.shape}")
    return a, nchw, c, h, w


def _channel_values(value, c: int, what: str) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(c, float(v))
    if v.shape != (c,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{what} must be a finite scalar or {c} per-channel values, got {value!r}")
    return v.astype(np.float32)


def _rect_array(r, i: int) -> np.ndarray:
    r = np.asarray(r)
    if r.size == 0:
        return np.zeros((0, 4), np.int32)
    if r.ndim == 1 and r.shape == (4,):
        r = r[None]
    if r.ndim != 2 or r.shape[1] != 4:
        raise ValueError(f"rects of sample {i} must have shape (k, 4) (x0, y0, x1, y1), got {r.shape}")
    if not np.issubdtype(r.dtype, np.integer):
        if not np.all(np.isfinite(r)) or np.any(r != np.round(r)):
            raise ValueError(f"rects of sample {i} must be integer pixel coordinates")
    if np.any(np.abs(r) > 2**30):
        raise ValueError(f"rects of sample {i} are out of range")
    return r.astype(np.int32)


def _pack_rects(rects_per_sample, n: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(rects_per_sample, np.ndarray) and rects_per_sample.ndim == 3:
        rects_per_sample = list(rects_per_sample)
    if len(rects_per_sample) != n:
        raise ValueError(f"need one entry of rects per sample ({n}), got {len(rects_per_sample)}")
    rs = [_rect_array(r, i) for i, r in enumerate(rects_per_sample)]
    sample = np.concatenate([np.full(len(r), i, np.int32) for i, r in enumerate(rs)]) if rs else np.zeros(0, np.int32)
    rects = np.concatenate(rs) if rs else np.zeros((0, 4), np.int32)
    return np.ascontiguousarray(sample), np.ascontiguousarray(rects.reshape(-1, 4))


def fill_rects(batch, rects_per_sample, values_per_sample=None, *, layout="NCHW", value=0, num_threads=None):
    """Paint rectangles: values_per_sample[i][k] is a scalar, C per-channel values, or an (h, w, C) /
    (h, w) array of per-pixel values for rect k of sample i (h, w its unclipped size). Without
    values_per_sample every rect gets `value`."""
    db = device_batch(batch, layout)
    if db is not None:
        a, nchw, c, h, w = db, db.nchw, db.c, db.h, db.w
    else:
        a, nchw, c, h, w = batch_array(batch, layout)
    n = a.shape[0]
    sample, rects = _pack_rects(rects_per_sample, n)
    r = len(rects)
    const = np.empty((r, c), np.float32)
    pix_off = np.full(r, -1, np.int64)
    chunks, total = [], 0
    if values_per_sample is None:
        const[:] = _channel_values(value, c, "value")
    else:
        if len(values_per_sample) != n:
            raise ValueError(f"need one entry of values per sample ({n}), got {len(values_per_sample)}")
        k = 0
        for i, vals in enumerate(values_per_sample):
            cnt = int(np.sum(sample == i))
            if len(vals) != cnt:
                raise ValueError(f"sample {i} has {cnt} rects but {len(vals)} values")
            for v in vals:
                va = np.asarray(v, dtype=np.float32)
                x0, y0, x1, y1 = rects[k]
                if va.ndim >= 2:
                    rh, rw = max(int(y1 - y0), 0), max(int(x1 - x0), 0)
                    if va.ndim == 2:
                        va = np.repeat(va[:, :, None], c, axis=2)
                    if va.shape != (rh, rw, c):
                        raise ValueError(f"per-pixel values of rect {k} must have shape ({rh}, {rw}, {c}), got {va.shape}")
                    if not np.all(np.isfinite(va)):
                        raise ValueError(f"per-pixel values of rect {k} contain NaN or infinity")
                    pix_off[k] = total
                    chunks.append(va.ravel())
                    total += va.size
                    const[k] = 0
                else:
                    const[k] = _channel_values(va, c, f"value of rect {k}")
                k += 1
    pixels = np.concatenate(chunks) if chunks else np.zeros(1, np.float32)
    if db is not None:
        _C.fill_rects_cuda(db.d.ptr, db.shape, nchw, DTYPE_CODES[db.d.dtype], sample, rects, const, pix_off, pixels,
                           db.d.device, db.d.stream)
        return batch
    _C.fill_rects(a, nchw, sample, rects, const, pix_off, pixels, check_num_threads(num_threads))
    return a


def cutout(batch, boxes_per_sample, *, layout="NCHW", value=0, num_threads=None):
    """Cutout: fill each sample's boxes (k_i x (x0, y0, x1, y1)) with `value` (scalar or per channel)."""
    return fill_rects(batch, boxes_per_sample, None, layout=layout, value=value, num_threads=num_threads)


def random_erasing(batch, rects, values, *, layout="NCHW", num_threads=None):
    """RandomErasing: rects[i] is sample i's (k, 4) rects (usually 0 or 1), values[i] a list with one
    fill per rect: a constant (scalar or per channel) or per-pixel values already drawn, shape
    (h, w, C). ``policies.draw_random_erasing_params`` draws both the PaddleClas way."""
    return fill_rects(batch, rects, values, layout=layout, num_threads=num_threads)


def grid_mask_rects(grid_size: int, mask: np.ndarray) -> np.ndarray:
    """Rects of the hidden cells of a (ceil(H/g), ceil(W/g)) boolean grid mask of cell size g."""
    if grid_size is None or grid_size == 0 or mask is None:
        return np.zeros((0, 4), np.int32)
    g = int(grid_size)
    if g < 0:
        raise ValueError(f"grid size must be >= 0, got {grid_size}")
    ys, xs = np.nonzero(np.asarray(mask, dtype=bool))
    return np.stack([xs * g, ys * g, xs * g + g, ys * g + g], axis=1).astype(np.int32)


def hide_and_seek(batch, grid_masks, *, layout="NCHW", value=0, num_threads=None):
    """HideAndSeek: grid_masks[i] = (grid_size, hidden) with hidden a boolean (ceil(H/g), ceil(W/g))
    array (True = the g x g cell is set to `value`), or (0, None) to leave sample i alone."""
    db = device_batch(batch, layout)
    if db is not None:
        a, nchw, c, h, w = batch, db.nchw, db.c, db.h, db.w
        n = db.shape[0]
    else:
        a, nchw, c, h, w = batch_array(batch, layout)
        n = a.shape[0]
    if len(grid_masks) != n:
        raise ValueError(f"need one grid mask per sample ({n}), got {len(grid_masks)}")
    rects = []
    for i, gm in enumerate(grid_masks):
        g, m = gm
        if g and m is not None:
            m = np.asarray(m)
            need = (-(-h // int(g)), -(-w // int(g)))
            if m.shape != need:
                raise ValueError(f"grid mask {i} must have shape {need} for grid size {g}, got {m.shape}")
        rects.append(grid_mask_rects(g, m))
    return fill_rects(a, rects, None, layout=layout, value=value, num_threads=num_threads)


def gridmask(batch, masks, *, layout="NCHW", value=0, num_threads=None):
    """GridMask: masks (N, H, W), nonzero = keep, zero = set to `value` (PaddleClas multiplies by
    the 0/1 mask, i.e. value 0). ``policies.draw_gridmask_masks`` draws PaddleClas's masks."""
    db = device_batch(batch, layout)
    if db is not None:
        nchw, c, h, w, n = db.nchw, db.c, db.h, db.w, db.shape[0]
    else:
        a, nchw, c, h, w = batch_array(batch, layout)
        n = a.shape[0]
    m = as_array(masks, "masks (host array)")
    if m.shape != (n, h, w):
        raise ValueError(f"masks must have shape {(n, h, w)}, got {m.shape}")
    m = np.ascontiguousarray(m != 0, dtype=np.uint8) if m.dtype != np.uint8 else np.ascontiguousarray(m)
    if db is not None:
        _C.mask_fill_cuda(db.d.ptr, db.shape, nchw, DTYPE_CODES[db.d.dtype], m, _channel_values(value, c, "value"),
                          db.d.device, db.d.stream)
        return batch
    _C.mask_fill(a, nchw, m, _channel_values(value, c, "value"), check_num_threads(num_threads))
    return a
