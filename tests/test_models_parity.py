"""Parity with pip paddleclas 2.6 in the key schemes paddleclas 2.6 cannot produce: release/2.0 names
for the legendary ResNet (derived here independently, by position, from the release/2.0 module
order) and the Paddle 1.x static ``.tar`` format (written with Paddle's own LoDTensor serializer).

The generic parity check of every architecture (paddleclas's random weights -> .pdparams -> hubcls,
same logits) is in tests/test_models_all.py, on the model instance the other generic checks share.
"""
from __future__ import annotations

import tarfile

import numpy as np
import pytest
from _models_common import build_peer, logits, make_input, peer_backbone, randomize

paddle = pytest.importorskip("paddle")
peer_backbone()
import hubcls  # noqa: E402

ATOL = 1e-4


# ---------------------------------------------------------------------------------------------
# release/2.0 key scheme of the legendary ResNet. The release/2.0 modules (ppcls/modeling/
# architectures/resnet.py, resnet_vd.py) register, in order: the stem (`conv`, or conv1_1..conv1_3
# for vd), the blocks (resnet: named res2a..; resnet_vd: bb_<stage>_<i>), each holding conv0, conv1,
# (conv2), (short), each a ConvBNLayer of `_conv` + `_batch_norm`, then `out`. We list those names
# and pair them by position with paddleclas 2.6's legendary state_dict (same module order).
def release20_resnet_keys(layers, vd):
    depth = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}[layers]
    cb = lambda p: [f"{p}._conv.weight"] + [f"{p}._batch_norm.{s}" for s in ("weight", "bias", "_mean", "_variance")]
    keys = []
    for stem in (["conv1_1", "conv1_2", "conv1_3"] if vd else ["conv"]):
        keys += cb(stem)
    for s, n in enumerate(depth):
        for i in range(n):
            if vd:
                blk = f"bb_{s}_{i}"
            elif layers in (101, 152) and s == 2:
                blk = f"res{s + 2}a" if i == 0 else f"res{s + 2}b{i}"
            else:
                blk = f"res{s + 2}{chr(97 + i)}"
            convs = ["conv0", "conv1"] + (["conv2"] if layers >= 50 else []) + (["short"] if i == 0 else [])
            for c in convs:
                keys += cb(f"{blk}.{c}")
    return keys + ["out.weight", "out.bias"]


@pytest.mark.parametrize("name,layers,vd", [("ResNet18", 18, False), ("ResNet50_vd", 50, True),
                                            ("ResNet101", 101, False), ("ResNet34_vd", 34, True)])
def test_release20_scheme_resnet(name, layers, vd, tmp_path):
    peer = build_peer(name)
    state = randomize(peer)
    legendary = list(state.keys())
    old = release20_resnet_keys(layers, vd)
    assert len(old) == len(legendary)
    path = tmp_path / "r20.pdparams"
    paddle.save({o: state[k] for o, k in zip(old, legendary)}, str(path))
    ours = hubcls.create_model(name)
    from hubcls.models._weights import load_pretrained

    assert load_pretrained(ours, path) == "2.0"
    ours.eval()
    x = make_input(64)
    assert float(np.abs(logits(peer, x) - logits(ours, x)).max()) <= ATOL


# ---------------------------------------------------------------------------------------------
# Paddle 1.x static weights. paddleclas 2.6's model_zoo modules still give each parameter its
# Paddle 1.x name (ParamAttr(name=...)), so they tell us the static file names independently.
def write_static_tar(model, tar_path, folder):
    from paddle.base import core

    tmp = tar_path.parent / folder
    tmp.mkdir()
    for v in model.state_dict().values():
        t = core.DenseTensor()
        t.set(v.numpy(), core.CPUPlace())
        core.save_dense_tensor(t, str(tmp / v.name))
    with tarfile.open(tar_path, "w") as tf:
        tf.add(tmp, arcname=folder)


@pytest.mark.parametrize("name", ["SE_ResNet18_vd", "ResNeXt50_vd_32x4d", "SE_ResNeXt50_32x4d", "ResNet50_vc"])
def test_static_tar_matches_paddleclas(name, tmp_path):
    peer = build_peer(name)
    randomize(peer)
    tar = tmp_path / f"{name}_pretrained.tar"
    write_static_tar(peer, tar, f"{name}_pretrained")
    ours = hubcls.create_model(name, pretrained=str(tar))
    ours.eval()
    if getattr(ours, "static_dropout", 0.0):
        # the 2020 program scaled its classifier input by 1 - p (fluid's inference-time dropout);
        # static weights load with that scale folded in, paddleclas 2.6 has no dropout there
        peer.out.weight.set_value(peer.out.weight.numpy() * (1.0 - ours.static_dropout))
    x = make_input(64)
    assert float(np.abs(logits(peer, x) - logits(ours, x)).max()) <= ATOL


