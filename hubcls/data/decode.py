"""Robust image decoding: anything a user or a dataset hands us -> uint8 HxWx3 RGB, or a clear
``ImageDecodeError(source, reason)``. Never anything that takes the process down.

Conventions (documented in docs/data.md):

* EXIF orientation is applied (the pixels come out the way a photo viewer shows them).
* Grayscale / bilevel images are replicated to 3 channels.
* 16-bit images (``I;16*``, ``I``) are scaled to 8 bits (``round(v / 257)``); float images
  (``F``) are clipped to [0, 255].
* Palette images are expanded; transparency (alpha channel or palette transparency) is composited
  on a white background (``background=`` changes the colour); ``alpha="drop"`` discards it instead.
* CMYK (including Adobe's inverted CMYK JPEGs), YCbCr, LAB, HSV are converted to RGB by Pillow.
* Animated GIF/PNG/WebP and multi-page TIFF: the first frame/page.
* Decompression bombs: an image with more than ``max_pixels`` pixels (default
  :data:`DEFAULT_MAX_PIXELS`, override per call or with ``HUBCLS_MAX_IMAGE_PIXELS``) is refused
  from its header, before any pixel is decoded.
* Truncated files, non-images, empty files, missing files -> ``ImageDecodeError``.

``reduce_to`` enables reduced-size JPEG decoding (libjpeg DCT scaling by 1/2, 1/4 or 1/8 through
Pillow's ``draft``) when the caller will downscale anyway: the decoded image keeps its short side
``>= reduce_to`` pixels (and its aspect ratio up to one pixel of rounding).
"""
from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from ..errors import ImageDecodeError

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own limit x2: the size where Pillow itself refuses
_ENV_MAX_PIXELS = "HUBCLS_MAX_IMAGE_PIXELS"

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, "io.IOBase"]


def default_max_pixels() -> int:
    """The decompression-bomb limit: ``HUBCLS_MAX_IMAGE_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    value = os.environ.get(_ENV_MAX_PIXELS)
    if value:
        try:
            return int(float(value))
        except ValueError:
            raise ImageDecodeError("<config>", f"{_ENV_MAX_PIXELS}={value!r} is not a number") from None
    return DEFAULT_MAX_PIXELS


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a file"


def _describe(src) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<bytes len={len(src)}>"
    return getattr(src, "name", None) or f"<{type(src).__name__}>"


def _read_bytes(src, name: str) -> bytes:
    if isinstance(src, (str, os.PathLike)):
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat on the open descriptor
            # (no check-then-open race) refuses FIFOs, devices (/dev/zero would never end) and
            # sockets, whether named directly or through a symlink
            fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                os.close(fd)
                if stat.S_ISDIR(mode):
                    raise IsADirectoryError(src)
                raise ImageDecodeError(name, f"not a regular file ({_file_kind(mode)})")
            with os.fdopen(fd, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ImageDecodeError(name, "no such file") from None
        except IsADirectoryError:
            raise ImageDecodeError(name, "is a directory") from None
        except OSError as exc:
            raise ImageDecodeError(name, f"cannot read file: {exc.strerror or exc}") from None
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src)
    if hasattr(src, "read"):
        try:
            data = src.read()
        except Exception as exc:  # noqa: BLE001 - any reader failure is a decode failure
            raise ImageDecodeError(name, f"cannot read file object: {exc}") from None
        if not isinstance(data, (bytes, bytearray)):
            raise ImageDecodeError(name, "file object must be opened in binary mode")
        return bytes(data)
    raise ImageDecodeError(name, f"unsupported input type {type(src).__name__} "
                                 "(expected a path, bytes or a binary file object)")


def _draft_size(w: int, h: int, reduce_to: int) -> Tuple[int, int]:
    # Pillow's draft picks the largest DCT scale whose output is still >= the requested size
    # in both dimensions; request the size whose short side is exactly reduce_to.
    short = min(w, h)
    if short <= reduce_to:
        return w, h
    f = reduce_to / short
    return max(1, int(np.ceil(w * f))), max(1, int(np.ceil(h * f)))


_SOF_FAST = (0xC0, 0xC1, 0xC2)  # baseline, extended sequential, progressive (Huffman)


@dataclass(frozen=True)
class JpegHeader:
    """What the JPEG fast paths need from a file's markers (read without decoding)."""
    height: int               # as stored (before the EXIF orientation)
    width: int
    components: int
    precision: int
    sof: int                  # the SOFn marker byte
    orientation: Optional[int]  # EXIF orientation 1..8 (1 without one); None: an EXIF block we cannot read


