"""resize_crop_normalize: against the NumPy reference, cv2.resize, Pillow, and PaddleClas's eval."""
import cv2
import numpy as np
import pytest
from _ops_images import photos
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import hubcls.ops as ops
from hubcls import _C
from hubcls.ops import reference as R

INTERPS = ["nearest", "bilinear", "bicubic", "area"]
CV2 = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}
PIL = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "area": Image.BOX}


def _rand_images(rng, n=3):
    shapes = [(rng.integers(8, 70), rng.integers(8, 70)) for _ in range(n)]
    chans = [3, None, 4, 1]
    out = []
    for i, (h, w) in enumerate(shapes):
        c = chans[i % 4]
        out.append(rng.integers(0, 256, (h, w) if c is None else (h, w, c), dtype=np.uint8))
    return out


def _rand_box(rng, h, w):
    bw = rng.uniform(1, w)
    bh = rng.uniform(1, h)
    return (rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh)


@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("antialias", [False, True])
def test_matches_reference_random(interp, antialias):
    rng = np.random.default_rng(hash((interp, antialias)) % 2**32)
    imgs = _rand_images(rng, 4)
    boxes = [_rand_box(rng, *im.shape[:2]) for im in imgs]
    flip = [True, False, True, False]
    for size in [(17, 23), 5, (64, 48)]:
        got = ops.resize_crop_normalize(imgs, boxes, size, flip=flip, interpolation=interp, antialias=antialias)
        ref = R.resize_crop_normalize(imgs, boxes, size, flip=flip, interpolation=interp, antialias=antialias)
        assert got.shape == ref.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
