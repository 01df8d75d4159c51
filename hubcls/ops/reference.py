"""NumPy / Pillow / OpenCV reference implementations of the core's kernels.

These are deliberately simple (dense matrices, per-pixel loops in NumPy) and independent of the
C++ code; the tests compare every kernel against them and, where a library defines the
semantics (cv2.resize, Pillow's ImageOps / ImageEnhance), against that library too.
"""
from __future__ import annotations

import math

import numpy as np

# ----------------------------------------------------------------------------- resampling


def _cubic(x, a):
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def resample_matrix(in_size: int, box0: float, box_len: float, out_size: int, interpolation: str,
                    antialias: bool, area_upscale: bool = False) -> np.ndarray:
    """Dense (out_size, in_size) matrix M with out = M @ in along one axis (see csrc/ops/resample.h
    for the two conventions)."""
    scale = box_len / out_size if antialias else 1.0 / (out_size / box_len)  # cv2's inverse scale
    d = np.arange(out_size, dtype=np.float64)
    idx = np.arange(in_size)
    m = np.zeros((out_size, in_size))
    if interpolation == "nearest":
        if antialias:  # Pillow accumulates the position: xo = x0 + a/2; xo += a per pixel
            a0 = ((box0 + box_len) - box0) / out_size
            src = np.empty(out_size)
            xo = box0 + a0 * 0.5
            for i in range(out_size):
                src[i] = xo
                xo += a0
        else:
            src = box0 + d * scale
        m[np.arange(out_size), np.clip(np.floor(src).astype(int), 0, in_size - 1)] = 1.0
        return m
    if not antialias:
        if interpolation == "area" and area_upscale:  # cv2's INTER_AREA when enlarging
            sx = np.floor(box0 + d * scale)
            fx = ((d + 1) - (sx + 1 - box0) * (out_size / box_len)).astype(np.float32).astype(np.float64)
            fx = np.where(fx <= 0, 0.0, fx - np.floor(fx))
            for cols, w in ((sx, 1 - fx), (sx + 1, fx)):
                np.add.at(m, (np.arange(out_size), np.clip(cols, 0, in_size - 1).astype(int)), w)
            return m
        if interpolation == "area":
            a = (box0 + d * scale)[:, None]
            b = a + scale
            lo = np.maximum(a, idx[None, :])
            hi = np.minimum(b, idx[None, :] + 1)
            ov = np.clip(hi - lo, 0, None)
            # overlap outside [0, in) is folded onto the edge pixels (replicate)
            left = np.clip(np.minimum(b, 0) - a, 0, None)[:, 0]
            right = np.clip(b - np.maximum(a, in_size), 0, None)[:, 0]
            ov[:, 0] += left
            ov[:, -1] += right
            return ov / scale
        fx = (box0 + (d + 0.5) * scale - 0.5).astype(np.float32).astype(np.float64)
        sx = np.floor(fx)
        t = fx - sx
        taps = [0, 1] if interpolation == "bilinear" else [-1, 0, 1, 2]
        for k in taps:
            w = (1 - t if k == 0 else t) if interpolation == "bilinear" else _cubic(t - k, -0.75)
            cols = np.clip(sx + k, 0, in_size - 1).astype(int)
            np.add.at(m, (np.arange(out_size), cols), w)
        return m
    support = {"area": 0.5, "bilinear": 1.0, "bicubic": 2.0}[interpolation]
    fs = max(scale, 1.0)
    center = box0 + (d + 0.5) * scale
    x = (idx[None, :] - center[:, None] + 0.5) / fs
    if interpolation == "area":
        w = ((x > -0.5) & (x <= 0.5)).astype(np.float64)
    elif interpolation == "bilinear":
        w = np.clip(1 - np.abs(x), 0, None)
    else:
        w = _cubic(x, -0.5)
    # Pillow's window: [int(center - support + 0.5), int(center + support + 0.5)) clipped to the image
    xmin = np.maximum((center - support * fs + 0.5).astype(int), 0)
    xmax = np.minimum((center + support * fs + 0.5).astype(int), in_size)
    inside = (idx[None, :] >= xmin[:, None]) & (idx[None, :] < xmax[:, None])
    w = np.where(inside, w, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def resize_crop_normalize(images, boxes, size, *, flip=None, mean=(0.485, 0.456, 0.406),
                          std=(0.229, 0.224, 0.225), scale=1 / 255, interpolation="bilinear",
                          antialias=True, layout="NCHW", dtype="float32", channel_order="RGB") -> np.ndarray:
    """Reference for hubcls.ops.resize_crop_normalize (float64 dense matrices)."""
    oh, ow = (size, size) if isinstance(size, int) else size
    outs = []
    for i, im in enumerate(images):
        im = np.asarray(im)
        if im.ndim == 2:
            im = im[:, :, None]
        im = im[:, :, :3].astype(np.float64)
        if im.shape[2] == 1:
            im = np.repeat(im, 3, axis=2)
        if channel_order == "BGR":
            im = im[:, :, ::-1]
        x, y, w, h = (float(v) for v in boxes[i])
        up = (not antialias) and interpolation == "area" and (w < ow or h < oh)
        my = resample_matrix(im.shape[0], y, h, oh, interpolation, antialias, up)
        mx = resample_matrix(im.shape[1], x, w, ow, interpolation, antialias, up)
        r = np.einsum("oh,hwc,pw->opc", my, im, mx)
        if flip is not None and flip[i]:
            r = r[:, ::-1]
        outs.append(r)
    r = np.stack(outs)
    if dtype == "uint8":
        r = np.clip(np.floor(r + 0.5), 0, 255).astype(np.uint8)
    else:
        m = np.zeros(3) if mean is None else np.asarray(mean, np.float64)
        s = np.ones(3) if std is None else np.asarray(std, np.float64)
        r = ((r * scale - m) / s).astype(dtype)
    if layout == "NCHW":
        r = np.ascontiguousarray(r.transpose(0, 3, 1, 2))
    return r


def paddleclas_eval(img_bgr: np.ndarray, resize_short=256, crop=224, mean=(0.485, 0.456, 0.406),
                    std=(0.229, 0.224, 0.225)) -> np.ndarray:
    """PaddleClas's eval transform on an RGB uint8 image: ResizeImage(resize_short) with cv2.resize
    (INTER_LINEAR), CropImage(crop) centre crop, NormalizeImage(1/255, mean, std), ToCHWImage."""
    import cv2

    h, w = img_bgr.shape[:2]
    percent = float(resize_short) / min(w, h)
    nw, nh = int(round(w * percent)), int(round(h * percent))
    img = cv2.resize(img_bgr, (nw, nh))
    ws, hs = (nw - crop) // 2, (nh - crop) // 2
    img = img[hs:hs + crop, ws:ws + crop]
    img = (img.astype(np.float32) * np.float32(1 / 255) - np.float32(mean)) / np.float32(std)
    return img.transpose(2, 0, 1)


# ----------------------------------------------------------------------------- erase / mix


def _to_nhwc(batch, layout):
    return batch.transpose(0, 2, 3, 1) if layout == "NCHW" else batch


def _cast_like(v, dtype):
    v = np.asarray(v, np.float64)
    if dtype == np.uint8:
        return np.clip(np.floor(v + 0.5), 0, 255).astype(np.uint8)
    return v.astype(dtype)


def fill_rects(batch, rects_per_sample, values_per_sample=None, *, layout="NCHW", value=0):
    """Reference of erase.fill_rects on a copy (NumPy slicing)."""
    out = batch.copy()
    v = _to_nhwc(out, layout)  # a view: writes land in `out`
    c = v.shape[3]
    for i, rects in enumerate(rects_per_sample):
        for k, (x0, y0, x1, y1) in enumerate(np.asarray(rects).reshape(-1, 4)):
            fill = value if values_per_sample is None else values_per_sample[i][k]
            fill = np.asarray(fill, np.float64)
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x1, v.shape[2]), min(y1, v.shape[1])
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            if fill.ndim >= 2:
                if fill.ndim == 2:
                    fill = np.repeat(fill[:, :, None], c, 2)
                fill = fill[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            v[i, cy0:cy1, cx0:cx1, :] = _cast_like(np.broadcast_to(fill, (cy1 - cy0, cx1 - cx0, c)), out.dtype)
    return out


def gridmask(batch, masks, *, layout="NCHW", value=0):
    out = batch.copy()
    v = _to_nhwc(out, layout)
    c = v.shape[3]
    fill = _cast_like(np.broadcast_to(np.asarray(value, np.float64), (c,)), out.dtype)
    for i in range(out.shape[0]):
        v[i][np.asarray(masks[i]) == 0] = fill
    return out


def mixup(batch, perm, lam):
    lam = np.broadcast_to(np.asarray(lam, np.float64), (batch.shape[0],)).reshape(-1, 1, 1, 1)
    mixed = lam * batch.astype(np.float64) + (1 - lam) * batch[perm].astype(np.float64)
    return _cast_like(mixed, batch.dtype) if batch.dtype == np.uint8 else mixed.astype(batch.dtype)


def cutmix(batch, perm, boxes, *, layout="NCHW"):
    out = batch.copy()
    v = _to_nhwc(out, layout)
    src = _to_nhwc(batch, layout)
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes).reshape(-1, 4)):
        v[i, y0:y1, x0:x1] = src[perm[i], y0:y1, x0:x1]
    return out


