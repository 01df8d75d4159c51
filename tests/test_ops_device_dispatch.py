"""The CUDA dispatch layer of hubcls.ops (argument plumbing: pointers, strides, geometry, streams,
output allocation checks), exercised without a GPU: a `__cuda_array_interface__` object over host
memory stands in for a device array, and the hubcls._C CUDA entry points are replaced by adapters
that rebuild arrays from the raw pointers they receive and run the *CPU* kernels on them. The CUDA
kernels themselves are tested against the CPU kernels in tests/test_ops_cuda.py (on a GPU)."""
import ctypes

import numpy as np
import pytest

import hubcls.ops as ops
from hubcls import _C

STREAM = 7


class FakeCuda:
    def __init__(self, a):
        self.a = a
        self.__cuda_array_interface__ = {
            "shape": a.shape, "typestr": a.dtype.str, "data": (a.ctypes.data, False),
            "strides": None if a.flags.c_contiguous else a.strides, "version": 3, "stream": STREAM}

    def __getitem__(self, idx):  # slicing / reshape like a framework tensor (for unpack_images)
        return FakeCuda(self.a[idx])

    def reshape(self, shape):
        return FakeCuda(self.a.reshape(shape))

    @property
    def shape(self):
        return self.a.shape


def _arr(ptr, shape, strides, dtype):
    """A NumPy view of raw memory at ptr (what a kernel would see)."""
    dtype = np.dtype(dtype)
    extent = sum((s - 1) * st for s, st in zip(shape, strides)) + dtype.itemsize
    buf = (ctypes.c_uint8 * extent).from_address(ptr)
    base = np.frombuffer(buf, dtype=np.uint8)
    return np.lib.stride_tricks.as_strided(base.view(dtype) if extent % dtype.itemsize == 0 else base, shape, strides)


DT = {_C.OutDType.float32: np.float32, _C.OutDType.float16: np.float16, _C.OutDType.uint8: np.uint8}
calls = []


@pytest.fixture(autouse=True)
def fake_device(monkeypatch):
    if not _C.build_info()["cuda_compiled"]:
        pytest.skip("CPU-only build: the CUDA entry points do not exist")
    calls.clear()
    monkeypatch.setattr(_C, "cuda_pointer_device", lambda p: 0, raising=False)

    def rcn(ptrs, geoms, boxes, flips, out, oh, ow, mean, std, scale, interp, aa, nchw, dtype, swap, device, stream):
        calls.append(("rcn", device, stream))
        imgs = []
        for p, (h, w, c, rs) in zip(ptrs, geoms):
            a = _arr(p, (h, w, c), (rs, c, 1), np.uint8)
            imgs.append(a[:, :, 0] if c == 1 else a)
        n = len(ptrs)
        shape = (n, 3, oh, ow) if nchw else (n, oh, ow, 3)
        o = _arr(out, shape, tuple(np.empty(shape, DT[dtype]).strides), DT[dtype])
        _C.resize_crop_normalize(imgs, boxes, flips, o, oh, ow, mean, std, scale, interp, aa, nchw, dtype, swap, 1)

    def batch_of(ptr, shape, dtype):
        return _arr(ptr, tuple(shape), tuple(np.empty(shape, DT[dtype]).strides), DT[dtype])

    def fill_rects(ptr, shape, nchw, dtype, *rest):
        calls.append(("fill", rest[-2], rest[-1]))
        _C.fill_rects(batch_of(ptr, shape, dtype), nchw, *rest[:-2], 1)

    def mask_fill(ptr, shape, nchw, dtype, masks, value, device, stream):
        calls.append(("mask", device, stream))
        _C.mask_fill(batch_of(ptr, shape, dtype), nchw, masks, value, 1)

    def mix(paste, ptr, shape, nchw, dtype, perm, params, out, device, stream):
        calls.append(("mix", device, stream))
        x, o = batch_of(ptr, shape, dtype), batch_of(out, shape, dtype)
        (_C.mix_paste if paste else _C.mix_blend)(x, nchw, perm, params, o, 1)

    def augment(op, in_ptrs, in_geoms, out_ptrs, out_geoms, params, interp, fill, device, stream):
        calls.append(("aug", device, stream))
        view = lambda p, g: _arr(p, (g[0], g[1], g[2]), (g[3], g[2], 1), np.uint8)
        ins = [view(p, g) for p, g in zip(in_ptrs, in_geoms)]
        outs = [view(p, g) for p, g in zip(out_ptrs, out_geoms)]
        _C.augment(op, ins, outs, params, interp, fill, 1)

    for name, fn in [("resize_crop_normalize_cuda", rcn), ("fill_rects_cuda", fill_rects), ("mask_fill_cuda", mask_fill),
                     ("mix_cuda", mix), ("augment_cuda", augment)]:
        monkeypatch.setattr(_C, name, fn, raising=False)


