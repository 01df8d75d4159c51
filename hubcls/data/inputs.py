"""Turn whatever a user hands to a prediction (``hub.Module.predict``, ``Predictor``, ``hubcls serve``)
into uint8 HxWx3 RGB arrays: the decode step of the one prediction pipeline (hubcls.deploy.pipeline).

Accepted inputs (one image each):

* ``str`` / ``os.PathLike``: a file path, decoded by ``hubcls.data.read_image``;
* ``bytes`` / ``bytearray`` / ``memoryview``: encoded image bytes (JPEG, PNG, ...);
* a binary file object (anything with ``read()``);
* a PIL image (converted to RGB);
* a NumPy array: uint8, HxWx3 (BGR by default, like PaddleHub / ``cv2.imread``; pass
  ``channel_order="RGB"`` for RGB arrays), HxWx4 (alpha dropped) or HxW gray.

Every failure is an ``ImageDecodeError(source, reason)``, so a caller can turn it into a
per-image error without catching anything broader.
"""
from __future__ import annotations

import base64
import binascii
import io
import os
from typing import Any

import numpy as np

from ..errors import ImageDecodeError

CHANNEL_ORDERS = ("BGR", "RGB")


def describe(image: Any, index: int | None = None) -> str:
    """Short human name of an input, for error messages."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        name = f"<bytes len={len(image)}>"
    elif isinstance(image, np.ndarray):
        name = f"<ndarray shape={image.shape} dtype={image.dtype}>"
    else:
        name = f"<{type(image).__name__}>"
    return name if index is None else f"image #{index} {name}"


def _read_image(src, max_pixels: int | None = None):
    # the robust decoder: EXIF orientation, 16-bit, palette, CMYK, bomb limit, ...
    from .decode import read_image

    return read_image(src, max_pixels=max_pixels)


def from_array(arr: np.ndarray, channel_order: str = "BGR", source: str = "<ndarray>") -> np.ndarray:
    """A uint8 HxW / HxWx1 / HxWx3 / HxWx4 array (BGR unless ``channel_order="RGB"``) -> contiguous
    uint8 HxWx3 RGB; anything else is an ImageDecodeError naming ``source``."""
    if not isinstance(arr, np.ndarray):
        raise ImageDecodeError(source, f"expected a NumPy array, got {type(arr).__name__}")
    if arr.dtype != np.uint8:
        raise ImageDecodeError(source, f"expected a uint8 array (0-255), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[:, :, :3]
        if channel_order == "BGR":
            arr = arr[:, :, ::-1]
    else:
        raise ImageDecodeError(source, f"expected an HxW, HxWx3 or HxWx4 array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageDecodeError(source, f"empty image (shape {arr.shape})")
    return np.ascontiguousarray(arr)


def to_rgb(image: Any, channel_order: str = "BGR", index: int | None = None,
           max_pixels: int | None = None) -> np.ndarray:
    """One input -> uint8 HxWx3 RGB, or ImageDecodeError. ``max_pixels``: refuse encoded images
    with more pixels, from their header (default: hubcls.data.decode's limit)."""
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    source = describe(image, index)
    if isinstance(image, np.ndarray):
        return from_array(image, channel_order, source)
    from .decode import JpegSource

    if isinstance(image, JpegSource):  # deferred by to_rgb_or_jpeg: decode it whole after all
        return image.decode()
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        try:
            return np.ascontiguousarray(np.asarray(image.convert("RGB")))
        except Exception as exc:  # noqa: BLE001 - a broken PIL image is a per-image error
            raise ImageDecodeError(source, str(exc)) from exc
    if isinstance(image, (str, os.PathLike)):
        if not os.path.exists(image):
            raise ImageDecodeError(source, "no such file")
        return _read_image(os.fspath(image), max_pixels)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _read_image(bytes(image), max_pixels)
    if hasattr(image, "read"):
        return _read_image(image, max_pixels)
    raise ImageDecodeError(
        source,
        "unsupported input type; pass a path, bytes, a file object, a PIL image or a uint8 NumPy array",
    )


def to_rgb_or_jpeg(image: Any, channel_order: str = "BGR", index: int | None = None,
                   max_pixels: int | None = None) -> Any:
    """:func:`to_rgb`, except that a plain JPEG given as a path, bytes or a file object comes back
    undecoded as a :class:`hubcls.data.decode.JpegSource` (after the same checks), for a compiled
    pipeline that decodes only the region its crop needs (hubcls.data.fused_decode)."""
    from .decode import JpegSource

    if isinstance(image, JpegSource):
        return image
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)) or (
            hasattr(image, "read") and not isinstance(image, np.ndarray)):
        from .decode import read_image_or_jpeg

        if isinstance(image, (str, os.PathLike)) and not os.path.exists(image):
            raise ImageDecodeError(describe(image, index), "no such file")
        src = bytes(image) if isinstance(image, (bytearray, memoryview)) else image
        return read_image_or_jpeg(os.fspath(src) if isinstance(src, os.PathLike) else src, max_pixels=max_pixels)
    return to_rgb(image, channel_order, index, max_pixels)


def as_list(images: Any) -> list:
    """The inputs of one call: a list/tuple, an NHWC uint8 batch, or a single image (a path, bytes,
    an array, a PIL image is one input, not a sequence of inputs)."""
    if images is None:
        return []
    if isinstance(images, (list, tuple)):
        return list(images)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    return [images]


def b64decode_image(text: str, index: int | None = None) -> bytes:
    """PaddleHub clients send ``base64.b64encode(cv2.imencode('.jpg', img)[1])``; data URLs work too."""
    source = f"image #{index} <base64>" if index is not None else "<base64>"
    if not isinstance(text, str):
        raise ImageDecodeError(source, f"expected a base64 string, got {type(text).__name__}")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(source, f"invalid base64: {exc}") from exc


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    """uint8 HxWx3 RGB -> JPEG bytes (Pillow)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
