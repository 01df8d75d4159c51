"""EfficientNet: parity with pip paddleclas 2.6 and PaddleClas's padding modes (static TF-SAME from
the nominal resolution, emulated by pad + crop; DYNAMIC for B0_small)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from _zoo_peer_mobile import check_parity, random_input, randomize

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models import efficientnet as eff  # noqa: E402

F = paddle.nn.functional


@pytest.mark.parametrize("name,size", [("EfficientNetB0", 65), ("EfficientNetB2", 70)])
def test_parity_off_nominal_size(tmp_path, name, size):
    # padding is fixed at build time from the nominal size: other sizes must still match PaddleClas
    check_parity(tmp_path, "model_zoo.efficientnet", name, size=size)


def _tf_same(n, s, k):
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def test_same_padding_is_tensorflow_same():
    for n in range(1, 40):
        for s in (1, 2):
            for k in (1, 3, 5):
                assert eff.same_padding(n, s, k) == _tf_same(n, s, k), (n, s, k)


@pytest.mark.parametrize("size,stride,kernel", [(224, 2, 3), (112, 2, 5), (33, 2, 3), (28, 1, 5)])
def test_same_conv_equals_explicit_asymmetric_padding(size, stride, kernel):
    conv = eff.Conv2ds(4, 6, kernel, stride, padding_type="SAME", input_size=size)
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 4, size, size)).astype("float32"))
    before, after = eff.same_padding(size, stride, kernel)
    assert conv.need_crop == (before != after)
    ref = F.conv2d(F.pad(x, [before, after, before, after]), conv._conv.weight, stride=stride)
    np.testing.assert_allclose(conv(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    assert conv(x).shape[2] == math.ceil(size / stride)


def test_b0_small_has_no_se_and_dynamic_padding():
    small = hubcls.create_model("EfficientNetB0_small")
    b0 = hubcls.create_model("EfficientNetB0")
    assert not any(type(m).__name__ == "SEBlock" for m in small.sublayers())
    assert sum(type(m).__name__ == "SEBlock" for m in b0.sublayers()) == 16
    convs = [m for m in small.sublayers() if isinstance(m, eff.Conv2ds)]
    assert convs and not any(c.need_crop for c in convs)
    stem = small._ef._conv_stem._conv._conv
    assert stem._conv._padding == 1               # ((2 - 1) + (3 - 1)) // 2, both sides
    assert b0._ef._conv_stem._conv._conv.need_crop  # TF SAME at 224, stride 2: pad (0, 1)


def test_numerics_and_names():
    model = hubcls.create_model("EfficientNetB0")
    bns = [m for m in model.sublayers() if isinstance(m, paddle.nn.BatchNorm2D)]
    assert bns and all(abs(bn._epsilon - 1e-3) < 1e-12 for bn in bns)
    keys = set(model.state_dict())
    # PaddleClas's literal sub-layer names (dots inside) are what the official files use
    assert "_ef._blocks.0.._dcn._conv._conv._conv.weight" in keys
    assert "_ef.block.2.._ecn._conv._bn._variance" in keys
    assert "_ef._blocks.0.._se._conv1._conv.bias" in keys
    assert {"_conv._conv._conv.weight", "_fc.weight", "_fc.bias"} <= keys


def test_pretrained_configs():
    for name, res in [("EfficientNetB0", 224), ("EfficientNetB3", 300), ("EfficientNetB7", 600),
                      ("EfficientNetB0_small", 224)]:
        cfg = hubcls.models.resolve(name)
        assert (cfg.input_size, cfg.resize_short, cfg.interpolation) == (res, res + 32, "bicubic")
        assert cfg.url.endswith(f"/dygraph/{name}_pretrained.pdparams")


def test_features_and_head():
    model = hubcls.create_model("EfficientNetB0")
    model.eval()
    feats = hubcls.create_model("EfficientNetB0", features_only=True)
    feats.eval()
    x = paddle.to_tensor(random_input(64, batch=1))
    outs = feats(x)
    assert [o.shape[1] for o in outs] == [16, 24, 40, 112, 1280]
    assert [f["reduction"] for f in feats.feature_info] == [2, 4, 8, 16, 32]
    for out, info in zip(outs, feats.feature_info):
        assert out.shape[2:] == [64 // info["reduction"]] * 2
    # the taps are parameter-free: the state dict is PaddleClas's
    assert not any(k.startswith("_taps") for k in model.state_dict())
    with paddle.no_grad():
        np.testing.assert_array_equal(model.forward_head(model.forward_features(x)).numpy(), model(x).numpy())
    model.reset_classifier(5)
    assert model(x).shape == [1, 5]


def test_drop_connect_drops_whole_residual_branch_in_training():
    args = eff.StageArgs(kernel=3, repeats=1, in_filters=8, out_filters=8, expand=2, stride=1)
    block = eff.MbConvBlock(args, use_se=True, padding_type="SAME", input_size=8, drop_connect_rate=0.5)
    randomize(block)
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((32, 8, 8, 8)).astype("float32"))
    block.eval()
    with paddle.no_grad():
        branch = (block(x) - x).numpy()
    block.train()
    for layer in block.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer.eval()  # isolate drop-connect from batch statistics
    paddle.seed(0)
    with paddle.no_grad():
        got = (block(x) - x).numpy()
    dropped = [np.abs(got[i]).max() == 0 for i in range(32)]
    assert 0 < sum(dropped) < 32
    for i in range(32):
        if not dropped[i]:
            np.testing.assert_allclose(got[i], branch[i] / 0.5, rtol=1e-5, atol=1e-5)
