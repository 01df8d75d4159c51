"""DenseNet and DPN: parity with pip paddleclas 2.6 (release/2.0 names), stage features, head API."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_classic import check_parity, random_input

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402

# Plain parity with paddleclas for every DenseNet/DPN: tests/test_models_all.py (generic).


@pytest.mark.slow
@pytest.mark.parametrize("name", ["DenseNet264", "DPN131"])
def test_parity_calibrated(tmp_path, name):
    # the deepest of each family with well-scaled (calibrated) weights, where 1e-4 is a tight bound
    check_parity(tmp_path, "model_zoo.densenet" if name.startswith("Dense") else "model_zoo.dpn", name, size=64)


def test_dpn_stage_taps_are_the_joined_paths():
    """DPN keeps a residual and a dense path; a stage's feature map is their concatenation, the
    same tensor the next stage's first block reads."""
    m = hubcls.create_model("DPN68")
    m.eval()
    seen = {}
    m.blocks_[3].register_forward_pre_hook(lambda layer, inp: seen.setdefault("in", inp[0]))
    fx = hubcls.models._features.FeatureExtractor(m, out_indices=[1])
    with paddle.no_grad():
        (f,) = fx(paddle.to_tensor(random_input(64, batch=1)))
    res, dense = seen["in"]
    np.testing.assert_array_equal(f.numpy(), paddle.concat([res, dense], axis=1).numpy())


@pytest.mark.parametrize("name", ["DenseNet121", "DPN68"])
def test_head_api(name):
    m = hubcls.create_model(name, num_classes=7)
    m.eval()
    x = paddle.to_tensor(random_input(64, batch=2))
    with paddle.no_grad():
        f = m.forward_features(x)
        assert f.shape[1] == m.num_features
        np.testing.assert_allclose(m.forward_head(f).numpy(), m(x).numpy(), rtol=1e-6)
        assert tuple(m(x).shape) == (2, 7)
        m.reset_classifier(3)
        assert tuple(m(x).shape) == (2, 3)
        assert tuple(m.forward_head(f, pre_logits=True).shape) == (2, m.num_features)
