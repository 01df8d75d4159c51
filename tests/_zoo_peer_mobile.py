"""Helpers for the mobile/classic family tests: build pip paddleclas 2.6's model, give it random
weights (BN statistics included, so a wrong eps/order shows), save it, load it with
``hubcls.create_model(name, pretrained=file)`` and compare eval logits."""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

KEYS_20 = Path(__file__).parent / "data" / "paddleclas20_keys_mobilenet_vgg.json"


_ROOT = []


def ppcls_module(path: str):
    """Import ``ppcls.<path>`` from pip paddleclas without running paddleclas/__init__ (which
    needs packages the tests don't install)."""
    if not _ROOT:
        spec = importlib.util.find_spec("paddleclas")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip("pip paddleclas is not installed (tests/install_peers.sh)")
        # (once its folder is on sys.path, "paddleclas" resolves to paddleclas/paddleclas.py)
        _ROOT.append(list(spec.submodule_search_locations)[0])
    if _ROOT[0] not in sys.path:
        sys.path.insert(0, _ROOT[0])
    from ppcls.utils import logger as ppcls_logger

    ppcls_logger.init_logger(log_level=logging.ERROR)
    return importlib.import_module(f"ppcls.{path}")


def build_peer(module: str, name: str):
    mod = ppcls_module(f"arch.backbone.{module}")
    # PaddleClas names parameters explicitly (ParamAttr(name=...)); a fresh name scope lets the
    # same model be built twice in one process
    with paddle.utils.unique_name.guard():
        model = getattr(mod, name)()
    if isinstance(model, paddle.nn.Layer):
        model.eval()
    return model


def randomize(model, seed: int = 0):
    """Random weights and BN statistics (variance > 0), deterministic per seed."""
    rng = np.random.default_rng(seed)
    state = {}
    for k, v in model.state_dict().items():
        a = rng.standard_normal(v.shape).astype("float32") * 0.1
        if k.endswith("_variance"):
            a = np.abs(a) + 0.5
        state[k] = paddle.to_tensor(a)
    model.set_state_dict(state)
    return model


def logits(model, x):
    with paddle.no_grad():
        out = model(paddle.to_tensor(x))
    if isinstance(out, dict):
        out = out["logits"]
    return out.numpy()


def random_input(size, batch=2, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype("float32")


def check_parity(tmp_path, module, peer_name, name=None, size=64, rename=None, tol=1e-4):
    """Peer weights -> .pdparams (optionally renamed to another key scheme) -> create_model;
    returns (max abs diff of logits, the hubcls model)."""
    import hubcls

    peer = randomize(build_peer(module, peer_name))
    state = peer.state_dict()
    if rename is not None:
        state = {rename(k): v for k, v in state.items()}
    path = tmp_path / f"{peer_name}.pdparams"
    paddle.save(state, str(path))
    ours = hubcls.create_model(name or peer_name, pretrained=str(path))
    ours.eval()
    x = random_input(size)
    ref, got = logits(peer, x), logits(ours, x)
    assert got.shape == ref.shape
    diff = float(np.abs(ref - got).max())
    assert diff <= tol, f"{name or peer_name}: max |logits diff| {diff:.3g} > {tol}"
    return diff, ours


def keys_20(name):
    """[(key, shape)] of the release/2.0 implementation (recorded; see the file's _source)."""
    return [(k, tuple(s)) for k, s in json.loads(KEYS_20.read_text())[name]]
