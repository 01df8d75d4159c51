"""hubcls.data.read_image: every awkward input either decodes to uint8 HxWx3 RGB or raises
ImageDecodeError(source, reason). All cases are generated here."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hubcls.data import image_size, read_image
from hubcls.errors import ImageDecodeError


def _gradient(h=48, w=64):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 90)], -1).astype(np.uint8)


def _encode(img: Image.Image, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_png_roundtrip_exact_and_all_source_kinds(tmp_path):
    arr = _gradient()
    data = _encode(Image.fromarray(arr), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    for src in (str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data)):
        out = read_image(src)
        assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
        np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied(orientation):
    arr = _gradient(40, 60)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(img, "PNG", exif=exif.tobytes())
    out = read_image(data)
    expect = {3: np.rot90(arr, 2), 6: np.rot90(arr, -1), 8: np.rot90(arr, 1)}[orientation]
    assert out.shape == expect.shape
    np.testing.assert_array_equal(out, expect)
    w, h = image_size(data)
    assert (h, w) == expect.shape[:2]


def test_exif_rotated_jpeg():
    arr = np.zeros((32, 64, 3), np.uint8)
    arr[:, :32] = (250, 10, 10)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    data = _encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes())
    out = read_image(data)
    assert out.shape == (64, 32, 3)
    # after a 90-degree clockwise turn the red (left) half is on top
    assert out[:28, :, 0].mean() > 200 and out[36:, :, 0].mean() < 50


def test_16bit_grayscale_png():
    v = np.linspace(0, 65535, 50 * 30).reshape(30, 50).astype(np.uint16)
    data = _encode(Image.fromarray(v), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = read_image(data)
    assert out.shape == (30, 50, 3)
    expect = np.rint(v / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out[:, :, 0], expect)
    np.testing.assert_array_equal(out[:, :, 1], expect)


def _png_chunks(w, h, depth, colour_type, idat: bytes) -> bytes:
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _png_rgb16(arr16: np.ndarray) -> bytes:
    # Pillow cannot write 16-bit RGB PNGs: build one by hand (bit depth 16, colour type 2)
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[r].astype(">u2").tobytes() for r in range(h))
    return _png_chunks(w, h, 16, 2, zlib.compress(raw))


def test_16bit_rgb_png():
    rng = np.random.default_rng(0)
    arr16 = rng.integers(0, 65536, size=(12, 20, 3)).astype(np.uint16)
    out = read_image(_png_rgb16(arr16))
    assert out.shape == (12, 20, 3) and out.dtype == np.uint8
    # 16 -> 8 bit keeps the high byte (Pillow) or rounds (ours): within one level either way
    assert np.abs(out.astype(int) - (arr16 / 257.0)).max() <= 1.0


def test_palette_gif_with_transparency_composited_on_white():
    p = Image.new("P", (20, 10))
    p.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    px = np.zeros((10, 20), np.uint8)
    px[:, :10] = 1  # red
    px[:, 10:] = 2  # blue, marked transparent
    p.putdata(px.ravel().tolist())
    data = _encode(p, "GIF", transparency=2)
    out = read_image(data)
    np.testing.assert_array_equal(out[:, :10], np.broadcast_to([255, 0, 0], (10, 10, 3)))
    np.testing.assert_array_equal(out[:, 10:], np.full((10, 10, 3), 255))
    dropped = read_image(data, alpha="drop")
    np.testing.assert_array_equal(dropped[:, 10:], np.broadcast_to([0, 0, 255], (10, 10, 3)))


def test_rgba_png_alpha_composite():
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 200
    arr[..., 3] = 128  # half transparent red over white
    out = read_image(_encode(Image.fromarray(arr, "RGBA"), "PNG"))
    a = 128 / 255
    np.testing.assert_allclose(out[0, 0], [200 * a + 255 * (1 - a), 255 * (1 - a), 255 * (1 - a)], atol=1)
    out_black = read_image(_encode(Image.fromarray(arr, "RGBA"), "PNG"), background=(0, 0, 0))
    np.testing.assert_allclose(out_black[0, 0], [200 * a, 0, 0], atol=1)


def test_grayscale_and_bilevel():
    g = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    out = read_image(_encode(Image.fromarray(g, "L"), "PNG"))
    np.testing.assert_array_equal(out, np.repeat(g[:, :, None], 3, 2))
    b = Image.fromarray(g > 100).convert("1")
    out = read_image(_encode(b, "PNG"))
    assert set(np.unique(out)) <= {0, 255} and out.shape == (8, 8, 3)


def test_cmyk_jpeg():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (220, 30, 30)
    rgb[:, 8:] = (30, 30, 220)
    cmyk = Image.fromarray(rgb).convert("CMYK")
    data = _encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = read_image(data)
    assert out.shape == (16, 16, 3)
    assert np.abs(out[2:14, 1:6].astype(int) - [220, 30, 30]).max() < 25
    assert np.abs(out[2:14, 10:15].astype(int) - [30, 30, 220]).max() < 25


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = read_image(buf.getvalue())
    np.testing.assert_array_equal(out, np.broadcast_to([255, 0, 0], (8, 8, 3)))


def test_multipage_tiff_first_page():
    pages = [Image.new("RGB", (6, 5), c) for c in [(10, 20, 30), (200, 100, 0)]]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 2
    out = read_image(buf.getvalue())
    np.testing.assert_array_equal(out, np.broadcast_to([10, 20, 30], (5, 6, 3)))


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(1)
    data = _encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError) as e:
        read_image(path)
    assert e.value.source == str(path)
    assert "truncated" in e.value.reason


def test_truncated_jpeg_refused_even_when_pillow_is_told_to_load_truncated_files(tmp_path, monkeypatch):
    # PaddleDetection sets this process-wide flag at import; read_image must still refuse the file
    # and leave the flag as the other library set it.
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _encode(Image.fromarray(np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="truncated"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


@pytest.mark.parametrize("payload, reason", [
    (b"", "empty"),
    (bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)), "not an image"),
    (b"GIF89a\x01", ""),
], ids=["empty", "random-bytes", "gif-header-only"])
def test_garbage_inputs(payload, reason):
    with pytest.raises(ImageDecodeError) as e:
        read_image(payload)
    assert reason in e.value.reason
    assert e.value.source.startswith("<bytes")


def test_missing_file_and_bad_types(tmp_path):
    with pytest.raises(ImageDecodeError, match="no such file"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageDecodeError, match="unsupported input type"):
        read_image(12345)
    with pytest.raises(ImageDecodeError, match="binary mode"):
        read_image(io.StringIO("abc"))


def test_decompression_bomb_refused_from_header():
    # a 20000 x 20000 gray PNG whose pixel data would inflate to 400 MB; the guard refuses it
    # from the header, before any pixel is decoded
    rows = zlib.compress(b"\x00" * (20001 * 200))  # only 200 rows present: never read
    data = _png_chunks(20000, 20000, 8, 0, rows)
    with pytest.raises(ImageDecodeError, match="decompression-bomb"):
        read_image(data, max_pixels=10_000_000)
    small = _encode(Image.new("RGB", (200, 100)), "PNG")
    with pytest.raises(ImageDecodeError, match="20000 pixels"):
        read_image(small, max_pixels=19_999)
    assert read_image(small, max_pixels=20_000).shape == (100, 200, 3)


def test_bomb_limit_from_env(monkeypatch):
    small = _encode(Image.new("RGB", (200, 100)), "PNG")
    monkeypatch.setenv("HUBCLS_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageDecodeError, match="limit of 1000"):
        read_image(small)


def _photo(h, w, seed=0):
    # smooth, photo-like content (JPEG-friendly): a few sinusoids plus mild noise
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    chans = []
    for c in range(3):
        f = rng.uniform(2, 6, 2)
        chans.append(127 + 90 * np.sin(2 * np.pi * (f[0] * x + f[1] * y) + c))
    arr = np.stack(chans, -1) + rng.normal(0, 4, (h, w, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def test_reduced_jpeg_decode_close_to_full_decode_and_resize():
    import cv2

    arr = _photo(600, 800)
    data = _encode(Image.fromarray(arr), "JPEG", quality=92)
    full = read_image(data)
    reduced = read_image(data, reduce_to=140)
    assert full.shape == (600, 800, 3)
    # 600 -> 1/4 scale = 150 >= 140 (1/8 would be 75 < 140)
    assert reduced.shape == (150, 200, 3)
    target = (186, 140)  # (w, h): what a resize_short=140 pipeline produces
    a = cv2.resize(full, target, interpolation=cv2.INTER_AREA).astype(np.float64)
    b = cv2.resize(reduced, target, interpolation=cv2.INTER_AREA).astype(np.float64)
    assert np.abs(a - b).mean() < 2.0
    assert np.abs(a - b).max() < 40
    # reduce_to larger than the image: no reduction
    assert read_image(data, reduce_to=1000).shape == (600, 800, 3)
    # non-JPEG formats ignore the hint
    png = _encode(Image.fromarray(arr[:100, :100]), "PNG")
    assert read_image(png, reduce_to=10).shape == (100, 100, 3)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_fast_jpeg_path_agrees_with_pillow(mode):
    from hubcls.data.decode import _fast_jpeg

    img = Image.fromarray(_photo(90, 130, seed=4))
    if mode == "L":
        img = img.convert("L")
    for progressive in (False, True):
        data = _encode(img, "JPEG", quality=90, progressive=progressive)
        fast = _fast_jpeg(data, "<t>", 10**9, None)
        assert fast is not None and fast.shape == (90, 130, 3)
        slow = read_image(data, fast=False)
        assert np.abs(fast.astype(int) - slow.astype(int)).max() <= 2
        np.testing.assert_array_equal(read_image(data), fast)
    # trailing bytes after EOI, CMYK, truncation: not for the fast path (Pillow handles them)
    data = _encode(img, "JPEG", quality=90)
    assert _fast_jpeg(data + b"garbage", "<t>", 10**9, None) is None
    assert read_image(data + b"garbage").shape == (90, 130, 3)
    assert _fast_jpeg(data[:-100], "<t>", 10**9, None) is None
    assert _fast_jpeg(_encode(Image.new("CMYK", (8, 8)), "JPEG"), "<t>", 10**9, None) is None
    with pytest.raises(ImageDecodeError, match="decompression-bomb"):
        read_image(data, max_pixels=100)


@pytest.mark.parametrize("orientation", [1, 3, 6])
def test_fast_jpeg_decodes_rgb_exactly_as_bgr_swapped(orientation):
    """The fast path has libjpeg-turbo write RGB itself where OpenCV can (IMREAD_COLOR_RGB, >= 4.10):
    exactly OpenCV's BGR decode with its channels swapped, at full size and every DCT reduction, for
    colour (4:2:0 and progressive) and grey files, with the EXIF orientation applied."""
    import cv2

    from hubcls.data.decode import _fast_jpeg

    exif = Image.Exif()
    exif[0x0112] = orientation
    flags = {None: cv2.IMREAD_COLOR, 150: cv2.IMREAD_REDUCED_COLOR_2, 75: cv2.IMREAD_REDUCED_COLOR_4,
             37: cv2.IMREAD_REDUCED_COLOR_8}
    for img, kw in ((Image.fromarray(_photo(301, 453, seed=2)), {}), (Image.fromarray(_photo(301, 453, seed=3)),
                                                                     {"progressive": True}),
                    (Image.fromarray(_photo(301, 453, seed=5)).convert("L"), {})):
        data = _encode(img, "JPEG", quality=90, exif=exif.tobytes(), **kw)
        for reduce_to, flag in flags.items():
            fast = _fast_jpeg(data, "<t>", 10**9, reduce_to)
            ref = cv2.imdecode(np.frombuffer(data, np.uint8), flag)[:, :, ::-1]
            assert fast is not None and fast.flags.c_contiguous
            np.testing.assert_array_equal(fast, ref, err_msg=f"{img.mode} {kw} reduce_to={reduce_to}")
