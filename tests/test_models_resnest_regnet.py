"""ResNeSt and RegNetX: parity with pip paddleclas 2.6, split attention, the RegNet width rule
against the paper's published RegNetX-4.0GF stages, stage features."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_classic import check_parity, random_input

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models import regnet, resnest  # noqa: E402

F = paddle.nn.functional


# Plain parity of the registered ones (ResNeSt50_fast_1s1x64d, ResNeSt50, RegNetX_4GF):
# tests/test_models_parity.py.
# unregistered architectures (no official weights) that PaddleClas defines: built from the classes
@pytest.mark.parametrize("module, name, build", [
    pytest.param("model_zoo.resnest", "ResNeSt101", resnest.ResNeSt101, marks=pytest.mark.slow),
    ("model_zoo.regnet", "RegNetX_200MF", lambda: regnet.RegNet(*regnet._REGNETX["RegNetX_200MF"])),
    pytest.param("model_zoo.regnet", "RegNetX_32GF", lambda: regnet.RegNet(*regnet._REGNETX["RegNetX_32GF"]),
                 marks=pytest.mark.slow),
])
def test_parity_unregistered(tmp_path, module, name, build):
    check_parity(tmp_path, module, name, size=64, ours_fn=build)


def test_regnetx_4gf_design_matches_paper():
    # Radosavovic et al. 2020, Table/Appendix: RegNetX-4.0GF d=[2,5,14,2] w=[80,240,560,1360] g=40
    stages = regnet.regnet_stages(38.65, 96, 2.43, 23, 40)
    assert [d for d, _, _ in stages] == [2, 5, 14, 2]
    assert [w for _, w, _ in stages] == [80, 240, 560, 1360]
    assert all(g == 40 for _, _, g in stages)
    # RegNetX-200MF: d=[1,1,4,7] w=[24,56,152,368] g=8
    stages = regnet.regnet_stages(36.44, 24, 2.49, 13, 8)
    assert [(d, w) for d, w, _ in stages] == [(1, 24), (1, 56), (4, 152), (7, 368)]
    with pytest.raises(ValueError):
        regnet.regnet_widths(10, 20, 2.0, 5, q=8)  # w_0 not a multiple of q


def test_split_attention_radix2():
    """out = sum_r a_r * U_r, a = softmax over the radix of the attention logits."""
    paddle.seed(1)
    sc = resnest.SplatConv(8, 8, 3, groups=1, radix=2)
    sc.eval()
    x = paddle.to_tensor(random_input(6, batch=2)[:, :1].repeat(8, axis=1))
    with paddle.no_grad():
        u = sc.conv1(x)
        u1, u2 = paddle.split(u, 2, axis=1)
        logits = sc.conv3(sc.conv2(sc.avg_pool2d(u1 + u2)))
        a = F.softmax(logits.reshape([2, 2, 8]), axis=1)  # [batch, radix, channels]
        ref = u1 * a[:, 0].reshape([2, 8, 1, 1]) + u2 * a[:, 1].reshape([2, 8, 1, 1])
        np.testing.assert_allclose(sc(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_only_weighted_architectures_registered():
    # only the architecture with official weights is registered
    assert hubcls.models.list_models("RegNetX_*") == ["RegNetX_4GF"]
    assert hubcls.models.list_models("ResNeSt*") == ["ResNeSt50", "ResNeSt50_fast_1s1x64d"]