def test_layouts_dtypes_channel_order(layout, dtype):
    rng = np.random.default_rng(1)
    imgs = _rand_images(rng, 4)
    boxes = [_rand_box(rng, *im.shape[:2]) for im in imgs]
    kw = dict(layout=layout, dtype=dtype, channel_order="BGR", mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    got = ops.resize_crop_normalize(imgs, boxes, (20, 30), **kw)
    ref = R.resize_crop_normalize(imgs, boxes, (20, 30), **kw)
    assert got.dtype == np.dtype(dtype) and got.shape == ref.shape
    if dtype == "uint8":
        # rounding of values within float error of .5 may differ by one level
        d = np.abs(got.astype(int) - ref.astype(int))
        assert d.max() <= 1 and (d > 0).mean() < 1e-3
    elif dtype == "float16":
        np.testing.assert_array_equal(got, ops.resize_crop_normalize(imgs, boxes, (20, 30), **{**kw, "dtype": "float32"}).astype(np.float16))
    else:
        np.testing.assert_allclose(got, ref, atol=2e-5)


@pytest.mark.parametrize("interp", INTERPS)
def test_matches_cv2_resize_on_photos(interp):
    for p in photos():
        for nw, nh in [(300, 200), (123, 97), (700, 611)]:
            ref = cv2.resize(p, (nw, nh), interpolation=CV2[interp])
            got = ops.resize_crop_normalize([p], None, (nh, nw), interpolation=interp, antialias=False,
                                            dtype="uint8", layout="NHWC")[0]
            d = np.abs(got.astype(int) - ref)
            assert d.max() <= 1, (interp, nw, nh)  # cv2 uses 11-bit fixed point weights
            assert (d == 0).mean() > 0.7


@pytest.mark.parametrize("interp", INTERPS)
def test_matches_pillow_resize_on_photos(interp):
    for p in photos():
        pil = Image.fromarray(p)
        for nw, nh in [(300, 200), (123, 97), (700, 611)]:
            ref = np.asarray(pil.resize((nw, nh), PIL[interp]))
            got = ops.resize_crop_normalize([p], None, (nh, nw), interpolation=interp, antialias=True,
                                            dtype="uint8", layout="NHWC")[0]
            d = np.abs(got.astype(int) - ref)
            # Pillow rounds and clips to uint8 between its two passes (bicubic overshoot is clipped early)
            if interp == "bicubic":
                assert d.max() <= 4 and (d <= 1).mean() >= 0.995, (nw, nh)
            else:
                assert d.max() <= 2 and (d <= 1).mean() >= 0.999, (interp, nw, nh)


def test_pillow_fractional_box():
    for p in photos()[:2]:
        for box in [(10.3, 20.7, 200.5, 150.25), (0.5, 0.5, 33.3, 47.1), (100.0, 50.0, 40.0, 40.0)]:
            x, y, w, h = box
            for interp in ["bilinear", "bicubic"]:
                ref = np.asarray(Image.fromarray(p).resize((120, 90), PIL[interp], box=(x, y, x + w, y + h)))
                got = ops.resize_crop_normalize([p], [box], (90, 120), interpolation=interp, dtype="uint8",
                                                layout="NHWC")[0]
                d = np.abs(got.astype(int) - ref)
                assert d.max() <= 2 and (d <= 1).mean() >= 0.999


def test_box_equals_cv2_resize_then_crop():
    """The geometry the data pipeline relies on: resize short side + centre crop == one box."""
    for p in photos():
        h, w = p.shape[:2]
        for short, crop in [(256, 224), (292, 256), (236, 224), (400, 320)]:
            nh, nw = ops.resize_short_size(h, w, short)
            ref = cv2.resize(p, (nw, nh))
            oy, ox = (nh - crop) // 2, (nw - crop) // 2
            ref = ref[oy:oy + crop, ox:ox + crop]
            box = ops.resize_short_center_crop_box(h, w, short, crop)
            got = ops.resize_crop_normalize([p], [box], crop, antialias=False, dtype="uint8", layout="NHWC")[0]
            assert np.abs(got.astype(int) - ref).max() <= 1


def test_paddleclas_eval_pipeline():
    """cv2 decode gives BGR; PaddleClas's eval (resize_short 256, crop 224, normalize, CHW)."""
    for p in photos():
        bgr = np.ascontiguousarray(p[:, :, ::-1])
        h, w = p.shape[:2]
        ref = R.paddleclas_eval(p)
        got = ops.resize_crop_normalize([bgr], [ops.resize_short_center_crop_box(h, w, 256, 224)], 224,
                                        antialias=False, channel_order="BGR")[0]
        d = np.abs(got - ref)
        # cv2 rounds its resampled pixel to uint8; we keep the float: at most ~1 level / std apart
        assert d.max() <= 1.01 / 255 / 0.224
        assert d.mean() < 0.35 / 255 / 0.224


def test_flip_gray_rgba_and_views():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    a = ops.resize_crop_normalize([rgb], None, (20, 25), flip=[True], layout="NHWC")
    b = ops.resize_crop_normalize([rgb[:, ::-1].copy()], None, (20, 25), layout="NHWC")
    np.testing.assert_allclose(a, b, atol=1e-5)
    gray = rgb[:, :, 0].copy()
    g = ops.resize_crop_normalize([gray], None, 16, mean=0, std=1, scale=1.0)
    g3 = ops.resize_crop_normalize([np.repeat(gray[:, :, None], 3, 2)], None, 16, mean=0, std=1, scale=1.0)
    np.testing.assert_allclose(g, g3, atol=1e-4)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (40, 50, 1), dtype=np.uint8)], axis=2)
    np.testing.assert_allclose(ops.resize_crop_normalize([rgba], None, 16), ops.resize_crop_normalize([rgb], None, 16), atol=1e-6)
    # a strided crop view (rows padded) and a non-contiguous column view give the same as copies
    big = rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)
    view = big[10:50, 20:70]
    np.testing.assert_array_equal(ops.resize_crop_normalize([view], None, 16), ops.resize_crop_normalize([view.copy()], None, 16))
    col = big[:, ::2]
    np.testing.assert_array_equal(ops.resize_crop_normalize([col], None, 16), ops.resize_crop_normalize([col.copy()], None, 16))


def test_nhwc_batch_input_out_and_threads():
    rng = np.random.default_rng(4)
    batch = rng.integers(0, 256, (5, 33, 41, 3), dtype=np.uint8)
    boxes = [_rand_box(rng, 33, 41) for _ in range(5)]
    ref = ops.resize_crop_normalize(list(batch), boxes, 16, num_threads=1)
    out = np.zeros((5, 3, 16, 16), np.float32)
    got = ops.resize_crop_normalize(batch, boxes, 16, out=out, num_threads=2)
    assert got is out
    np.testing.assert_array_equal(out, ref)
    # single image split over row chunks by several threads
    one = ops.resize_crop_normalize(batch[:1], boxes[:1], 600, num_threads=3)
    np.testing.assert_array_equal(one, ops.resize_crop_normalize(batch[:1], boxes[:1], 600, num_threads=1))


