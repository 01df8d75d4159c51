"""Res2Net / Res2Net-vd: parity with pip paddleclas 2.6, the hierarchical split convolution,
ssld weight names, stage features."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_classic import check_parity, random_input

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models import res2net  # noqa: E402

F = paddle.nn.functional


# Plain parity for all five: tests/test_models_all.py (generic). Res2Net200_vd's random logits
# reach 1e24 there; with calibrated weights (here, slow) 1e-4 is a real bound.
@pytest.mark.slow
def test_parity_calibrated_res2net200(tmp_path):
    check_parity(tmp_path, "model_zoo.res2net_vd", "Res2Net200_vd_26w_4s", size=64)


def test_hierarchical_split_conv():
    """Stride-1 block: y_1 = K_1(x_1), y_s = K_s(x_s + y_{s-1}), the last split passes through."""
    paddle.seed(0)
    blk = res2net.Res2Bottleneck(16, 16, width=8, stride=1, scales=4, shortcut=True, name="t")
    blk.eval()
    x = paddle.to_tensor(random_input(8, batch=1)[:, :1].repeat(16, axis=1))
    with paddle.no_grad():
        xs = paddle.split(blk.conv0(x), 4, axis=1)
        k = blk.conv1_list
        y1 = k[0](xs[0])
        y2 = k[1](xs[1] + y1)
        y3 = k[2](xs[2] + y2)
        ref = F.relu(blk.conv2(paddle.concat([y1, y2, y3, xs[3]], axis=1)) + x)
        np.testing.assert_allclose(blk(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    # PaddleClas's sub-layer names carry the conv names
    assert "t_branch2b_3._conv.weight" in blk.state_dict()


def test_ssld_variants_and_features():
    for n in ("Res2Net50_vd_26w_4s_ssld", "Res2Net101_vd_26w_4s_ssld", "Res2Net200_vd_26w_4s_ssld"):
        cfg = hubcls.models.resolve(n)
        assert cfg.arch == n[:-5] and cfg.url.endswith(f"{n}_pretrained.pdparams")
    m = hubcls.create_model("Res2Net50_vd_26w_4s", features_only=True)
    m.eval()
    assert m.channels() == [64, 256, 512, 1024, 2048] and m.reduction() == [2, 4, 8, 16, 32]
    with paddle.no_grad():
        feats = m(paddle.to_tensor(random_input(64, batch=1)))
    assert [tuple(f.shape[2:]) for f in feats] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]


@pytest.mark.slow
def test_res2net200_stage3_names():
    """Res2Net200_vd names stage-3 blocks res4a, res4b1 .. res4b47 (101/152/200 style); its 2.0
    file's structured keys depend only on the bb_<stage>_<i> layer names, checked here."""
    m = hubcls.create_model("Res2Net200_vd_26w_4s")
    keys = m.state_dict().keys()
    assert "bb_2_47.res4b47_branch2b_3._batch_norm._variance" in keys
    assert "bb_3_2.res5c_branch2b_1._conv.weight" in keys
