"""Generic checks over every registered architecture (all families): forward, backward, output
shape, eval determinism, features_only shapes, classifier reset.

Each model is built once (module-scoped fixture) and checked at a small input (64x64 unless the
family declares ``fixed_input_size``); giant models (> 300M params) are marked slow.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from _models_common import arch_names, model_params, test_input_size

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models._features import FeatureExtractor  # noqa: E402

NAMES = arch_names()


@pytest.fixture(scope="module", params=model_params(NAMES))
def built(request):
    name = request.param
    paddle.seed(0)
    model = hubcls.create_model(name)
    size = test_input_size(model)
    x = paddle.to_tensor(np.random.RandomState(0).standard_normal((1, 3, size, size)).astype("float32"))
    yield name, model, x
    del model


def test_registry_is_populated():
    assert len(NAMES) >= 40
    from hubcls.models import _families

    assert not _families.FAILED, f"family files failed to import: {_families.FAILED}"


def test_forward_backward(built):
    name, model, x = built
    model.train()
    try:
        out = model(x)
    except Exception as exc:  # noqa: BLE001 - turn into a pointer at the contract
        pytest.fail(f"{name}: forward at {tuple(x.shape)} failed ({type(exc).__name__}: {exc}). If the "
                    "architecture needs a fixed input size, set `fixed_input_size` on the model "
                    "(see hubcls/models/_features.py)")
    assert tuple(out.shape) == (1, model.pretrained_cfg.num_classes)
    assert np.isfinite(out.numpy()).all()
    out.sum().backward()
    params = [p for p in model.parameters() if not p.stop_gradient]
    with_grad = [p for p in params if p.grad is not None]
    # every trainable parameter takes part in the forward pass
    assert len(with_grad) == len(params), f"{len(params) - len(with_grad)} parameters got no gradient"
    cls = model.get_classifier() if hasattr(model, "get_classifier") else None
    if cls is not None and getattr(cls, "weight", None) is not None:
        assert float(cls.weight.grad.abs().sum()) > 0
    model.clear_gradients()


def test_eval_deterministic_and_head_split(built):
    name, model, x = built
    model.eval()
    with paddle.no_grad():
        a = model(x).numpy()
        b = model(x).numpy()
        feats = model.forward_features(x)
        c = model.forward_head(feats).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)
    assert feats.ndim == 4 and feats.shape[1] == model.num_features


def test_features_only(built):
    name, model, x = built
    model.eval()
    info = model.feature_info
    assert len(info) >= 3, "feature_info must describe at least 3 stages"
    ext = FeatureExtractor(model)
    try:
        with paddle.no_grad():
            outs = ext(x)
    finally:
        ext.remove_hooks()
    assert len(outs) == len(info)
    size = x.shape[-1]
    reds = [f["reduction"] for f in info]
    assert reds == sorted(reds), "feature_info must go from shallow to deep"
    for o, f in zip(outs, info):
        assert o.shape[1] == f["num_chs"], f"{f['module']}: {o.shape[1]} channels, feature_info says {f['num_chs']}"
        # the claimed stride bounds the size from above ('valid' convs, e.g. SqueezeNet's or
        # Inception's, may lose many more pixels at a small input, so no lower bound)
        assert o.shape[2] <= math.ceil(size / f["reduction"]) + 1, \
            f"{f['module']}: {o.shape[2]}px at reduction {f['reduction']} of a {size}px input"
    sizes = [o.shape[2] for o in outs]
    assert sizes == sorted(sizes, reverse=True), f"stage sizes {sizes} must not grow with depth"


def test_reset_classifier(built):
    name, model, x = built
    model.eval()
    with paddle.no_grad():
        feats_before = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    old = model.get_classifier()
    try:
        model.reset_classifier(7)
        with paddle.no_grad():
            out = model(x)
        assert tuple(out.shape) == (1, 7)
        model.reset_classifier(0)
        with paddle.no_grad():
            pooled = model(x).numpy()
        np.testing.assert_allclose(pooled.reshape(1, -1), feats_before.reshape(1, -1), rtol=1e-5, atol=1e-5)
    finally:
        from hubcls.models._features import _set_sublayer

        _set_sublayer(model, model.classifier_name, old)


# Stage channels and strides pinned per family (the generic test above checks each model against its
# own feature_info; this table checks feature_info itself). exact: maps are size // reduction;
# otherwise 'valid' convs/pools may shrink a map, never by a further factor of 2.
FEATURES = [
    # name, input size, out_indices, channels, reductions, exact
    ("DenseNet121", 64, None, [64, 256, 512, 1024, 1024], [2, 4, 8, 16, 32], True),
    ("DPN68", 64, None, [10, 144, 320, 704, 832], [2, 4, 8, 16, 32], True),
    ("ResNeSt50", 64, None, [64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32], True),
    ("RegNetX_4GF", 64, None, [32, 80, 240, 560, 1360], [2, 4, 8, 16, 32], True),
    ("Xception41", 64, None, [64, 128, 256, 728, 2048], [2, 4, 8, 16, 32], True),
    ("Xception71", 64, None, [64, 256, 728, 728, 2048], [2, 4, 8, 16, 32], True),
    ("Xception41_deeplab", 64, None, [64, 128, 256, 728, 2048], [2, 4, 8, 16, 32], True),
    ("ResNeXt101_32x8d_wsl", 64, (1, 2, 3, 4), [256, 512, 1024, 2048], [4, 8, 16, 32], True),
    ("GoogLeNet", 96, None, [64, 192, 480, 832, 1024], [2, 4, 8, 16, 32], False),
    ("InceptionV3", 96, None, [32, 80, 768, 2048], [2, 4, 16, 32], False),
    ("InceptionV4", 96, None, [32, 160, 1024, 1536], [2, 4, 16, 32], False),
]


@pytest.mark.parametrize("name, size, out_indices, chans, reds, exact", FEATURES, ids=[f[0] for f in FEATURES])
def test_features_only_pinned(name, size, out_indices, chans, reds, exact):
    m = hubcls.create_model(name, features_only=True, out_indices=out_indices)
    m.eval()
    assert m.channels() == chans and m.reduction() == reds
    x = np.random.RandomState(0).standard_normal((1, 3, size, size)).astype("float32")
    with paddle.no_grad():
        feats = m(paddle.to_tensor(x))
    assert [f.shape[1] for f in feats] == chans
    sizes = [f.shape[2] for f in feats]
    if exact:
        assert [tuple(f.shape) for f in feats] == [(1, c, size // r, size // r) for c, r in zip(chans, reds)]
    else:
        assert all(size / (2 * r) - 1 <= s <= size / r for s, r in zip(sizes, reds)), sizes
        assert sizes == sorted(sizes, reverse=True)


def test_features_only_out_indices():
    f = hubcls.create_model("ResNet50_vd", features_only=True, out_indices=(1, 2, 3))
    f.eval()
    assert f.channels() == [512, 1024, 2048] and f.reduction() == [8, 16, 32]
    assert f.pretrained_cfg.name == "ResNet50_vd"
    with paddle.no_grad():
        outs = f(paddle.zeros([2, 3, 96, 96]))
    assert [tuple(o.shape) for o in outs] == [(2, 512, 12, 12), (2, 1024, 6, 6), (2, 2048, 3, 3)]
    f2 = hubcls.create_model("SE_ResNeXt50_32x4d", features_only=True, out_indices=(-1,))
    assert f2.channels() == [2048] and f2.reduction() == [32]
    with pytest.raises(ValueError, match="out_indices .* out of range.*4 stages"):
        hubcls.create_model("ResNet18", features_only=True, out_indices=(0, 4))