class _DLPackOnly:
    """A producer that is not an ndarray but exports DLPack (as Paddle / torch tensors do)."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kw):
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_dlpack_inputs_and_out_without_copy():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = np.zeros((1, 3, 8, 8), np.float32)
    ref = ops.resize_crop_normalize([img], None, 8)
    got = ops.resize_crop_normalize([_DLPackOnly(img)], None, 8, out=_DLPackOnly(out))
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(out, ref)  # written in place through the DLPack view


def test_paddle_tensor_input():
    paddle = pytest.importorskip("paddle")
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    t = paddle.to_tensor(img, place=paddle.CPUPlace())
    ref = ops.resize_crop_normalize([img], None, 8)
    np.testing.assert_array_equal(ops.resize_crop_normalize([t], None, 8), ref)
    out = paddle.zeros([1, 3, 8, 8], dtype="float32")  # a Paddle tensor as out=: written in place via DLPack
    ops.resize_crop_normalize([t], None, 8, out=out)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_float_to_half_matches_numpy():
    rng = np.random.default_rng(7)
    vals = np.concatenate([
        rng.normal(0, 3, 2000).astype(np.float32),
        np.float32([0.0, -0.0, 65504, 65519.99, 65520, 1e-8, 6e-8, 3e-8, 2.98e-8, 1e-5, -1e-7, np.inf, -np.inf]),
        (np.arange(-2048, 2048, dtype=np.float32) + 0.5) * np.float32(2.0 ** -10),  # ties
        rng.uniform(-1e-4, 1e-4, 500).astype(np.float32),  # subnormal halves
    ])
    with np.errstate(over="ignore"):
        want = vals.astype(np.float16).view(np.uint16)
    bits = np.array([_C.float_to_half(float(v)) for v in vals], dtype=np.uint16)
    np.testing.assert_array_equal(bits, want)


@pytest.mark.parametrize("bad, err, match", [
    (dict(images=[np.zeros((4, 4, 3), np.float32)]), TypeError, "uint8"),
    (dict(images=[np.zeros((4, 4, 2), np.uint8)]), ValueError, "channels"),
    (dict(images=[np.zeros((4,), np.uint8)]), ValueError, "HW"),
    (dict(images=[np.zeros((0, 4, 3), np.uint8)]), ValueError, "empty"),
    (dict(boxes=[(0, 0, 20, 4)]), ValueError, "outside"),
    (dict(boxes=[(-1, 0, 2, 2)]), ValueError, "outside"),
    (dict(boxes=[(0, 0, np.nan, 2)]), ValueError, "NaN"),
    (dict(boxes=[(0, 0, -2, 2)]), ValueError, "positive"),
    (dict(boxes=[(0, 0, 2, 2), (0, 0, 2, 2)]), ValueError, "shape"),
    (dict(flip=[True, False]), ValueError, "flip"),
    (dict(size=0), ValueError, "positive"),
    (dict(size=(3, 4, 5)), ValueError, "size"),
    (dict(interpolation="lanczos"), ValueError, "interpolation"),
    (dict(layout="CHW"), ValueError, "layout"),
    (dict(dtype="int32"), ValueError, "dtype"),
    (dict(std=(1, 0, 1)), ValueError, "std"),
    (dict(mean=(1, 2)), ValueError, "mean"),
    (dict(channel_order="RGBA"), ValueError, "channel_order"),
    (dict(num_threads=0), ValueError, "num_threads"),
    (dict(out=np.zeros((1, 3, 4, 5), np.float32)), ValueError, "out"),
    (dict(out=np.zeros((1, 3, 4, 4), np.float16)), ValueError, "out"),
    (dict(out=np.zeros((1, 3, 4, 8), np.float32)[..., ::2]), ValueError, "contiguous"),
])
def test_bad_input_raises(bad, err, match):
    kw = dict(images=[np.zeros((8, 8, 3), np.uint8)], boxes=[(0, 0, 8, 8)], size=4)
    kw.update(bad)
    with pytest.raises(err, match=match):
        ops.resize_crop_normalize(kw.pop("images"), kw.pop("boxes"), kw.pop("size"), **kw)


def test_kernel_rejects_bad_input_directly():
    """The C++ entry point validates too (callers other than the wrapper must not corrupt memory)."""
    img = np.zeros((8, 8, 3), np.uint8)
    out = np.zeros((1, 3, 4, 4), np.float32)
    args = lambda **o: dict(dict(images=[img], boxes=np.array([[0, 0, 8, 8.0]]), flips=None, out=out, out_h=4, out_w=4,
                                 mean=(0, 0, 0), std=(1, 1, 1), scale=1.0, interp=_C.Interp.bilinear, antialias=True,
                                 nchw=True, dtype=_C.OutDType.float32, swap_rb=False, num_threads=1), **o)
    _C.resize_crop_normalize(**args())
    with pytest.raises(ValueError):
        _C.resize_crop_normalize(**args(boxes=np.array([[0, 0, 9, 8.0]])))
    with pytest.raises(ValueError):
        _C.resize_crop_normalize(**args(out=np.zeros((1, 3, 4, 3), np.float32)))
    with pytest.raises(ValueError, match="interpolation"):
        _C.resize_crop_normalize(**args(interp=_C.Interp(7)))  # an out-of-range value of the enum
    with pytest.raises(TypeError):  # the codes are enums, not integers
        _C.resize_crop_normalize(**args(interp=1))
    with pytest.raises((ValueError, TypeError)):
        _C.resize_crop_normalize(**args(images=[np.zeros((8, 8, 3), np.float32)]))


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), c=st.sampled_from([1, 3, 4]), oh=st.integers(1, 30),
       ow=st.integers(1, 30), interp=st.sampled_from(INTERPS), antialias=st.booleans(),
       fx=st.floats(0, 1), fy=st.floats(0, 1), fw=st.floats(0.01, 1), fh=st.floats(0.01, 1), flip=st.booleans(),
       seed=st.integers(0, 2**16))
def test_fuzz_against_reference(h, w, c, oh, ow, interp, antialias, fx, fy, fw, fh, flip, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    bw, bh = max(fw * w, 1e-2), max(fh * h, 1e-2)
    box = (fx * (w - bw), fy * (h - bh), bw, bh)
    got = ops.resize_crop_normalize([img], [box], (oh, ow), flip=[flip], interpolation=interp, antialias=antialias)
    ref = R.resize_crop_normalize([img], [box], (oh, ow), flip=[flip], interpolation=interp, antialias=antialias)
    np.testing.assert_allclose(got, ref, atol=5e-5)


def test_geometry_helpers():
    assert ops.resize_short_size(375, 500, 256) == (256, 341)
    x, y, bw, bh = ops.resize_short_center_crop_box(375, 500, 256, 224)
    assert x >= 0 and y >= 0 and x + bw <= 500 and y + bh <= 375
    with pytest.raises(ValueError):
        ops.resize_short_center_crop_box(100, 100, 64, 96)
    rng = np.random.default_rng(0)
    areas, ratios = [], []
    for _ in range(400):
        x, y, bw, bh = ops.random_resized_crop_box(300, 400, rng)
        assert 0 <= x and 0 <= y and x + bw <= 400 and y + bh <= 300 and bw > 0 and bh > 0
        areas.append(bw * bh / 120000)
        ratios.append(bw / bh)
    assert 0.07 <= min(areas) and max(areas) <= 1.0 and 0.4 < np.mean(areas) < 0.65
    assert min(ratios) > 0.7 and max(ratios) < 1.45
    # impossible ratio range falls back to a centre crop clamped to the range
    assert ops.random_resized_crop_box(10, 1000, rng, scale=(0.99, 1.0), ratio=(1.0, 1.0)) == (495, 0, 10, 10)
    with pytest.raises(ValueError):
        ops.random_resized_crop_box(10, 10, rng, scale=(0.5, 0.1))


def test_packed_buffer_of_variable_size_images():
    rng = np.random.default_rng(8)
    imgs = [rng.integers(0, 256, shp, dtype=np.uint8) for shp in [(30, 40, 3), (17, 25), (50, 20, 4)]]
    offsets = np.cumsum([0] + [im.size for im in imgs[:-1]])
    buf = np.concatenate([im.ravel() for im in imgs])
    views = ops.unpack_images(buf, offsets, [im.shape for im in imgs])
    assert all(np.shares_memory(v, buf) for v in views)
    np.testing.assert_array_equal(ops.resize_crop_normalize(views, None, 12), ops.resize_crop_normalize(imgs, None, 12))
    with pytest.raises(ValueError, match="does not fit"):
        ops.unpack_images(buf, [buf.size - 10], [(4, 4, 3)])


# ----------------------------------------------------------------------------- per-ISA kernels

def _isa_cases(rng):
    """Images and boxes that drive every horizontal-pass mode of the SIMD kernels: upscale (one
    loaded vector), mild and strong downscale (two / four vectors), very strong (gather); widths
    that are not a multiple of the vector length; 1, 3 and 4 channels."""
    cases = []
    for (h, w, c, bw, ow) in [(40, 37, 3, 10.5, 31), (60, 90, 3, 44.2, 30), (70, 130, 4, 101.7, 30),
                              (50, 320, 1, 300.3, 19), (33, 77, 3, 76.0, 77), (25, 64, 4, 17.0, 40)]:
        img = rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)
        bh = rng.uniform(2, h)
        cases.append((img, (rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh), (int(rng.integers(5, 40)), ow)))
    return cases


@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("antialias", [False, True])
def test_every_cpu_isa_matches_reference(interp, antialias):
    """Each instruction-set level this CPU runs (scalar, avx2, avx512) against the float64 reference."""
    rng = np.random.default_rng(7)
    for k, (img, box, size) in enumerate(_isa_cases(rng)):
        kw = dict(flip=[k % 2 == 0], interpolation=interp, antialias=antialias, channel_order="BGR" if k % 3 else "RGB")
        ref = R.resize_crop_normalize([img], [box], size, **kw)
        raw_ref = np.clip(np.floor(R.resize_crop_normalize([img], [box], size, mean=0, std=1, scale=1, **kw) + 0.5), 0, 255)
        for isa in ops.supported_cpu_isas():
            with ops.using_cpu_isa(isa):
                assert ops.cpu_isa() == isa
                for layout in ("NCHW", "NHWC"):
                    nhwc = (lambda a: a) if layout == "NCHW" else (lambda a: a.transpose(0, 2, 3, 1))
                    got = ops.resize_crop_normalize([img], [box], size, layout=layout, **kw)
                    np.testing.assert_allclose(got, nhwc(ref), atol=3e-5, rtol=0, err_msg=f"{isa} case {k} {layout}")
                    half = ops.resize_crop_normalize([img], [box], size, layout=layout, dtype="float16", **kw)
                    np.testing.assert_allclose(half.astype(np.float32), nhwc(ref), atol=3e-5, rtol=2 ** -10)
                    raw = ops.resize_crop_normalize([img], [box], size, layout=layout, dtype="uint8", **kw)
                    assert np.abs(raw.astype(np.float64) - nhwc(raw_ref)).max() <= 1


def _misaligned_out(shape, dtype, offset):
    """An out= array whose data starts `offset` bytes past a 64-byte boundary."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = np.empty(nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    return buf[start:start + nbytes].view(dtype).reshape(shape)


