"""Helpers for the classic-family tests (DenseNet, DPN, HRNet, Inception, Xception, Res2Net,
ResNeXt-WSL, ResNeSt, RegNet).

Deep random networks blow their logits up to 1e10 and beyond, which makes an absolute tolerance
meaningless, so the peer model (pip paddleclas 2.6) gets "calibrated" random weights instead: random
BN affine parameters, then BN running statistics set to the batch statistics of a calibration
batch (one train-mode forward with momentum 0), as a trained network would have. The calibration
batch is the test input itself: at small inputs the deep stages are 1x1, and statistics from other
images would divide by near-zero variances. Logits then stay
O(1-10) and the 1e-4 bound on |logits difference| means something. Weights go through a real
``.pdparams`` file and ``hubcls.create_model(name, pretrained=file)``.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from _zoo_peer_mobile import build_peer, random_input

paddle = pytest.importorskip("paddle")
nn = paddle.nn

KEYS_20 = Path(__file__).parent / "data" / "paddleclas20_keys_hrnet_inception.json.gz"
_BN = (nn.BatchNorm, nn.BatchNorm2D)


def calibrate(model, size, seed=0, batch=2, x=None):
    """Random BN affine params + BN running stats from a calibration batch (see module doc)."""
    rng = np.random.default_rng(seed)
    bns = [m for m in model.sublayers(include_self=True) if isinstance(m, _BN)]
    for bn in bns:
        c = bn.weight.shape[0]
        bn.weight.set_value(rng.uniform(0.5, 1.5, c).astype("float32"))
        bn.bias.set_value((rng.standard_normal(c) * 0.1).astype("float32"))
    saved = [bn._momentum for bn in bns]
    for bn in bns:
        bn._momentum = 0.0
    model.train()
    for m in model.sublayers():
        if isinstance(m, nn.Dropout):
            m.eval()
    with paddle.no_grad():
        model(paddle.to_tensor(random_input(size, batch=batch) if x is None else x))
    for bn, mom in zip(bns, saved):
        bn._momentum = mom
        # a channel seen at 1x1 by two samples can have a near-zero variance; dividing by it
        # amplifies float noise chaotically through the next layers, so floor it
        bn._variance.set_value(np.maximum(bn._variance.numpy(), 1e-2))
    model.eval()
    return model


def peer_state(module, name, size, seed=0):
    peer = calibrate(build_peer(module, name), size, seed=seed)
    return peer, peer.state_dict()


def check_parity(tmp_path, module, peer_name, name=None, size=64, rename=None, tol=1e-4, state_fn=None,
                 batch=2, ours_fn=None):
    # state_fn: builds the peer when its pip builder can't (e.g. missing URL entry);
    # ours_fn: builds our model for an unregistered architecture (weights via load_pretrained)
    """Calibrated peer -> .pdparams (optionally renamed to another key scheme) -> create_model.
    Returns (max |logits diff|, max |peer logits|, our model)."""
    import hubcls

    peer = build_peer(module, peer_name) if state_fn is None else state_fn()
    x = random_input(size, batch=batch)
    calibrate(peer, size, x=x)
    state = peer.state_dict()
    if rename is not None:
        state = rename(state)
    path = tmp_path / f"{peer_name}.pdparams"
    paddle.save(state, str(path))
    if ours_fn is None:
        ours = hubcls.create_model(name or peer_name, pretrained=str(path))
    else:
        ours = ours_fn()
        hubcls.models.load_pretrained(ours, path)
    ours.eval()
    ref, got = logits(peer, x), logits(ours, x)
    assert got.shape == ref.shape
    scale = float(np.abs(ref).max())
    assert 0.05 < scale < 1e4, f"calibration failed: |logits| {scale:.3g}"
    diff = float(np.abs(ref - got).max())
    assert diff <= tol, f"{name or peer_name}: max |logits diff| {diff:.3g} > {tol} (|logits| {scale:.3g})"
    check_params(ours)
    return diff, scale, ours


# Params of our architecture vs the zoo table's params_m_today, within 1% unless listed here.
PARAMS_EXCEPTIONS = {}


def check_params(model, rel=0.01):
    cfg = getattr(model, "pretrained_cfg", None)
    if cfg is None or cfg.params_m is None:
        return
    got = n_params(model) / 1e6
    tol = PARAMS_EXCEPTIONS.get(cfg.name, rel)
    assert abs(got - cfg.params_m) <= tol * cfg.params_m, \
        f"{cfg.name}: {got:.3f}M parameters, zoo table says {cfg.params_m}M"


def logits(model, x):
    with paddle.no_grad():
        out = model(paddle.to_tensor(x))
    if isinstance(out, (list, tuple)):  # GoogLeNet's peer returns [main, aux1, aux2] in eval too
        out = out[0]
    return out.numpy()


def keys_20(name):
    """[(key, shape)] of the release/2.0 implementation (recorded; see the file's _source)."""
    with gzip.open(KEYS_20, "rt", encoding="utf-8") as f:
        return [(k, tuple(s)) for k, s in json.load(f)[name]]


def n_params(model) -> int:
    return sum(int(np.prod(p.shape)) for p in model.parameters())