# ----------------------------------------------------------------------------- JPEG decode

# EXIF orientation -> (axes swapped, stored x reversed, stored y reversed) of the displayed image
_ORIENTATIONS = {1: (0, 0, 0), 2: (0, 1, 0), 3: (0, 1, 1), 4: (0, 0, 1), 5: (1, 0, 0), 6: (1, 0, 1), 7: (1, 1, 1),
                 8: (1, 1, 0)}


def jpeg_decode_resize(data: bytes, clip, box, size, scale_denom: int, **kw) -> np.ndarray:
    """Reference for hubcls.ops.jpeg_decode_resize of one JPEG at DCT scale 1/``scale_denom``:
    OpenCV decodes the whole image at that scale (IMREAD_REDUCED_COLOR_d, EXIF orientation
    applied); the displayed clip/box map to it as (x + pad) / d, pad = ceil(W/d)*d - W on an axis the
    orientation reverses (the partial last block lands at the displayed start), 0 otherwise; then
    :func:`resize_crop_normalize` on that view. ``kw``: resize_crop_normalize's output arguments."""
    import io

    import cv2
    from PIL import Image

    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}
    d = int(scale_denom)
    img = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), flags[d]), cv2.COLOR_BGR2RGB)
    pil = Image.open(io.BytesIO(data))
    swap, rx, ry = _ORIENTATIONS.get(pil.getexif().get(0x0112, 1), (0, 0, 0))
    w, h = pil.size[::-1] if swap else pil.size  # displayed, full scale
    hs, ws = img.shape[:2]
    padx = ws * d - w if (ry if swap else rx) else 0
    pady = hs * d - h if (rx if swap else ry) else 0
    cx, cy, cw, ch = (int(v) for v in clip)
    x0, y0 = math.floor((cx + padx) / d), math.floor((cy + pady) / d)
    x1, y1 = min(math.ceil((cx + cw + padx) / d), ws), min(math.ceil((cy + ch + pady) / d), hs)
    bx, by, bw, bh = (float(v) for v in box)
    sbx = ((cx - x0 * d) + padx + bx) / d
    sby = ((cy - y0 * d) + pady + by) / d
    sbw = min(bw / d, (x1 - x0) - max(sbx, 0.0))
    sbh = min(bh / d, (y1 - y0) - max(sby, 0.0))
    return resize_crop_normalize([img[y0:y1, x0:x1]], [(max(sbx, 0.0), max(sby, 0.0), sbw, sbh)], size, **kw)[0]
