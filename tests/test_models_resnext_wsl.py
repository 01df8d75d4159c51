"""ResNeXt101 32xNd WSL and Fix_ResNeXt101_32x48d_wsl: parity with pip paddleclas 2.6 for 32x8d
(32x16d slow), construction-only checks for the 469M/829M-parameter 32x32d/32x48d (slow; one giant
model alive at a time), and the FixRes eval size."""
from __future__ import annotations

import gc

import pytest

from _zoo_peer_classic import check_parity, check_params, random_input

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402


# 32x8d/32x16d plain parity: tests/test_models_parity.py (generic); calibrated here, slow.
@pytest.mark.slow
def test_parity_calibrated_32x16d(tmp_path):
    check_parity(tmp_path, "model_zoo.resnext101_wsl", "ResNeXt101_32x16d_wsl", size=64)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ResNeXt101_32x32d_wsl", "ResNeXt101_32x48d_wsl"])
def test_giant_models_construct(name):
    # 1.9 / 3.3 GB of float32 parameters: build, count, run a 32x32 input, free before the next
    m = hubcls.create_model(name)
    try:
        check_params(m)
        m.eval()
        with paddle.no_grad():
            out = m(paddle.to_tensor(random_input(32, batch=1)))
        assert tuple(out.shape) == (1, 1000)
    finally:
        del m
        gc.collect()


def test_fix_resnext_eval_size():
    cfg = hubcls.models.resolve("Fix_ResNeXt101_32x48d_wsl")
    assert cfg.arch == "ResNeXt101_32x48d_wsl"
    assert (cfg.input_size, cfg.resize_short) == (320, 320)
    assert cfg.url.endswith("/Fix_ResNeXt101_32x48d_wsl_pretrained.pdparams")
    assert hubcls.models.resolve("ResNeXt101_32x16d_wsl").input_size == 224