def test_static_names_of_legendary_resnet():
    """Spot checks against release/2.0's static ResNet (fluid conv_bn_layer naming)."""
    from hubcls.models._weights import static_names

    names = set(static_names(hubcls.create_model("ResNet101")).values())
    for expected in ("conv1_weights", "bn_conv1_scale", "bn_conv1_variance", "res2a_branch1_weights",
                     "res4b22_branch2c_weights", "bn4b22_branch2c_mean", "res5c_branch2b_weights",
                     "fc_0.w_0", "fc_0.b_0"):
        assert expected in names
    vd = set(static_names(hubcls.create_model("ResNet18_vd")).values())
    for expected in ("conv1_1_weights", "bnv1_1_offset", "conv1_3_weights", "res2a_branch2b_weights",
                     "res3a_branch1_weights", "bn5b_branch2a_scale"):
        assert expected in vd
    assert "res2a_branch1_weights" in vd  # the first block's projection shortcut (no avg-pool there)


# ---------------------------------------------------------------------------------------------
# PaddleClas's model arguments beyond the class count (PaddleClas 2.x configs use them): the same
# .pdparams gives the same logits in both, and channels-last gives the channels-first logits.
def _peer_with_kwargs(name, **kwargs):
    peer = build_peer(name, **kwargs)
    for layer in peer.sublayers():
        # paddleclas 2.6's DiverseBranchBlock keeps its identity kernel in float64, which Paddle 3
        # refuses to convolve with float32 weights; its float32 copy is the same kernel
        if hasattr(layer, "id_tensor"):
            layer.id_tensor = layer.id_tensor.astype("float32")
    randomize(peer)
    return peer


@pytest.mark.parametrize("name,kwargs,channels,size", [
    ("ResNet50", dict(data_format="NHWC", input_image_channel=4), 4, 64),   # ResNet50_amp_O*_ultra.yaml
    ("ResNet50_vd", dict(data_format="NHWC"), 3, 64),
    ("ResNet18", dict(layer_type="DiverseBranchBlock", use_first_short_conv=False), 3, 64),  # ResNet18_dbb.yaml
    ("ResNeXt50_32x4d", dict(data_format="NHWC", input_image_channel=4), 4, 64),
    ("SE_ResNeXt50_32x4d", dict(data_format="NHWC", input_image_channel=4), 4, 64),  # SE_ResNeXt101_..._ultra
    ("MobileNetV2_x0_25", dict(data_format="NHWC"), 3, 64),
    ("GoogLeNet", dict(data_format="NHWC"), 3, 224),
])
def test_paddleclas_model_kwargs(name, kwargs, channels, size, tmp_path):
    peer = _peer_with_kwargs(name, **kwargs)
    path = tmp_path / "w.pdparams"
    paddle.save(peer.state_dict(), str(path))
    ours = hubcls.create_model(name, pretrained=str(path), **kwargs)
    ours.eval()
    x = paddle.to_tensor(np.random.RandomState(1).standard_normal((1, channels, size, size)).astype("float32"))
    ref = logits(peer, x)
    got = logits(ours, x)
    assert float(np.abs(ref - got).max()) <= ATOL * max(1.0, float(np.abs(ref).max()))
    if kwargs.get("data_format") == "NHWC":
        nchw = hubcls.create_model(name, pretrained=str(path), **{k: v for k, v in kwargs.items() if k != "data_format"})
        nchw.eval()
        np.testing.assert_allclose(logits(nchw, x), got, rtol=1e-5, atol=1e-5)
        # features_only maps leave a channels-last model in NCHW, equal to the channels-first model's
        fa = hubcls.create_model(name, pretrained=str(path), features_only=True, **kwargs)
        fb = hubcls.create_model(name, pretrained=str(path), features_only=True,
                                 **{k: v for k, v in kwargs.items() if k != "data_format"})
        fa.eval()
        fb.eval()
        with paddle.no_grad():
            for a, b in zip(fa(x), fb(x)):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_model_kwarg_errors():
    with pytest.raises(ValueError, match="data_format must be 'NCHW' or 'NHWC'"):
        hubcls.create_model("ResNet18", data_format="CHWN")
    with pytest.raises(ValueError, match="layer_type must be one of ConvBNLayer, DiverseBranchBlock"):
        hubcls.create_model("ResNet18", layer_type="RepVGGBlock")
    with pytest.raises(ValueError, match="use_first_short_conv=False needs basic blocks"):
        hubcls.create_model("ResNet50", use_first_short_conv=False)
    with pytest.raises(ValueError, match="NCHW only"):
        hubcls.create_model("ResNet18", layer_type="DiverseBranchBlock", data_format="NHWC")
