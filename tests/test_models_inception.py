"""GoogLeNet, InceptionV3 (+ its release/2.0 key scheme) and InceptionV4: parity with pip
paddleclas 2.6, GoogLeNet's auxiliary heads, the family's 299/320 eval sizes."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_classic import calibrate, check_parity, keys_20, random_input
from _zoo_peer_mobile import build_peer

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models import inception_v3  # noqa: E402


def test_googlenet_parity(tmp_path):
    # 224: the auxiliary heads (always run by the peer) flatten a 3x3 map into 1152 features
    check_parity(tmp_path, "model_zoo.googlenet", "GoogLeNet", size=224)


def test_googlenet_aux_heads_in_training():
    peer = calibrate(build_peer("model_zoo.googlenet", "GoogLeNet"), 224)
    ours = hubcls.create_model("GoogLeNet", aux_logits=True)
    ours.set_state_dict(peer.state_dict())
    x = paddle.to_tensor(random_input(224))
    ours.eval()
    with paddle.no_grad():
        ref = peer(x)
        assert not isinstance(ours(x), (list, tuple))  # eval: main logits only
    ours.train()
    for m in ours.sublayers():  # compare deterministically: dropout off
        if isinstance(m, paddle.nn.Dropout):
            m.eval()
    with paddle.no_grad():
        got = ours(x)
    assert isinstance(got, list) and len(got) == 3
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.numpy(), r.numpy(), atol=1e-4)


# InceptionV3/V4 plain parity: tests/test_models_all.py (generic); GoogLeNet is here because
# the generic helper expects a tensor and paddleclas's GoogLeNet returns [main, aux1, aux2].
@pytest.mark.slow
def test_inception_v4_parity_calibrated(tmp_path):
    check_parity(tmp_path, "model_zoo.inception_v4", "InceptionV4", size=107)


def test_inception_v3_20_key_map():
    ours = hubcls.create_model("InceptionV3")
    m = inception_v3.key_map_20(ours)
    assert {m[k]: tuple(v.shape) for k, v in ours.state_dict().items()} == dict(keys_20("InceptionV3"))
    assert set(inception_v3.map_20_keys({k: None for k, _ in keys_20("InceptionV3")})) == set(ours.state_dict())


def test_inception_v3_loads_release_20_file(tmp_path):
    recorded = keys_20("InceptionV3")

    def rename(state):  # recorded 2.0 names paired with the peer's tensors by position
        assert len(state) == len(recorded)
        out = {}
        for (k, v), (k20, shape) in zip(state.items(), recorded):
            assert tuple(v.shape) == shape, (k, k20)
            out[k20] = v
        return out

    check_parity(tmp_path, "legendary_models.inception_v3", "InceptionV3", size=75, rename=rename)


@pytest.mark.parametrize("name", ["InceptionV3", "InceptionV4"])
def test_eval_size_299_from_320(name):
    cfg = hubcls.models.resolve(name)
    assert (cfg.input_size, cfg.resize_short) == (299, 320)
    assert hubcls.models.resolve("GoogLeNet").input_size == 224


def test_googlenet_aux_off_by_default():
    m = hubcls.create_model("GoogLeNet")
    m.train()
    out = m(paddle.to_tensor(random_input(224, batch=1)))
    assert tuple(out.shape) == (1, 1000)  # a plain classifier
    assert all(p.stop_gradient for p in m._out1.parameters()) and not m._fc_out.weight.stop_gradient
    m.set_aux_logits(True)
    assert not any(p.stop_gradient for p in m._fc_o2.parameters())


def test_reset_classifier_googlenet_aux():
    m = hubcls.create_model("GoogLeNet", num_classes=4, aux_logits=True)
    m.train()
    outs = m(paddle.to_tensor(random_input(224, batch=2)))
    assert [tuple(o.shape) for o in outs] == [(2, 4)] * 3
    m.reset_classifier(6)
    outs = m(paddle.to_tensor(random_input(224, batch=2)))
    assert [tuple(o.shape) for o in outs] == [(2, 6)] * 3
