"""MobileNetV1/V2/V3: parity with pip paddleclas 2.6, the release/2.0 key scheme of the legendary
families (V1, V3), PaddleClas's MobileNetV3 numerics (hardsigmoid 0.2/0.5, make_divisible(8)) and
the backbone API."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_mobile import build_peer, keys_20, logits, random_input

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models import mobilenet_v1, mobilenet_v3  # noqa: E402
from hubcls.models._layers import make_divisible  # noqa: E402

V1 = ["MobileNetV1_x0_25", "MobileNetV1_x0_5", "MobileNetV1_x0_75", "MobileNetV1"]
V2 = ["MobileNetV2_x0_25", "MobileNetV2_x0_5", "MobileNetV2_x0_75", "MobileNetV2", "MobileNetV2_x1_5",
      "MobileNetV2_x2_0"]
V3 = [f"MobileNetV3_{c}_{s}" for c in ("large", "small") for s in ("x0_35", "x0_5", "x0_75", "x1_0", "x1_25")]
PEER = {"MobileNetV1": "legendary_models.mobilenet_v1", "MobileNetV2": "model_zoo.mobilenet_v2",
        "MobileNetV3": "legendary_models.mobilenet_v3"}


def _peer_module(name):
    return PEER[name[:11]]


# --- the release/2.0 key scheme ------------------------------------------------------------------
LEGENDARY_20 = {"MobileNetV1_x0_25": mobilenet_v1, "MobileNetV1": mobilenet_v1,
                "MobileNetV3_large_x1_0": mobilenet_v3, "MobileNetV3_small_x0_35": mobilenet_v3}


@pytest.mark.parametrize("name", sorted(LEGENDARY_20))
def test_20_key_map_matches_release_20_names(name):
    family = LEGENDARY_20[name]
    ours = {k: tuple(v.shape) for k, v in hubcls.create_model(name).state_dict().items()}
    ref = dict(keys_20(name))
    mapped = {family.key_to_20(k): shape for k, shape in ours.items()}
    assert mapped == ref
    # map_20_keys is the inverse: a 2.0 file's keys come back as ours
    assert set(family.map_20_keys({k: None for k in ref})) == set(ours)


@pytest.mark.parametrize("name", sorted(LEGENDARY_20))
def test_loads_release_20_file(tmp_path, name):
    """A file with the recorded 2.0 names (paired with paddleclas 2.6's legendary tensors by
    position, not by our key map) loads through create_model and gives paddleclas's logits."""
    peer = build_peer(_peer_module(name), name)
    ref_keys = keys_20(name)
    state = peer.state_dict()
    assert len(state) == len(ref_keys)
    renamed = {}
    for (k, v), (k20, shape) in zip(state.items(), ref_keys):
        assert tuple(v.shape) == shape and k.rsplit(".", 1)[1] == k20.rsplit(".", 1)[1], (k, k20)
        renamed[k20] = v
    path = tmp_path / "w20.pdparams"
    paddle.save(renamed, str(path))
    ours = hubcls.create_model(name, pretrained=str(path))
    ours.eval()
    x = random_input(64)
    assert np.abs(logits(ours, x) - logits(peer, x)).max() <= 1e-4


def test_pretrained_configs():
    cfg = hubcls.models.resolve("MobileNetV3_large_x1_0_ssld")
    assert cfg.arch == "MobileNetV3_large_x1_0"
    assert cfg.url.endswith("/dygraph/MobileNetV3_large_x1_0_ssld_pretrained.pdparams")
    assert cfg.url_legendary.endswith("/legendary_models/MobileNetV3_large_x1_0_ssld_pretrained.pdparams")
    assert hubcls.models.resolve("mobilenet_v3_small_x0_35_ssld").arch == "MobileNetV3_small_x0_35"
    assert hubcls.models.resolve("MobileNetV3_large_x1_0_ssld_int8").arch == "MobileNetV3_large_x1_0"
    assert hubcls.models.resolve("MobileNetV1_ssld").arch == "MobileNetV1"
    assert hubcls.models.resolve("mobilenet_v2_imagenet_ssld").arch == "MobileNetV2"
    for name in V1 + V2 + V3:
        cfg = hubcls.models.resolve(name)
        assert (cfg.input_size, cfg.resize_short, cfg.interpolation) == (224, 256, "bilinear")


# --- MobileNetV3 numerics --------------------------------------------------------------------------
def test_v3_se_gate_is_hardsigmoid_slope_02():
    model = hubcls.create_model("MobileNetV3_large_x1_0")
    se = [m for m in model.sublayers() if type(m).__name__ == "SEModule"]
    assert se, "MobileNetV3 large has SE blocks"
    x = paddle.to_tensor(np.array([-4.0, -2.5, -1.0, 0.0, 1.0, 2.5, 4.0], dtype="float32"))
    got = se[0].gate(x).numpy()
    np.testing.assert_allclose(got, np.clip(0.2 * x.numpy() + 0.5, 0, 1), atol=1e-7)
    # paddle's default slope (1/6) would give 0.6667 at x=1
    assert abs(got[4] - 0.7) < 1e-6


def test_v3_widths_use_make_divisible_8():
    assert make_divisible(16 * 0.35) == 8
    assert make_divisible(72 * 0.35) == 24
    assert make_divisible(200 * 0.75) == 152
    assert make_divisible(10) == 16          # rounding down to 8 would lose more than 10%
    model = hubcls.create_model("MobileNetV3_small_x0_35")
    assert model.conv.conv.weight.shape[0] == 8
    assert model.last_second_conv.conv.weight.shape[0] == make_divisible(576 * 0.35) == 200
    # SE squeeze is channels // 4 with no rounding (PaddleClas)
    block0 = model.blocks[0]
    assert block0.mid_se.conv1.weight.shape[:2] == [8 // 4, 8]


# --- backbone API ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["MobileNetV1_x0_25", "MobileNetV2_x0_25", "MobileNetV3_large_x0_35",
                                  "MobileNetV3_small_x0_35"])
def test_features_and_head(name):
    model = hubcls.create_model(name)
    model.eval()
    x = paddle.to_tensor(random_input(64, batch=1))
    feats = hubcls.create_model(name, features_only=True)
    feats.eval()
    outs = feats(x)
    assert len(outs) == len(model.feature_info)
    for out, info in zip(outs, feats.feature_info):
        assert out.shape == [1, info["num_chs"], 64 // info["reduction"], 64 // info["reduction"]]
    assert feats.feature_info[-1]["reduction"] == 32
    with paddle.no_grad():
        f = model.forward_features(x)
        pre = model.forward_head(f, pre_logits=True)
        assert np.array_equal(model.forward_head(f).numpy(), model(x).numpy())
    assert f.shape[1] == model.feature_info[-1]["num_chs"] == model.num_features
    assert pre.shape == [1, getattr(model, "head_hidden_size", model.num_features)]
    model.reset_classifier(7)
    assert model(x).shape == [1, 7]
    model.reset_classifier(0)
    assert model(x).shape == [1, getattr(model, "head_hidden_size", model.num_features)]
    model.reset_classifier(5)  # from the identity back to a classifier of the right width
    assert model(x).shape == [1, 5]