def test_resize_list_batch_packed_and_out():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(30, 40, 3), (17, 25), (50, 20, 4)]]
    boxes = [(1, 2, 20, 10), (0, 0, 25, 17), (2.5, 3.5, 10, 30)]
    kw = dict(flip=[True, False, True], dtype="float16", layout="NHWC", channel_order="BGR")
    ref = ops.resize_crop_normalize(imgs, boxes, (9, 11), **kw)
    out = np.zeros((3, 9, 11, 3), np.float16)
    got = ops.resize_crop_normalize([FakeCuda(i) for i in imgs], boxes, (9, 11), out=FakeCuda(out), **kw)
    np.testing.assert_array_equal(out, ref)
    assert calls[-1] == ("rcn", 0, STREAM) and isinstance(got, FakeCuda)
    # strided device image (a crop view): row stride passed through
    big = rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)
    out1 = np.zeros((1, 3, 8, 8), np.float32)
    ops.resize_crop_normalize([FakeCuda(big[5:40, 10:50])], None, 8, out=FakeCuda(out1))
    np.testing.assert_array_equal(out1, ops.resize_crop_normalize([big[5:40, 10:50]], None, 8))
    # NHWC device batch: per-image pointers step by the batch stride
    batch = rng.integers(0, 256, (4, 21, 33, 3), dtype=np.uint8)
    out4 = np.zeros((4, 3, 7, 7), np.float32)
    ops.resize_crop_normalize(FakeCuda(batch), None, 7, out=FakeCuda(out4))
    np.testing.assert_array_equal(out4, ops.resize_crop_normalize(batch, None, 7))
    # packed buffer + offsets
    offsets = np.cumsum([0] + [im.size for im in imgs[:-1]])
    buf = np.concatenate([im.ravel() for im in imgs])
    views = ops.unpack_images(FakeCuda(buf), offsets, [im.shape for im in imgs])
    outp = np.zeros((3, 3, 9, 11), np.float32)
    ops.resize_crop_normalize(views, boxes, (9, 11), out=FakeCuda(outp))
    np.testing.assert_array_equal(outp, ops.resize_crop_normalize(imgs, boxes, (9, 11)))


