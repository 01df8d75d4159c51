"""Xception41/65/71 and the DeepLab Xception41/65 variants: parity with pip paddleclas 2.6, the
deeplab specifics (TF BN epsilon, dilated exit flow, '/'-named sub-layers), stage features."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_classic import check_parity, random_input

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402


# Plain parity for all five: tests/test_models_all.py (generic); calibrated weights here, slow.
@pytest.mark.slow
@pytest.mark.parametrize("module, name", [("model_zoo.xception", "Xception71"),
                                          ("model_zoo.xception_deeplab", "Xception65_deeplab")])
def test_parity_calibrated(tmp_path, module, name):
    check_parity(tmp_path, module, name, size=64)


def test_deeplab_layout():
    m = hubcls.create_model("Xception65_deeplab")
    keys = list(m.state_dict())
    # PaddleClas registers the blocks under TF-style names; weight files carry them
    assert "xception_65/entry_flow/block1._conv1._conv1.weight" in keys
    assert "xception_65/middle_flow/block16._conv3._bn2._variance" in keys
    assert not any("middle_flow/block17" in k for k in keys)
    bns = [l for l in m.sublayers() if isinstance(l, paddle.nn.BatchNorm2D)]
    assert bns and all(abs(b._epsilon - 1e-3) < 1e-12 for b in bns)
    exit2 = m._exit_flow_2
    assert exit2._conv1._conv1._dilation == [2, 2] and not exit2.has_skip


def test_eval_size_and_classifier():
    for n in ("Xception41", "Xception65_deeplab", "Xception71"):
        cfg = hubcls.models.resolve(n)
        assert (cfg.input_size, cfg.resize_short) == (299, 320)
    m = hubcls.create_model("Xception41", num_classes=10)
    assert m.get_classifier() is m._exit_flow._out and m.get_classifier().weight.shape == [2048, 10]
    m.eval()
    x = paddle.to_tensor(random_input(64))
    with paddle.no_grad():
        np.testing.assert_allclose(m.forward_head(m.forward_features(x)).numpy(), m(x).numpy(), rtol=1e-6)
        m.reset_classifier(0)
        assert tuple(m(x).shape) == (2, 2048)
