"""ResNeXt101 32xNd WSL and Fix_ResNeXt101_32x48d_wsl: calibrated parity with pip paddleclas 2.6 for
32x16d (slow) and the FixRes eval size. The 469M/829M-parameter 32x32d/32x48d are built once, with
the other giants one at a time, by tests/test_models_all.py: forward/backward, features, parameter
count and MACs against the zoo table (at 224 and FixRes 320)."""
from __future__ import annotations

import pytest
from _zoo_peer_classic import check_parity

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402


# 32x8d/32x16d plain parity: tests/test_models_all.py (generic); calibrated here, slow.
@pytest.mark.slow
def test_parity_calibrated_32x16d(tmp_path):
    check_parity(tmp_path, "model_zoo.resnext101_wsl", "ResNeXt101_32x16d_wsl", size=64)


def test_fix_resnext_eval_size():
    cfg = hubcls.models.resolve("Fix_ResNeXt101_32x48d_wsl")
    assert cfg.arch == "ResNeXt101_32x48d_wsl"
    assert (cfg.input_size, cfg.resize_short) == (320, 320)
    assert cfg.url.endswith("/Fix_ResNeXt101_32x48d_wsl_pretrained.pdparams")
    assert hubcls.models.resolve("ResNeXt101_32x16d_wsl").input_size == 224
