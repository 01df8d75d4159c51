"""Garbage in, clean errors out: hypothesis throws random (often invalid) arguments at every op; each
call must either succeed or raise ValueError / TypeError — never crash or corrupt memory (run this
file under the AddressSanitizer build too, see docs/preprocessing.md)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import hubcls.ops as ops
import hubcls.ops.augment as A

OK = (ValueError, TypeError)
dims = st.integers(-1, 9)
dtypes = st.sampled_from([np.uint8, np.float32, np.float16, np.int32, np.float64])


def _array(shape, dtype, seed):
    if any(s < 0 for s in shape):
        return np.zeros((0,), np.uint8)
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, shape) if np.dtype(dtype).kind in "ui" else rng.normal(0, 50, shape)).astype(dtype)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(dims, min_size=1, max_size=4), dtype=dtypes, seed=st.integers(0, 99),
       box=st.lists(st.one_of(st.floats(-5, 20), st.sampled_from([float("nan"), float("inf")])), min_size=3, max_size=5),
       size=st.one_of(st.integers(-2, 12), st.tuples(st.integers(-1, 9), st.integers(-1, 9))),
       interp=st.sampled_from(["nearest", "bilinear", "bicubic", "area", "bogus"]), aa=st.booleans(),
       layout=st.sampled_from(["NCHW", "NHWC", "xx"]), out_dtype=st.sampled_from(["float32", "float16", "uint8", "int8"]),
       flip=st.one_of(st.none(), st.lists(st.booleans(), max_size=3)))
def test_resize_crop_normalize_never_crashes(shape, dtype, seed, box, size, interp, aa, layout, out_dtype, flip):
    img = _array(tuple(shape), dtype, seed)
    try:
        out = ops.resize_crop_normalize([img], [box], size, interpolation=interp, antialias=aa, layout=layout,
                                        dtype=out_dtype, flip=flip)
    except OK:
        return
    assert out.shape[0] == 1 and np.all(np.isfinite(out.astype(np.float32)))


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(dims, min_size=3, max_size=5), dtype=dtypes, seed=st.integers(0, 99),
       rect=st.lists(st.integers(-20, 30), min_size=3, max_size=5), layout=st.sampled_from(["NCHW", "NHWC"]),
       value=st.one_of(st.floats(-1e3, 1e3), st.lists(st.floats(-10, 300), max_size=4)),
       perm=st.lists(st.integers(-2, 5), max_size=5), lam=st.floats(-1, 2), op=st.integers(0, 4))
def test_erase_and_mix_never_crash(shape, dtype, seed, rect, layout, value, perm, lam, op):
    x = _array(tuple(shape), dtype, seed)
    n = x.shape[0] if x.ndim else 0
    try:
        if op == 0:
            ops.cutout(x, [[rect]] * n, layout=layout, value=value)
        elif op == 1:
            ops.random_erasing(x, [[rect]] * n, [[value]] * n, layout=layout)
        elif op == 2:
            ops.gridmask(x, np.ones(x.shape[:1] + x.shape[2:] if x.ndim == 4 else (1,), np.uint8), layout=layout, value=value)
        elif op == 3:
            ops.mixup(x, None, lam, perm=perm, layout=layout)
        else:
            ops.cutmix(x, None, perm=perm, box=rect, layout=layout)
    except OK:
        pass


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(dims, min_size=1, max_size=4), dtype=dtypes, seed=st.integers(0, 99),
       op=st.sampled_from(["invert", "posterize", "solarize", "equalize", "autocontrast", "brightness", "contrast",
                           "color", "sharpness", "affine"]),
       param=st.one_of(st.floats(-10, 300), st.just(float("nan"))), matrix=st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=7),
       interp=st.sampled_from(["nearest", "bilinear", "bicubic", "lanczos"]))
def test_augment_never_crashes(shape, dtype, seed, op, param, matrix, interp):
    img = _array(tuple(shape), dtype, seed)
    try:
        if op == "affine":
            A.affine(img, matrix, interpolation=interp, fill=7)
        elif op in ("invert", "equalize", "autocontrast"):
            getattr(A, op)(img)
        else:
            getattr(A, op)(img, param)
    except OK:
        pass
