"""AlexNet, SqueezeNet, VGG (legendary names + release/2.0 key map) and DarkNet53: parity with pip
paddleclas 2.6 and their fixed-size / conv-classifier quirks."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_mobile import build_peer, keys_20, logits, random_input

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models import vgg  # noqa: E402


@pytest.mark.parametrize("name", ["VGG11", "VGG19"])
def test_vgg_20_key_map_matches_release_20_names(name):
    with paddle.LazyGuard():  # names and shapes only: skip initialising 140M parameters
        model = hubcls.create_model(name)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ref = dict(keys_20(name))
    assert {vgg.key_to_20(k): s for k, s in ours.items()} == ref
    assert set(vgg.map_20_keys({k: None for k in ref})) == set(ours)


@pytest.mark.slow
def test_vgg_loads_release_20_file(tmp_path):
    """2.0 names paired with paddleclas 2.6's tensors by position (independent of our key map)."""
    peer = build_peer("legendary_models.vgg", "VGG11")
    renamed = {}
    for (k, v), (k20, shape) in zip(peer.state_dict().items(), keys_20("VGG11")):
        assert tuple(v.shape) == shape and k.rsplit(".", 1)[1] == k20.rsplit(".", 1)[1]
        renamed[k20] = v
    path = tmp_path / "vgg11_20.pdparams"
    paddle.save(renamed, str(path))
    with paddle.LazyGuard():  # every parameter comes from the file; skip the random init
        ours = hubcls.create_model("VGG11", pretrained=str(path))
    ours.eval()
    x = random_input(224, batch=1)
    assert np.abs(logits(ours, x) - logits(peer, x)).max() <= 1e-4 * max(1.0, np.abs(logits(peer, x)).max())


def test_fixed_size_classifier_rejects_other_sizes():
    model = hubcls.create_model("AlexNet")
    model.eval()
    assert model.fixed_input_size == 224
    with pytest.raises(ValueError, match="224x224"):
        model(paddle.to_tensor(random_input(96, batch=1)))
    # the convolutional trunk itself takes any size (detection / features_only use)
    feats = hubcls.create_model("AlexNet", features_only=True)
    outs = feats(paddle.to_tensor(random_input(96, batch=1)))
    assert [o.shape[1] for o in outs] == [f["num_chs"] for f in feats.feature_info] == [64, 256, 256]
    with paddle.LazyGuard():
        vgg11 = hubcls.create_model("VGG11")
    assert vgg11.fixed_input_size == 224
    with pytest.raises(ValueError, match="224x224"):  # raised before any parameter is used
        vgg11.forward_head(paddle.zeros([1, 512, 3, 3]))


def test_squeezenet_conv_classifier():
    model = hubcls.create_model("SqueezeNet1_1", num_classes=10)
    model.eval()
    x = paddle.to_tensor(random_input(64, batch=2))
    out = model(x)
    assert out.shape == [2, 10]
    assert float(out.min()) >= 0.0                   # logits pass ReLU before pooling (PaddleClas)
    assert model.get_classifier().weight.shape == [10, 512, 1, 1]
    model.reset_classifier(0)
    assert model(x).shape == [2, 512]
    feats = hubcls.create_model("SqueezeNet1_0", features_only=True)
    assert [f["reduction"] for f in feats.feature_info] == [2, 4, 8, 16]
    assert [o.shape[1] for o in feats(x)] == [96, 256, 512, 512]


def test_darknet_features_and_config():
    cfg = hubcls.models.resolve("DarkNet53")
    assert (cfg.input_size, cfg.resize_short) == (256, 256)
    feats = hubcls.create_model("DarkNet53", features_only=True, out_indices=(2, 3, 4))
    feats.eval()
    outs = feats(paddle.to_tensor(random_input(64, batch=1)))
    assert [tuple(o.shape[1:]) for o in outs] == [(256, 8, 8), (512, 4, 4), (1024, 2, 2)]


def test_vgg_stop_grad_layers_freezes_first_blocks():
    with paddle.LazyGuard():
        model = vgg.VGG(depth=11, stop_grad_layers=2)
    assert all(not p.trainable for p in model.conv_block_2.parameters())
    assert all(p.trainable for p in model.conv_block_3.parameters())
