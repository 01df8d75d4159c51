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
    """paddleclas's model with random weights (see ``randomize``)."""
    mod = ppcls_module(f"arch.backbone.{module}")
    # PaddleClas names parameters explicitly (ParamAttr(name=...)); a fresh name scope lets the
    # same model be built twice in one process. LazyGuard skips paddle's own initialisation,
    # which takes ~10 s for the 100M-parameter models; randomize() fills every tensor instead.
    with paddle.utils.unique_name.guard(), paddle.LazyGuard():
        model = getattr(mod, name)()
    model.eval()
    return randomize(model)


def randomize(model, seed: int = 0):
    """Fill every tensor of ``model`` with random values, deterministic per seed: kernels scaled by
    1/sqrt(fan-in) (so deep nets without BN keep sane activations), 1-D tensors (biases, BN
    scale/shift/statistics, variance > 0) so that a wrong BN epsilon or a swapped bias shows.
    Values come from one random pool read at a different offset per tensor (cheap for 100M
    parameters)."""
    rng = np.random.default_rng(seed)
    pool = rng.standard_normal(1 << 20, dtype=np.float32)
    for i, (k, v) in enumerate(model.state_dict().items()):
        shape = list(v.shape)
        n = int(np.prod(shape)) if shape else 1
        off = (i * 7919) % pool.size
        a = np.resize(np.concatenate([pool[off:], pool[:off]]), n).reshape(shape)
        if len(shape) > 1:
            fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))  # Linear is [in, out]
            a = a * np.float32(1.0 / np.sqrt(fan_in))
        else:
            a = a * np.float32(0.1)
            if k.endswith("_variance"):
                a = np.abs(a) + np.float32(0.5)
        v.set_value(a.astype(np.float32, copy=False))
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

    peer = build_peer(module, peer_name)
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
