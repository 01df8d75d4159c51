"""ShuffleNetV2 and GhostNet: name aliases, quirks and backbone API (parity with pip paddleclas 2.6:
tests/test_models_all.py)."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_mobile import random_input

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models.shufflenet_v2 import channel_shuffle  # noqa: E402


def test_weight_names_resolve_to_architectures():
    r = hubcls.models.resolve
    # the zoo table's "ShuffleNetV2" row is x1.0; its file is ShuffleNetV2_x1_0_pretrained.pdparams
    for name in ("ShuffleNetV2", "ShuffleNetV2_x1_0", "shufflenet_v2", "shufflenetv2_x1_0"):
        cfg = r(name)
        assert cfg.arch == "ShuffleNetV2_x1_0"
        assert cfg.url.endswith("/dygraph/ShuffleNetV2_x1_0_pretrained.pdparams")
    assert r("ShuffleNetV2_swish").arch == "ShuffleNetV2_swish"
    ssld = r("GhostNet_x1_3_ssld")
    assert ssld.arch == "GhostNet_x1_3" and ssld.url.endswith("/GhostNet_x1_3_ssld_pretrained.pdparams")


def test_channel_shuffle_interleaves_groups():
    x = paddle.arange(8, dtype="float32").reshape([1, 8, 1, 1])
    assert channel_shuffle(x, 2).flatten().numpy().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_shufflenet_swish_differs_only_in_activation():
    relu = hubcls.create_model("ShuffleNetV2_x1_0")
    swish = hubcls.create_model("ShuffleNetV2_swish")
    assert {k: v.shape for k, v in relu.state_dict().items()} == {k: v.shape for k, v in swish.state_dict().items()}
    swish.set_state_dict(relu.state_dict())
    relu.eval(), swish.eval()
    x = paddle.to_tensor(random_input(64, batch=1))
    with paddle.no_grad():
        assert not np.allclose(relu(x).numpy(), swish(x).numpy())


def test_bad_scale_is_a_clear_error():
    from hubcls.models.shufflenet_v2 import ShuffleNetV2Model

    with pytest.raises(ValueError, match="scale"):
        ShuffleNetV2Model(scale=0.7)


def test_ghostnet_se_gate_clips_to_unit_interval():
    model = hubcls.create_model("GhostNet_x1_0")
    se = [m for m in model.sublayers() if type(m).__name__ == "SEModule"]
    assert len(se) == 7  # blocks with SE in GhostNet's config
    x = paddle.to_tensor(np.array([-1.0, 0.25, 0.5, 2.0], dtype="float32"))
    np.testing.assert_allclose(se[0].gate(x).numpy(), [0.0, 0.25, 0.5, 1.0])


@pytest.mark.parametrize("name", ["ShuffleNetV2_x0_25", "GhostNet_x0_5"])
def test_features_and_head(name):
    model = hubcls.create_model(name)
    model.eval()
    feats = hubcls.create_model(name, features_only=True)
    feats.eval()
    x = paddle.to_tensor(random_input(64, batch=1))
    outs = feats(x)
    assert [f["reduction"] for f in feats.feature_info] == [2, 4, 8, 16, 32][-len(outs):]
    for out, info in zip(outs, feats.feature_info):
        assert out.shape == [1, info["num_chs"], 64 // info["reduction"], 64 // info["reduction"]]
    with paddle.no_grad():
        np.testing.assert_array_equal(model.forward_head(model.forward_features(x)).numpy(), model(x).numpy())
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == [
            1, getattr(model, "head_hidden_size", model.num_features)]
    model.reset_classifier(3)
    assert model(x).shape == [1, 3]


def test_shufflenet_x2_0_release20_width(tmp_path):
    """stage2_channels=224 builds PaddleClas release/2.0's x2.0 (before its 2022 244-channel fix):
    exactly the zoo table's params/MACs, which were measured on that code; a 244-wide file does not
    load into it silently."""
    from hubcls.errors import WeightsError
    from hubcls.models import profile

    old = hubcls.create_model("ShuffleNetV2_x2_0", stage2_channels=224)
    p = profile(old)
    cfg = hubcls.models.resolve("ShuffleNetV2_x2_0")
    assert round(p["params"] / 1e6, 2) == cfg.params_m == 7.40
    assert round(p["macs"] / 1e9, 4) == cfg.macs_g == 0.5717
    new = hubcls.create_model("ShuffleNetV2_x2_0")
    assert new.feature_info[2]["num_chs"] == 244
    path = tmp_path / "x2_0_244.pdparams"
    paddle.save(new.state_dict(), str(path))
    with pytest.raises(WeightsError, match="shape mismatch"):
        hubcls.create_model("ShuffleNetV2_x2_0", pretrained=str(path), stage2_channels=224)
    with pytest.raises(ValueError, match="stage2_channels"):
        hubcls.create_model("ShuffleNetV2_x2_0", stage2_channels=225)