def _jpeg_header(data: bytes) -> Optional[JpegHeader]:
    """The JPEG's frame header and EXIF orientation from its markers up to the first scan, or None."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    frame = None
    exif = []
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg = (data[i + 2] << 8) | data[i + 3]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 10 > n or frame is not None:
                return None
            frame = (data[i + 4], (data[i + 5] << 8) | data[i + 6], (data[i + 7] << 8) | data[i + 8], data[i + 9],
                     marker)
        elif marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00":
            exif.append(data[i + 10:i + 2 + seg])
        elif marker in (0xD9, 0xDA):  # EOI / first scan: the header is complete
            break
        i += 2 + seg
    if frame is None:
        return None
    prec, h, w, comps, sof = frame
    orientation = 1 if not exif else (_exif_orientation(exif[0]) if len(exif) == 1 else None)
    return JpegHeader(h, w, comps, prec, sof, orientation)


def _exif_orientation(tiff: bytes) -> Optional[int]:
    """Orientation tag (0x0112) of IFD0 of an EXIF TIFF block: 1..8, 1 when absent or out of range
    (Pillow's exif_transpose and OpenCV both ignore those), None when the block is malformed."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    end = "<" if tiff[:2] == b"II" else ">"
    try:
        magic, ifd = struct.unpack_from(end + "HI", tiff, 2)
        if magic != 42:
            return None
        (count,) = struct.unpack_from(end + "H", tiff, ifd)
        for k in range(count):
            tag, typ, num = struct.unpack_from(end + "HHI", tiff, ifd + 2 + 12 * k)
            if tag == 0x0112:
                if typ != 3 or num != 1:  # not one SHORT: let the general decoders judge it
                    return None
                (value,) = struct.unpack_from(end + "H", tiff, ifd + 2 + 12 * k + 8)
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return None
    return 1


def _plain_jpeg(data: bytes) -> Optional[JpegHeader]:
    """Header of a JPEG the libjpeg-turbo fast paths take: complete (ends with EOI), 8-bit, gray or
    YCbCr/RGB, Huffman-coded baseline or progressive. Anything unusual (CMYK, 12-bit, arithmetic
    coding, a missing EOI marker = possibly truncated) returns None and goes through Pillow, which
    reports errors properly."""
    hdr = _jpeg_header(data)
    if hdr is None:
        return None
    if hdr.sof not in _SOF_FAST or hdr.components not in (1, 3) or hdr.precision != 8 or not hdr.height \
            or not hdr.width:
        return None
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None
    return hdr


def _check_pixels(name: str, w: int, h: int, limit: int) -> None:
    if w * h > limit:
        raise ImageDecodeError(
            name, f"image has {w}x{h} = {w * h} pixels, more than the limit of {limit} "
                  f"(decompression-bomb guard; raise max_pixels or {_ENV_MAX_PIXELS})")


def _fast_jpeg(data: bytes, name: str, limit: int, reduce_to) -> Optional[np.ndarray]:
    """libjpeg-turbo through OpenCV for the common case (:func:`_plain_jpeg`): about 1.5x faster
    than Pillow here. OpenCV applies the EXIF orientation itself (IMREAD_COLOR)."""
    hdr = _plain_jpeg(data)
    if hdr is None:
        return None
    h, w = hdr.height, hdr.width
    _check_pixels(name, w, h, limit)
    import cv2

    flag = cv2.IMREAD_COLOR
    if reduce_to:
        short = min(h, w)
        for k, f in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2)):
            if -(-short // k) >= reduce_to:
                flag = f
                break
    # OpenCV >= 4.10 has libjpeg-turbo write RGB itself (the same pixels, no BGR->RGB pass over the
    # image: ~9% of a 4000x3000 decode); the reduced flags carry IMREAD_COLOR, which must go then
    rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)
    if rgb is not None:
        flag = (flag & ~cv2.IMREAD_COLOR) | rgb
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if arr is None or arr.ndim != 3 or arr.shape[2] != 3:
        return None
    return arr if rgb is not None else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


