"""CUDA kernels against the CPU kernels (skipped without a CUDA build, a GPU, and torch or CuPy).

Device arrays come from torch (preferred) or CuPy; no Paddle GPU build is needed."""
import numpy as np
import pytest

import hubcls.ops as ops
from hubcls import _C


def _backend():
    if not _C.build_info()["cuda_compiled"] or _C.cuda_device_count() == 0:
        return None
    try:
        import torch

        if torch.cuda.is_available():
            return "torch"
    except ImportError:
        pass
    try:
        import cupy  # noqa: F401

        return "cupy"
    except ImportError:
        return None


BACKEND = _backend()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(BACKEND is None, reason="needs a CUDA build, a GPU and torch or CuPy")]


def to_dev(a):
    if BACKEND == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(a)).cuda()
    import cupy

    return cupy.asarray(a)


def to_host(t):
    if BACKEND == "torch":
        return t.cpu().numpy()
    import cupy

    return cupy.asnumpy(t)


def _images(rng, n=5):
    out = []
    for i in range(n):
        h, w = int(rng.integers(20, 120)), int(rng.integers(20, 120))
        c = [3, 1, 4, 3, 3][i % 5]
        out.append(rng.integers(0, 256, (h, w, c) if c != 1 else (h, w), dtype=np.uint8))
    return out


def _boxes(rng, imgs):
    bs = []
    for im in imgs:
        h, w = im.shape[:2]
        bw, bh = rng.uniform(2, w), rng.uniform(2, h)
        bs.append((rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh))
    return bs


@pytest.mark.parametrize("interp", ["nearest", "bilinear", "bicubic", "area"])
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
def test_resize_crop_normalize_matches_cpu(interp, antialias, layout, dtype):
    rng = np.random.default_rng(0)
    imgs = _images(rng)
    boxes = _boxes(rng, imgs)
    flip = [True, False, True, False, True]
    kw = dict(flip=flip, interpolation=interp, antialias=antialias, layout=layout, dtype=dtype, channel_order="BGR")
    cpu = ops.resize_crop_normalize(imgs, boxes, (31, 45), **kw)
    dev = ops.resize_crop_normalize([to_dev(im) for im in imgs], boxes, (31, 45), **kw)
    got = to_host(dev)
    assert got.shape == cpu.shape and got.dtype == cpu.dtype
    if dtype == "uint8":
        assert np.abs(got.astype(int) - cpu.astype(int)).max() <= 1
    else:
        np.testing.assert_allclose(got.astype(np.float32), cpu.astype(np.float32), atol=2e-3 if dtype == "float16" else 2e-5)


def test_nhwc_device_batch_out_and_stream():
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (6, 375, 500, 3), dtype=np.uint8)
    boxes = [ops.resize_short_center_crop_box(375, 500, 256, 224)] * 6
    cpu = ops.resize_crop_normalize(batch, boxes, 224, antialias=False, dtype="float16")
    d = to_dev(batch)
    if BACKEND == "torch":
        import torch

        out = torch.empty((6, 3, 224, 224), dtype=torch.float16, device="cuda")
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())  # inputs were made on the default stream
        with torch.cuda.stream(s):  # the kernel must run on the caller's current stream
            ops.resize_crop_normalize(d, boxes, 224, antialias=False, dtype="float16", out=out)
        s.synchronize()
        got = out.cpu().numpy()
    else:
        got = to_host(ops.resize_crop_normalize(d, boxes, 224, antialias=False, dtype="float16"))
    np.testing.assert_allclose(got.astype(np.float32), cpu.astype(np.float32), atol=2e-3)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint8])
def test_erase_ops_match_cpu(layout, dtype):
    rng = np.random.default_rng(2)
    shape = (4, 3, 40, 50) if layout == "NCHW" else (4, 40, 50, 3)
    x = rng.integers(0, 256, shape).astype(dtype) if dtype == np.uint8 else rng.normal(size=shape).astype(dtype)
    rects, values = ops.draw_random_erasing_params(rng, 4, 40, 50, EPSILON=1.0, mode="pixel")
    boxes = ops.draw_cutout_boxes(rng, 4, 40, 50, n_holes=2, length=16)
    gm = ops.draw_hide_and_seek(rng, 4, 40, 50, grid_sizes=(8, 16))
    masks = ops.draw_gridmask_masks(rng, 4, 40, 50, d1=8, d2=20, rotate=20)
    if dtype == np.uint8:
        values = [[np.abs(v) * 50 for v in vs] for vs in values]
    cpu, dev = x.copy(), to_dev(x)
    for f in (lambda b: ops.random_erasing(b, rects, values, layout=layout),
              lambda b: ops.cutout(b, boxes, layout=layout, value=(1, 2, 3)),
              lambda b: ops.hide_and_seek(b, gm, layout=layout),
              lambda b: ops.gridmask(b, masks, layout=layout)):
        f(cpu)
        f(dev)
        np.testing.assert_array_equal(to_host(dev), cpu)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint8])
