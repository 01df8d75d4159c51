"""resize_crop_normalize: decode output -> network input in one fused kernel call."""
from __future__ import annotations

import math

import numpy as np

from .. import _C
from . import _device
from ._common import (
    INTERPOLATIONS,
    as_array,
    check_dtype,
    check_image,
    check_layout,
    check_num_threads,
    size_hw,
    triple,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _image_list(images) -> list[np.ndarray]:
    if isinstance(images, (list, tuple)):
        out = []
        for i, im in enumerate(images):
            a = as_array(im, f"image {i}")
            out.append(check_image(a, i))
        return out
    a = as_array(images, "images")
    if a.ndim != 4:
        raise ValueError(f"images must be a list of HW/HWC arrays or an NHWC batch, got an array of shape {a.shape}")
    if a.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {a.dtype}")
    return [check_image(a[i], i) for i in range(a.shape[0])]


def _boxes(boxes, images: list[np.ndarray]) -> np.ndarray:
    """(n, 4) float64 boxes. Their values (finite, positive size, inside the image) are checked by
    the core, CPU and CUDA alike, with the same messages (csrc check_box)."""
    n = len(images)
    if boxes is None:
        return np.array([[0.0, 0.0, im.shape[1], im.shape[0]] for im in images], dtype=np.float64).reshape(n, 4)
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim == 1 and b.shape == (4,) and n == 1:
        b = b[None]
    if b.shape != (n, 4):
        raise ValueError(f"boxes must have shape ({n}, 4) (one (x, y, w, h) per image), got {b.shape}")
    return b if b.flags.c_contiguous else np.ascontiguousarray(b)


def unpack_images(buffer, offsets, shapes) -> list:
    """Views of variable-size images packed back to back in one flat uint8 buffer (host or device:
    NumPy, torch, CuPy — sliced with the buffer's own indexing, no copies). offsets[i] is the
    element offset of image i, shapes[i] its (h, w) or (h, w, c). Passing the result to
    resize_crop_normalize processes the whole packed batch in one kernel launch."""
    n = len(offsets)
    if len(shapes) != n:
        raise ValueError(f"need one shape per offset ({n}), got {len(shapes)}")
    total = int(buffer.shape[0]) if len(buffer.shape) == 1 else None
    if total is None:
        raise ValueError(f"buffer must be 1-d, got shape {tuple(buffer.shape)}")
    views = []
    for i, (off, shp) in enumerate(zip(offsets, shapes)):
        shp = tuple(int(v) for v in shp)
        size = int(np.prod(shp))
        off = int(off)
        if off < 0 or off + size > total or size == 0:
            raise ValueError(f"image {i} (offset {off}, shape {shp}) does not fit in the {total}-byte buffer")
        views.append(buffer[off:off + size].reshape(shp))
    return views


def _check_output_args(interpolation, layout, dtype, channel_order, mean, std):
    """Validation shared by the CPU and CUDA paths -> (nchw, dtype code, numpy dtype, mean, std)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}")
    nchw = check_layout(layout)
    code, np_dtype = check_dtype(dtype)
    if channel_order not in ("RGB", "BGR"):
        raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
    m = triple(mean, "mean") or (0.0, 0.0, 0.0)
    s = triple(std, "std") or (1.0, 1.0, 1.0)
    if any(v == 0 for v in s):
        raise ValueError("std must not contain zeros")
    return nchw, code, np_dtype, m, s


def resize_crop_normalize(images, boxes, size, *, flip=None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                          scale=1 / 255, interpolation="bilinear", antialias=True, layout="NCHW",
                          dtype="float32", channel_order="RGB", out=None, num_threads=None) -> np.ndarray:
    """Crop `boxes` out of uint8 `images`, resample each to `size`, optionally flip it horizontally,
    and write (pixel * scale - mean) / std as an (N, 3, H, W) or (N, H, W, 3) batch.

    images: list of uint8 HW / HWC arrays (1, 3 or 4 channels, any sizes; gray is replicated to
    3 channels, alpha dropped) or a uint8 NHWC batch; NumPy arrays or CPU DLPack tensors.
    boxes: (N, 4) (x, y, w, h) in source pixels, fractional allowed (None: the whole image).
    interpolation: "nearest" | "bilinear" | "bicubic" | "area". antialias=False samples like
    cv2.resize (INTER_*), antialias=True like Pillow's Image.resize (filter widened on
    downscaling). PaddleClas's cv2 eval path is antialias=False with the box of
    ``resize_short_center_crop_box``. channel_order="BGR": the input is BGR, the output RGB.
    dtype "uint8" skips normalisation and returns the resampled pixels (rounded).
    """
    dev = _device_images(images)
    if dev is not None:
        return _resize_crop_normalize_cuda(dev, boxes, size, flip=flip, mean=mean, std=std, scale=scale,
                                           interpolation=interpolation, antialias=antialias, layout=layout,
                                           dtype=dtype, channel_order=channel_order, out=out)
    imgs = _image_list(images)
    n = len(imgs)
    oh, ow = size_hw(size)
    b = _boxes(boxes, imgs)
    if flip is None:
        fl = None
    else:
        fl = np.asarray(flip)
        if fl.ndim == 0:
            fl = np.full(n, bool(fl))
        if fl.shape != (n,):
            raise ValueError(f"flip must have one entry per image ({n}), got shape {fl.shape}")
        fl = np.ascontiguousarray(fl.astype(np.uint8))
    nchw, code, np_dtype, m, s = _check_output_args(interpolation, layout, dtype, channel_order, mean, std)
    if not (isinstance(scale, (int, float, np.floating)) and math.isfinite(scale)):
        raise ValueError(f"scale must be a finite number, got {scale!r}")
    shape = (n, 3, oh, ow) if nchw else (n, oh, ow, 3)
    if out is None:
        out = np.empty(shape, dtype=np_dtype)
    else:
        out = as_array(out, "out")
        if out.shape != shape or out.dtype != np_dtype:
            raise ValueError(f"out must be a {np.dtype(np_dtype).name} array of shape {shape}, got {out.dtype} {out.shape}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be C-contiguous and writeable")
    _C.resize_crop_normalize(imgs, b, fl, out, oh, ow, m, s, float(scale), INTERPOLATIONS[interpolation],
                             bool(antialias), nchw, code, channel_order == "BGR", check_num_threads(num_threads))
    return out


# ----------------------------------------------------------------------------- CUDA path


class _Geom:
    """Shape-only stand-in for a device image (the host validators only read .shape)."""

    def __init__(self, shape):
        self.shape = shape


def _device_images(images):
    """None for host inputs; else (DeviceArray of the first input, [DeviceImage])."""
    dev = _device.device_images(images, channels=(1, 3, 4))
    if dev is None:
        return None
    d0, items, kind = dev
    if kind == "single":
        raise ValueError(f"images must be a list of HW/HWC arrays or an NHWC batch, got shape {d0.shape}")
    return d0, items


def _resize_crop_normalize_cuda(dev, boxes, size, *, flip, mean, std, scale, interpolation, antialias, layout, dtype,
                                channel_order, out):
    d0, items = dev
    n = len(items)
    oh, ow = size_hw(size)
    geoms = np.array([[im.h, im.w, im.c, im.row_stride] for im in items], dtype=np.int64).reshape(n, 4)
    b = _boxes(boxes, [_Geom((im.h, im.w)) for im in items])
    fl = None if flip is None else np.ascontiguousarray(np.broadcast_to(np.asarray(flip), (n,)).astype(np.uint8))
    nchw, code, np_dtype, m, s = _check_output_args(interpolation, layout, dtype, channel_order, mean, std)
    shape = (n, 3, oh, ow) if nchw else (n, oh, ow, 3)
    if out is None:
        out = _device.device_empty(d0, shape, np_dtype)
    o = _device.check_out(out, shape, np_dtype, d0.device)
    _C.resize_crop_normalize_cuda([im.ptr for im in items], geoms, b, fl, o.ptr, oh, ow, m, s, float(scale),
                                  INTERPOLATIONS[interpolation], bool(antialias), nchw, code,
                                  channel_order == "BGR", d0.device, d0.stream)
    return out
