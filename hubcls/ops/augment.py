"""Augment primitives on uint8 HWC images, matching Pillow (ImageOps, ImageEnhance, Image.transform).

Every function takes a single HW/HWC image (returns an array), a list of images (returns a list)
or an NHWC uint8 batch (returns a batch), with the parameter as a scalar or one value per image.
Images are 1 (L) or 3 (RGB) channels. Affine matrices are Pillow's AFFINE ``data``: the inverse map
(a, b, c, d, e, f) sending output pixel centre (x+.5, y+.5) to input (a x + b y + c, d x + e y + f).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _C
from . import _device
from ._common import INTERPOLATIONS, as_array, check_image, check_num_threads

# The primitives are the core's enum (csrc/ops/augment_ops.h): one list, read here by name.
OPS = dict(_C.AugOp.__members__)
_AFFINE_INTERP = {k: INTERPOLATIONS[k] for k in ("nearest", "bilinear", "bicubic")}


def _images(images):
    """(list of HWC/HW arrays, how to return)."""
    if isinstance(images, (list, tuple)):
        return [_check(as_array(im, f"image {i}"), i) for i, im in enumerate(images)], "list"
    a = as_array(images, "images")
    if a.ndim == 4:
        if a.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {a.dtype}")
        return [_check(a[i], i) for i in range(a.shape[0])], "batch"
    return [_check(a, 0)], "single"


def _check(a, i):
    return check_image(a, i, channels=(1, 3))


def _params(value, n, name, width=1):
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0 or (width > 1 and v.shape == (width,)):
        v = np.broadcast_to(v.reshape(1, -1), (n, width))
    else:
        v = v.reshape(n, width) if v.size == n * width else None
        if v is None:
            raise ValueError(f"{name} must be one value (or {width}-vector) or one per image ({n})")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite")
    p = np.zeros((n, 6), np.float64)
    p[:, :width] = v
    return p


def _run_cuda(dev, op, param, width, name, out_shape, interp, fill):
    d0, items, kind = dev
    n = len(items)
    if n == 0:  # empty device batch
        return _device.device_empty(d0, (0,) + (tuple(out_shape) if out_shape else tuple(d0.shape[1:3])) + tuple(d0.shape[3:]),
                                    np.uint8)
    geoms = [(im.h, im.w, im.c, im.row_stride) for im in items]
    params = _params(param, n, name, width)
    oh_ow = [(out_shape if out_shape else g[:2]) for g in geoms]
    if kind == "batch":
        out = _device.device_empty(d0, (n,) + tuple(oh_ow[0]) + tuple(d0.shape[3:]), np.uint8)
        od = _device.device_array(out)
        outs_ptr = [od.ptr + i * od.strides[0] for i in range(n)]
        out_geoms = [(oh, ow, g[2], od.strides[1]) for (oh, ow), g in zip(oh_ow, geoms)]
    else:
        outs = [_device.device_empty(im.array, tuple(hw) + tuple(im.array.shape[2:]), np.uint8)
                for im, hw in zip(items, oh_ow)]
        ods = [_device.device_array(o) for o in outs]
        outs_ptr = [o.ptr for o in ods]
        out_geoms = [(hw[0], hw[1], g[2], hw[1] * g[2]) for hw, g in zip(oh_ow, geoms)]
        out = outs if kind == "list" else outs[0]
    f = _fill_bytes(fill, 3)
    _C.augment_cuda(OPS[op], [im.ptr for im in items], np.array(geoms, np.int64).reshape(n, 4), outs_ptr,
                    np.array(out_geoms, np.int64).reshape(n, 4), params, interp, f, d0.device, d0.stream)
    return out


def _fill_bytes(fill, c):
    f = np.asarray(fill, dtype=np.float64).reshape(-1)
    if f.size == 1:
        f = np.repeat(f, 3)
    if f.size < c or np.any(f < 0) or np.any(f > 255):
        raise ValueError(f"fill must be a value or one value per channel in [0, 255], got {fill!r}")
    return np.ascontiguousarray(f.astype(np.uint8))


def _run(op, images, param=0.0, *, width=1, name="param", out_shape=None, interp=_AFFINE_INTERP["nearest"], fill=0,
         num_threads=None):
    dev = _device.device_images(images, channels=(1, 3))
    if dev is not None:
        return _run_cuda(dev, op, param, width, name, out_shape, interp, fill)
    imgs, kind = _images(images)
    n = len(imgs)
    params = _params(param, n, name, width)
    if kind == "batch":
        if n == 0:  # an empty NHWC batch: nothing to do, keep the shape contract
            a = as_array(images, "images")
            return np.empty((0,) + (out_shape if out_shape else a.shape[1:3]) + a.shape[3:], np.uint8)
        shape = (n,) + (out_shape if out_shape else imgs[0].shape[:2]) + imgs[0].shape[2:]
        batch_out = np.empty(shape, np.uint8)
        outs = [batch_out[i] for i in range(n)]
    else:
        outs = [np.empty((out_shape if out_shape else im.shape[:2]) + im.shape[2:], np.uint8) for im in imgs]
    c = max((1 if im.ndim == 2 else im.shape[2]) for im in imgs) if imgs else 1
    _C.augment(OPS[op], imgs, outs, params, interp, _fill_bytes(fill, c), check_num_threads(num_threads))
    if kind == "batch":
        return batch_out
    return outs if kind == "list" else outs[0]


def invert(images, *, num_threads=None):
    """ImageOps.invert: 255 - x."""
    return _run("invert", images, num_threads=num_threads)


def posterize(images, bits, *, num_threads=None):
    """ImageOps.posterize: keep the top `bits` (1..8) bits of each channel."""
    b = np.asarray(bits)
    if np.any((b < 1) | (b > 8)) or np.any(b != np.round(b)):
        raise ValueError(f"bits must be integers in [1, 8], got {bits!r}")
    return _run("posterize", images, bits, name="bits", num_threads=num_threads)


def solarize(images, threshold=128, *, num_threads=None):
    """ImageOps.solarize: invert every value >= threshold."""
    return _run("solarize", images, threshold, name="threshold", num_threads=num_threads)


def solarize_add(images, add, *, num_threads=None):
    """timm's RandAugment SolarizeAdd (``Image.point`` with its table): add the integer `add` to
    every value below 128, clipped to [0, 255]; values from 128 up are kept."""
    a = np.asarray(add)
    if np.any(a != np.round(a)) or np.any(np.abs(a) > 255):
        raise ValueError(f"add must be integers in [-255, 255], got {add!r}")
    return _run("solarize_add", images, add, name="add", num_threads=num_threads)


def equalize(images, *, num_threads=None):
    """ImageOps.equalize (per channel histogram equalisation)."""
    return _run("equalize", images, num_threads=num_threads)


def autocontrast(images, *, num_threads=None):
    """ImageOps.autocontrast(cutoff=0): stretch each channel's [min, max] to [0, 255]."""
    return _run("autocontrast", images, num_threads=num_threads)