def test_resize_device_errors():
    img = FakeCuda(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="allocate"):  # unknown framework: needs out=
        ops.resize_crop_normalize([img], None, 4)
    with pytest.raises(ValueError, match="CUDA array"):
        ops.resize_crop_normalize([img], None, 4, out=np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        ops.resize_crop_normalize([img], None, 4, out=FakeCuda(np.zeros((1, 3, 4, 5), np.float32)))
    with pytest.raises(TypeError, match="mix host and CUDA"):
        ops.resize_crop_normalize([img, np.zeros((8, 8, 3), np.uint8)], None, 4)
    with pytest.raises(ValueError, match="outside"):
        ops.resize_crop_normalize([img], [(0, 0, 9, 8)], 4, out=FakeCuda(np.zeros((1, 3, 4, 4), np.float32)))
    with pytest.raises(ValueError, match="packed pixels"):
        ops.resize_crop_normalize([FakeCuda(np.zeros((8, 16, 3), np.uint8)[:, ::2])], None, 4,
                                  out=FakeCuda(np.zeros((1, 3, 4, 4), np.float32)))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_erase_and_mix_plumbing(layout):
    rng = np.random.default_rng(1)
    shape = (3, 3, 20, 24) if layout == "NCHW" else (3, 20, 24, 3)
    x = rng.normal(size=shape).astype(np.float32)
    rects, values = ops.draw_random_erasing_params(rng, 3, 20, 24, EPSILON=1.0, mode="pixel")
    masks = ops.draw_gridmask_masks(rng, 3, 20, 24, d1=5, d2=12)
    gm = ops.draw_hide_and_seek(rng, 3, 20, 24, grid_sizes=(4, 8))
    cpu, dev = x.copy(), x.copy()
    for f in (lambda b: ops.random_erasing(b, rects, values, layout=layout),
              lambda b: ops.gridmask(b, masks, layout=layout),
              lambda b: ops.hide_and_seek(b, gm, layout=layout, value=2.0)):
        f(cpu)
        r = f(FakeCuda(dev))
        assert isinstance(r, FakeCuda)
        np.testing.assert_array_equal(dev, cpu)
    assert {c[0] for c in calls} == {"fill", "mask"} and all(c[1:] == (0, STREAM) for c in calls)
    perm = rng.permutation(3)
    out = np.zeros_like(x)
    ops.mixup(FakeCuda(x), None, 0.3, perm=perm, layout=layout, out=FakeCuda(out))
    np.testing.assert_allclose(out, ops.mixup(x, None, 0.3, perm=perm, layout=layout)[0], rtol=1e-6)
    out2 = np.zeros_like(x)
    _, _, _, lam, _, box = ops.cutmix(FakeCuda(x), None, perm=perm, box=(2, 3, 10, 12), layout=layout, out=FakeCuda(out2))
    np.testing.assert_array_equal(out2, ops.cutmix(x, None, perm=perm, box=(2, 3, 10, 12), layout=layout)[0])
    with pytest.raises(ValueError, match="overlap"):
        ops.mixup(FakeCuda(x), None, 0.3, perm=perm, layout=layout, out=FakeCuda(x))


def test_augment_plumbing():
    import hubcls.ops.augment as A

    rng = np.random.default_rng(2)
    batch = rng.integers(0, 256, (3, 19, 23, 3), dtype=np.uint8)
    # the fake framework cannot allocate: exercise the same pointer/geometry code through a
    # monkeypatched allocator backed by NumPy
    import hubcls.ops._device as D

    def empty(like, shape, dtype):
        return FakeCuda(np.zeros(shape, dtype))

    mp = pytest.MonkeyPatch()
    mp.setattr(D, "device_empty", empty)
    try:
        got = A.contrast(FakeCuda(batch), [0.5, 1.0, 1.5])
        np.testing.assert_array_equal(got.a, A.contrast(batch, [0.5, 1.0, 1.5]))
        got = A.rotate([FakeCuda(batch[0]), FakeCuda(batch[1, :, :, 0].copy())], [10, -20], interpolation="bilinear")
        np.testing.assert_array_equal(got[0].a, A.rotate(batch[0], 10, interpolation="bilinear"))
        np.testing.assert_array_equal(got[1].a, A.rotate(batch[1, :, :, 0].copy(), -20, interpolation="bilinear"))
        got = A.affine(FakeCuda(batch[2]), (0.5, 0, 3, 0, 0.5, 2), size=(7, 9), fill=(1, 2, 3))
        np.testing.assert_array_equal(got.a, A.affine(batch[2], (0.5, 0, 3, 0, 0.5, 2), size=(7, 9), fill=(1, 2, 3)))
        assert calls and all(c == ("aug", 0, STREAM) for c in calls)
        assert A.invert(FakeCuda(np.zeros((0, 4, 5, 3), np.uint8))).shape == (0, 4, 5, 3)
    finally:
        mp.undo()
