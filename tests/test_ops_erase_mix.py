"""Erase (cutout, random_erasing, hide_and_seek, gridmask) and mix (mixup, cutmix) ops against the
NumPy reference, and the PaddleClas policy draws against their definitions."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hubcls.ops as ops
from hubcls.ops import reference as R

DTYPES = [np.float32, np.float16, np.uint8]


def _batch(rng, dtype, layout, n=4, c=3, h=20, w=28):
    shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.normal(0, 1, shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_cutout_matches_reference(dtype, layout):
    rng = np.random.default_rng(0)
    x = _batch(rng, dtype, layout)
    boxes = [np.array([[2, 3, 10, 9], [-5, -5, 4, 3]]), np.zeros((0, 4)), np.array([[20, 15, 40, 40]]), [[0, 0, 28, 20]]]
    ref = R.fill_rects(x, boxes, layout=layout, value=(0.5, 1.0, 200))
    got = ops.cutout(x, boxes, layout=layout, value=(0.5, 1.0, 200))
    assert got is x  # in place
    np.testing.assert_array_equal(x, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_random_erasing_const_and_pixel_values(dtype, layout):
    rng = np.random.default_rng(1)
    x = _batch(rng, dtype, layout)
    rects, values = ops.draw_random_erasing_params(rng, 4, 20, 28, EPSILON=1.0, mode="pixel")
    rects2, values2 = ops.draw_random_erasing_params(rng, 4, 20, 28, EPSILON=1.0, mode="rand")
    rects = [np.concatenate([a, b]) for a, b in zip(rects, rects2)]
    values = [list(a) + list(b) for a, b in zip(values, values2)]
    if dtype == np.uint8:
        values = [[np.abs(v) * 100 for v in vs] for vs in values]
    ref = R.fill_rects(x, rects, values, layout=layout)
    ops.random_erasing(x, rects, values, layout=layout)
    np.testing.assert_array_equal(x, ref)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_hide_and_seek_and_gridmask(layout):
    rng = np.random.default_rng(2)
    x = _batch(rng, np.float32, layout, n=3, h=40, w=50)
    gm = ops.draw_hide_and_seek(rng, 3, 40, 50, grid_sizes=(16, 0, 32))
    rects = [ops.erase.grid_mask_rects(g, m) for g, m in gm]
    ref = R.fill_rects(x, rects, layout=layout)
    ops.hide_and_seek(x, gm, layout=layout)
    np.testing.assert_array_equal(x, ref)
    masks = ops.draw_gridmask_masks(rng, 3, 40, 50, d1=8, d2=20, rotate=30, prob=1.0)
    ref = R.gridmask(x, masks, layout=layout)
    ops.gridmask(x, masks, layout=layout)
    np.testing.assert_array_equal(x, ref)


def test_policy_draws_follow_paddleclas_semantics():
    rng = np.random.default_rng(3)
    boxes = ops.draw_cutout_boxes(rng, 200, 224, 224, n_holes=2, length=112)
    b = np.concatenate(boxes)
    assert b.shape == (400, 4) and b.min() >= 0 and b[:, 2].max() <= 224
    assert np.all(b[:, 2] - b[:, 0] <= 112) and np.any(b[:, 2] - b[:, 0] == 112)
    rects, values = ops.draw_random_erasing_params(rng, 400, 224, 224)  # EPSILON 0.5
    hit = [r for r in rects if len(r)]
    assert 150 < len(hit) < 250
    area = np.array([(r[0, 2] - r[0, 0]) * (r[0, 3] - r[0, 1]) for r in hit]) / 224**2
    assert area.min() >= 0.015 and area.max() <= 0.41
    assert all(np.array_equal(v[0], [0, 0, 0]) for v in values if v)
    gm = ops.draw_hide_and_seek(rng, 500, 224, 224)
    sizes = [g for g, _ in gm]
    assert set(sizes) == {0, 16, 32, 44, 56}
    frac = np.mean([m.mean() for g, m in gm if g])
    assert 0.45 < frac < 0.55
    masks = ops.draw_gridmask_masks(rng, 20, 224, 224)  # d1 96 d2 224 ratio 0.5
    keep = masks.mean(axis=(1, 2))
    assert np.all((keep > 0.1) & (keep < 0.6))  # (1 - 0.5)^2 = 0.25 kept, up to stripe rounding/phase
    assert ops.draw_gridmask_masks(rng, 5, 32, 32, prob=0.0).min() == 1
    assert ops.gridmask_prob(1.0, 120) == 0.5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_mixup(dtype, layout):
    rng = np.random.default_rng(4)
    x = _batch(rng, dtype, layout, n=6)
    labels = np.arange(6) * 10
    mixed, la, lb, lam, perm = ops.mixup(x, labels, alpha=0.4, rng=rng, layout=layout)
    assert isinstance(lam, float) and 0 <= lam <= 1 and sorted(perm) == list(range(6))
    np.testing.assert_array_equal(lb, labels[perm])
    ref = R.mixup(x, perm, lam)
    if dtype == np.uint8:
        assert np.abs(mixed.astype(int) - ref.astype(int)).max() <= 1
    else:
        np.testing.assert_allclose(mixed.astype(np.float32), ref.astype(np.float32), rtol=1e-3, atol=1e-3)
    lam_s = rng.uniform(0, 1, 6)
    mixed, *_ = ops.mixup(x, None, lam_s, perm=perm, layout=layout)
    ref = R.mixup(x, perm, lam_s)
    tol = 1 if dtype == np.uint8 else 1e-3
    assert np.abs(mixed.astype(np.float64) - ref.astype(np.float64)).max() <= tol


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_cutmix(dtype, layout):
    rng = np.random.default_rng(5)
    x = _batch(rng, dtype, layout, n=5)
    mixed, la, lb, lam, perm, box = ops.cutmix(x, np.arange(5), alpha=1.0, rng=rng, layout=layout)
    np.testing.assert_array_equal(mixed, R.cutmix(x, perm, [box] * 5, layout=layout))
    x0, y0, x1, y1 = box
    assert lam == pytest.approx(1 - (x1 - x0) * (y1 - y0) / (20 * 28))
    mixed, _, _, lams, perm, boxes = ops.cutmix(x, None, alpha=1.0, rng=rng, per_sample=True, layout=layout)
    assert boxes.shape == (5, 4) and lams.shape == (5,)
    np.testing.assert_array_equal(mixed, R.cutmix(x, perm, boxes, layout=layout))


def test_bad_inputs():
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(TypeError):
        ops.cutout(x.astype(np.int32), [[], []])
    with pytest.raises(ValueError, match="4-d"):
        ops.cutout(x[0], [[], []])
    with pytest.raises(ValueError, match="per sample"):
        ops.cutout(x, [[]])
    with pytest.raises(ValueError, match="contiguous"):
        ops.cutout(x[:, :, :, ::2], [[], []])
    with pytest.raises(ValueError, match="writeable"):
        ro = x.copy()
        ro.flags.writeable = False
        ops.cutout(ro, [[], []])
    with pytest.raises(ValueError, match="shape"):
        ops.cutout(x, [[[1, 2, 3]], []])
    with pytest.raises(ValueError, match="integer"):
        ops.cutout(x, [[[1.5, 2, 3, 4]], []])
    with pytest.raises(ValueError, match="layout"):
        ops.cutout(x, [[], []], layout="HWC")
    with pytest.raises(ValueError, match="per-pixel"):
        ops.random_erasing(x, [[[0, 0, 4, 4]], []], [[np.zeros((3, 4, 3))], []])
    with pytest.raises(ValueError, match="rects but"):
        ops.random_erasing(x, [[[0, 0, 4, 4]], []], [[], []])
    with pytest.raises(ValueError, match="masks"):
        ops.gridmask(x, np.ones((2, 8, 7), np.uint8))
    with pytest.raises(ValueError, match="grid mask"):
        ops.hide_and_seek(x, [(4, np.ones((3, 3), bool)), (0, None)])
    with pytest.raises(ValueError, match="perm"):
        ops.mixup(x, None, 0.5, perm=[0, 2])
    with pytest.raises(ValueError, match="lam"):
        ops.mixup(x, None, 1.5, perm=[0, 1])
    with pytest.raises(ValueError, match="overlap"):
        ops.mixup(x, None, 0.5, perm=[1, 0], out=x)
    with pytest.raises(ValueError, match="rng"):
        ops.cutmix(x)
    with pytest.raises(ValueError, match="labels"):
        ops.mixup(x, np.arange(3), 0.5, perm=[1, 0])


def test_dlpack_batch_is_modified_in_place():
    paddle = pytest.importorskip("paddle")
    t = paddle.ones([2, 3, 8, 8], dtype="float32")
    ops.cutout(t, [[[0, 0, 4, 4]], []], value=0)
    a = t.numpy()
    assert a[0, :, :4, :4].max() == 0 and a[0].sum() == 3 * 64 - 3 * 16 and a[1].min() == 1


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), h=st.integers(1, 12), w=st.integers(1, 12), c=st.integers(1, 4),
       layout=st.sampled_from(["NCHW", "NHWC"]), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 1000),
       k=st.integers(0, 3))
def test_fuzz_fill_rects(n, h, w, c, layout, dtype, seed, k):
    rng = np.random.default_rng(seed)
    x = _batch(rng, dtype, layout, n=n, c=c, h=h, w=w)
    rects = [rng.integers(-3, max(h, w) + 3, (k, 4)) for _ in range(n)]
    values = [[rng.uniform(0, 50, c) if j % 2 else rng.uniform(0, 50, (max(r[3] - r[1], 0), max(r[2] - r[0], 0), c))
               for j, r in enumerate(rs)] for rs in rects]
    ref = R.fill_rects(x, rects, values, layout=layout)
    ops.random_erasing(x, rects, values, layout=layout)
    np.testing.assert_array_equal(x, ref)