@pytest.mark.parametrize("isa", ops.supported_cpu_isas())
def test_streamed_large_batches_match_small_calls(isa):
    """Outputs of 8 MB and more are written with non-temporal stores, stitched across rows so
    every cache line is written whole whatever the alignment of `out`: such a batch must equal the
    same images processed one by one (ordinary stores), for every layout, dtype and alignment, and
    when one big image is split over threads by rows."""
    rng = np.random.default_rng(3)
    pics = [p for p in photos()]
    imgs = [pics[i % len(pics)] for i in range(10)]
    boxes = [_rand_box(rng, *im.shape[:2]) for im in imgs]
    flips = [bool(i % 2) for i in range(10)]
    with ops.using_cpu_isa(isa):
        for layout, dtype, size, offset in [("NCHW", "float32", 300, 4), ("NHWC", "float32", 300, 12),
                                            ("NCHW", "float16", 420, 2), ("NHWC", "uint8", 700, 1),
                                            ("NCHW", "float32", 300, 0)]:
            kw = dict(flip=flips, layout=layout, dtype=dtype, channel_order="BGR")
            shape = (10, 3, size, size) if layout == "NCHW" else (10, size, size, 3)
            out = _misaligned_out(shape, dtype, offset)
            assert out.nbytes >= 8 << 20
            ops.resize_crop_normalize(imgs, boxes, size, out=out, **kw)
            one = [ops.resize_crop_normalize([im], [b], size, flip=[f], layout=layout, dtype=dtype, channel_order="BGR")[0]
                   for im, b, f in zip(imgs, boxes, flips)]
            np.testing.assert_array_equal(out, np.stack(one), err_msg=f"{layout} {dtype} offset {offset}")
        # one image split over 2 threads by row blocks, each block streamed on its own
        big = pics[0]
        split = ops.resize_crop_normalize([big], None, (1100, 1100), num_threads=2, out=_misaligned_out((1, 3, 1100, 1100), "float32", 8))
        whole = ops.resize_crop_normalize([big], None, (1100, 1100), num_threads=1)
        np.testing.assert_array_equal(split, whole)
