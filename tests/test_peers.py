"""The reference packages that parity tests compare against must import in CI.

Parity and detection tests skip when their peer is missing (so a partial local install still runs
the rest), which would let a broken peer install turn them all into silent skips. In CI (CI=true,
set by the CI runner) a missing or broken peer is a failure instead.
"""
import importlib
import os

import pytest

PEERS = [
    "paddleclas.ppcls.arch.backbone",       # model parity (tests/test_models_all.py, ...)
    "paddleclas.deploy.python.preprocess",  # preprocessing parity (tests/test_data_transforms.py)
    "ppdet.modeling",                       # detection (tests/test_det_ppdet.py)
]


@pytest.mark.skipif(os.environ.get("CI", "").lower() not in ("1", "true", "yes"), reason="CI only")
@pytest.mark.parametrize("module", PEERS)
def test_peer_imports_in_ci(module):
    importlib.import_module(module)