def brightness(images, factor, *, num_threads=None):
    """ImageEnhance.Brightness(img).enhance(factor)."""
    return _run("brightness", images, factor, name="factor", num_threads=num_threads)


def contrast(images, factor, *, num_threads=None):
    """ImageEnhance.Contrast(img).enhance(factor): blend with the mean grey level."""
    return _run("contrast", images, factor, name="factor", num_threads=num_threads)


def color(images, factor, *, num_threads=None):
    """ImageEnhance.Color(img).enhance(factor): blend with the greyscale image (saturation)."""
    return _run("color", images, factor, name="factor", num_threads=num_threads)


def sharpness(images, factor, *, num_threads=None):
    """ImageEnhance.Sharpness(img).enhance(factor): blend with the SMOOTH-filtered image."""
    return _run("sharpness", images, factor, name="factor", num_threads=num_threads)


def affine(images, matrix, *, interpolation="nearest", fill=0, size=None, num_threads=None):
    """Image.transform(size, Image.AFFINE, matrix, resample, fillcolor=fill). matrix: 6 numbers or
    one 6-vector per image; size (h, w) defaults to the input size (all images must share it for
    a batch)."""
    if interpolation not in _AFFINE_INTERP:
        raise ValueError(f"interpolation must be one of {sorted(_AFFINE_INTERP)}, got {interpolation!r}")
    out_shape = None if size is None else (int(size[0]), int(size[1]))
    if out_shape is not None and min(out_shape) <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return _run("affine", images, matrix, width=6, name="matrix", out_shape=out_shape,
                interp=_AFFINE_INTERP[interpolation], fill=fill, num_threads=num_threads)


# --------------------------------------------------------------------------- matrices (Pillow's)


def rotate_matrix(h: int, w: int, angle: float, center=None, translate=None) -> tuple:
    """The AFFINE data Image.rotate(angle, expand=False) uses (counter-clockwise degrees)."""
    angle = angle % 360.0
    cx, cy = (w / 2.0, h / 2.0) if center is None else center
    tx, ty = (0, 0) if translate is None else translate
    rad = -math.radians(angle)
    m = [round(math.cos(rad), 15), round(math.sin(rad), 15), 0.0,
         round(-math.sin(rad), 15), round(math.cos(rad), 15), 0.0]
    m[2] = m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
    m[5] = m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
    return tuple(m)


def shear_x_matrix(m: float) -> tuple:
    return (1.0, m, 0.0, 0.0, 1.0, 0.0)


def shear_y_matrix(m: float) -> tuple:
    return (1.0, 0.0, 0.0, m, 1.0, 0.0)


def translate_x_matrix(pixels: float) -> tuple:
    return (1.0, 0.0, pixels, 0.0, 1.0, 0.0)


def translate_y_matrix(pixels: float) -> tuple:
    return (1.0, 0.0, 0.0, 0.0, 1.0, pixels)


def rotate(images, angle, *, interpolation="nearest", fill=0, num_threads=None):
    """Image.rotate(angle, resample, fillcolor=fill) without expand; angle per image allowed."""
    dev = _device.device_images(images, channels=(1, 3))
    if dev is not None:
        shapes, kind = [(im.h, im.w) for im in dev[1]], dev[2]
        src = images
    else:
        imgs, kind = _images(images)
        shapes = [im.shape for im in imgs]
        src = images if kind == "batch" else (imgs if kind == "list" else imgs[0])
    ang = np.broadcast_to(np.asarray(angle, np.float64), (len(shapes),))
    mats = [rotate_matrix(s[0], s[1], float(a)) for s, a in zip(shapes, ang)]
    return affine(src, mats if kind != "single" else mats[0], interpolation=interpolation, fill=fill,
                  num_threads=num_threads)