def test_mix_ops_match_cpu(dtype):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (6, 3, 20, 24)).astype(dtype)
    perm = rng.permutation(6)
    lam = rng.uniform(0, 1, 6)
    cpu, *_ = ops.mixup(x, None, lam, perm=perm)
    dev, *_ = ops.mixup(to_dev(x), None, lam, perm=perm)
    tol = 1 if dtype == np.uint8 else 1e-2
    assert np.abs(to_host(dev).astype(np.float64) - cpu.astype(np.float64)).max() <= tol
    boxes = np.array([[2, 3, 10, 12]] * 6)
    cpu, *_ = ops.cutmix(x, None, perm=perm, box=boxes)
    dev, *_ = ops.cutmix(to_dev(x), None, perm=perm, box=boxes)
    np.testing.assert_array_equal(to_host(dev), cpu)


def test_packed_device_buffer():
    rng = np.random.default_rng(9)
    imgs = [rng.integers(0, 256, shp, dtype=np.uint8) for shp in [(30, 40, 3), (17, 25), (50, 20, 4)]]
    offsets = np.cumsum([0] + [im.size for im in imgs[:-1]])
    buf = to_dev(np.concatenate([im.ravel() for im in imgs]))
    views = ops.unpack_images(buf, offsets, [im.shape for im in imgs])
    got = to_host(ops.resize_crop_normalize(views, None, 12))
    np.testing.assert_allclose(got, ops.resize_crop_normalize(imgs, None, 12), atol=2e-5)


def test_device_errors():
    img = to_dev(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="outside"):
        ops.resize_crop_normalize([img], [(0, 0, 9, 8)], 4)
    with pytest.raises(TypeError, match="mix host and CUDA"):
        ops.resize_crop_normalize([img, np.zeros((8, 8, 3), np.uint8)], None, 4)
    with pytest.raises(ValueError, match="out"):
        ops.resize_crop_normalize([img], None, 4, out=np.zeros((1, 3, 4, 4), np.float32))


AUG_CASES = [
    ("invert", lambda A, x: A.invert(x)),
    ("posterize", lambda A, x: A.posterize(x, 3)),
    ("solarize", lambda A, x: A.solarize(x, 100)),
    ("equalize", lambda A, x: A.equalize(x)),
    ("autocontrast", lambda A, x: A.autocontrast(x)),
    ("brightness", lambda A, x: A.brightness(x, 1.37)),
    ("contrast", lambda A, x: A.contrast(x, 0.63)),
    ("color", lambda A, x: A.color(x, 1.9)),
    ("sharpness", lambda A, x: A.sharpness(x, 1.5)),
    ("rotate_nearest", lambda A, x: A.rotate(x, 13.7, fill=(128, 128, 128))),
    ("rotate_bilinear", lambda A, x: A.rotate(x, -30, interpolation="bilinear")),
    ("shear_bicubic", lambda A, x: A.affine(x, A.shear_x_matrix(0.3), interpolation="bicubic", fill=128)),
    ("translate", lambda A, x: A.affine(x, A.translate_x_matrix(20.5))),
    ("scale_nearest", lambda A, x: A.affine(x, (0.5, 0.0, 3.0, 0.0, 0.5, 2.0), size=(31, 47))),
]


@pytest.mark.parametrize("name, fn", AUG_CASES, ids=[c[0] for c in AUG_CASES])
def test_augment_matches_cpu(name, fn):
    import hubcls.ops.augment as A

    rng = np.random.default_rng(4)
    batch = rng.integers(0, 256, (3, 37, 53, 3), dtype=np.uint8)
    batch[1] = (batch[1] // 4) + 60  # a low-contrast image for equalize / autocontrast
    np.testing.assert_array_equal(to_host(fn(A, to_dev(batch))), fn(A, batch))
    gray = [rng.integers(0, 256, (29, 41), dtype=np.uint8), rng.integers(0, 256, (40, 30), dtype=np.uint8)]
    got = fn(A, [to_dev(g) for g in gray])
    for g_dev, g in zip(got, fn(A, gray)):
        np.testing.assert_array_equal(to_host(g_dev), g)