class JpegSource:
    """A plain JPEG (:func:`_plain_jpeg`) whose pixels are not decoded yet: its bytes and displayed
    size. A compiled pipeline decodes it straight into the batch, only the region its crop needs
    (hubcls.ops.jpeg_decode_resize); :meth:`decode` is the general path (= :func:`read_image`)."""

    __slots__ = ("data", "name", "height", "width", "orientation", "max_pixels", "rng_state")

    def __init__(self, data: bytes, name: str, header: JpegHeader, max_pixels: Optional[int]):
        self.data = data
        self.name = name
        self.orientation = int(header.orientation or 1)
        swap = self.orientation >= 5
        self.height = header.width if swap else header.height
        self.width = header.height if swap else header.width
        self.max_pixels = max_pixels
        self.rng_state = None  # the sample generator's state before its draws (set by the pipeline)

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(height, width, 3) of the displayed image, as the decoded array will have."""
        return self.height, self.width, 3

    def decode(self) -> np.ndarray:
        """The whole image through :func:`read_image` (its error policy)."""
        return read_image(self.data, name=self.name, max_pixels=self.max_pixels)

    def __repr__(self):
        return f"JpegSource({self.name!r}, {self.width}x{self.height}, orientation={self.orientation})"


def read_image_or_jpeg(src: Source, *, max_pixels: Optional[int] = None,
                       name: Optional[str] = None) -> Union[np.ndarray, JpegSource]:
    """:func:`read_image`, except that a plain JPEG comes back undecoded as a :class:`JpegSource`
    (after the same checks: readable, non-empty, under the pixel limit) for a caller that decodes
    only what it needs. The file is read once either way."""
    name = name or _describe(src)
    data = _read_bytes(src, name)
    if not data:
        raise ImageDecodeError(name, "empty file")
    hdr = _plain_jpeg(data)
    if hdr is None or hdr.orientation is None:
        return read_image(data, max_pixels=max_pixels, name=name)
    _check_pixels(name, hdr.width, hdr.height, int(max_pixels) if max_pixels else default_max_pixels())
    return JpegSource(data, name, hdr, max_pixels)


def _to_rgb(img, name: str, alpha: str, background) -> np.ndarray:
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        arr = np.clip(np.rint(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    if mode == "F":
        arr = np.clip(np.rint(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode in ("L", "1") and "transparency" in img.info:
        img = img.convert("LA")
    elif mode == "RGB" and "transparency" in img.info:
        img = img.convert("RGBA")
    mode = img.mode
    if mode in ("RGBA", "LA", "RGBa", "La"):
        if mode in ("RGBa", "La"):  # premultiplied
            img = img.convert(mode[0:-1] + "A")
        rgba = img.convert("RGBA")
        if alpha == "drop":
            return np.ascontiguousarray(np.asarray(rgba)[:, :, :3])
        base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        base.alpha_composite(rgba)
        return np.ascontiguousarray(np.asarray(base)[:, :, :3])
    if mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageDecodeError(name, f"unexpected decoded shape {arr.shape} (mode {mode})")
    return arr


def read_image(
    src: Source,
    *,
    max_pixels: Optional[int] = None,
    reduce_to: Optional[int] = None,
    alpha: str = "white",
    background: Tuple[int, int, int] = (255, 255, 255),
    name: Optional[str] = None,
    fast: bool = True,
) -> np.ndarray:
    """Decode ``src`` (path, bytes or binary file object) to a uint8 HxWx3 RGB array.

    ``max_pixels``: refuse images with more pixels (decompression-bomb guard; ``0``/``None`` ->
    default). ``reduce_to``: short side the caller needs; JPEGs larger than that decode at a reduced
    DCT scale. ``alpha``: ``"white"`` composites transparency on ``background``, ``"drop"``
    discards it. ``name`` overrides the source name used in errors. ``fast=False`` always
    decodes with Pillow (JPEGs otherwise go through OpenCV's libjpeg-turbo when they are plain).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if alpha not in ("white", "drop"):
        raise ValueError(f"alpha must be 'white' or 'drop', got {alpha!r}")
    name = name or _describe(src)
    limit = int(max_pixels) if max_pixels else default_max_pixels()
    data = _read_bytes(src, name)
    if not data:
        raise ImageDecodeError(name, "empty file")
    if fast:
        arr = _fast_jpeg(data, name, limit, reduce_to)
        if arr is not None:
            return arr

    fp = _EOFWatch(data)
    try:
        with warnings.catch_warnings():
            # we enforce our own limit below; Pillow's warning/error would preempt a configured one
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img = Image.open(fp)
            except Image.DecompressionBombError:
                # our limit (checked from the header next) is the larger one; Pillow's process-wide
                # MAX_IMAGE_PIXELS stays untouched for every other user of Pillow
                img = _open_without_pillow_limit(fp)
            w, h = img.size
            if w <= 0 or h <= 0:
                raise ImageDecodeError(name, f"invalid image size {w}x{h}")
            _check_pixels(name, w, h, limit)
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            if reduce_to and img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK", "YCbCr"):
                dw, dh = _draft_size(w, h, int(reduce_to))
                if (dw, dh) != (w, h):
                    img.draft(img.mode if img.mode != "YCbCr" else "RGB", (dw, dh))
            _load_refusing_truncation(img, fp)
            try:
                img = ImageOps.exif_transpose(img)
            except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the pixels
                pass
            return _to_rgb(img, name, alpha, background)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError(name, "not an image file (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error,
            MemoryError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = f"truncated file ({reason})"
        raise ImageDecodeError(name, reason) from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(name, str(exc)) from None


class _EOFWatch(io.BytesIO):
    """The image bytes as a file that notes when a reader asks for more after the end: during
    ``load()`` that only happens to a decoder that still needs data, i.e. a truncated file."""

    armed = False
    hit_eof = False

    def read(self, size=-1):
        out = super().read(size)
        if self.armed and not out and size != 0:
            self.hit_eof = True
        return out


def _open_without_pillow_limit(fp):
    """``Image.open``'s format loop without its decompression-bomb check, so a caller's larger
    ``max_pixels`` works without changing Pillow's global ``MAX_IMAGE_PIXELS``."""
    from PIL import Image, UnidentifiedImageError

    prefix = fp.getvalue()[:16]
    for loader in (Image.preinit, Image.init):
        loader()
        for fmt in list(Image.ID):
            factory, accept = Image.OPEN[fmt]
            ok = not accept or accept(prefix)
            if not ok or isinstance(ok, str):
                continue
            fp.seek(0)
            try:
                return factory(fp, "")
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue
    raise UnidentifiedImageError("cannot identify image file")


def _load_refusing_truncation(img, fp: _EOFWatch) -> None:
    """``img.load()`` that raises on a truncated file even when another library has set Pillow's
    process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` (PaddleDetection's trainer does, at import):
    a cut-off file must be an ImageDecodeError here, never half an image of grey. The flag itself
    is only read, never changed (another thread may be relying on it)."""
    from PIL import ImageFile

    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        img.load()
        return
    fp.armed = True
    img.load()
    if fp.hit_eof or getattr(img, "_ended", False):  # JpegImagePlugin marks its fake EOI as _ended
        raise OSError("image file is truncated (the decoder ran out of data)")


def image_size(src: Source, *, orientation: bool = True) -> Tuple[int, int]:
    """(width, height) from the header only, after EXIF orientation (a 90-degree tag swaps them).
    ``orientation=False`` skips the EXIF lookup: Pillow finds a PNG's EXIF only by decoding the
    whole image, which a size check before decoding must not do."""
    from PIL import Image, UnidentifiedImageError

    name = _describe(src)
    data = _read_bytes(src, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(data))
            except Image.DecompressionBombError:  # a size question: answer it, whatever the size
                img = _open_without_pillow_limit(_EOFWatch(data))
            w, h = img.size
            turn = img.getexif().get(0x0112, 1) if orientation else 1
    except UnidentifiedImageError:
        raise ImageDecodeError(name, "not an image file (unrecognised format)") from None
    except Exception as exc:  # noqa: BLE001
        raise ImageDecodeError(name, str(exc)) from None
    return (h, w) if turn in (5, 6, 7, 8) else (w, h)
