"""Shared helpers of the generic model suites (tests/test_models_*.py): the architecture list, the
parametrisation every per-architecture test shares, and the pip paddleclas 2.6 peer."""
from __future__ import annotations

import functools

import numpy as np
import pytest

BIG_PARAMS_M = 300.0  # models above this are marked slow everywhere
# One xdist work unit for all giant models: they run one after the other on one worker, never two
# multi-GB models at once (tests/conftest.py gives every other architecture a unit of its own).
GIANT_GROUP = pytest.mark.xdist_group("giant-models")


@functools.lru_cache(maxsize=None)
def arch_names():
    from hubcls.models._registry import ARCHS

    return tuple(ARCHS.names())


def params_m_estimate(name: str):
    """Params (M) from the zoo table when the name has a row, else None (no build needed)."""
    from hubcls.models import resolve

    cfg = resolve(name)
    return cfg.params_m


def is_big(name: str) -> bool:
    p = params_m_estimate(name)
    return p is not None and p > BIG_PARAMS_M


def model_params(names, slow_over: float = BIG_PARAMS_M, slow_names=()):
    """pytest params (ids = names) with giant models (and ``slow_names``) marked slow; giants also
    share one xdist work unit (GIANT_GROUP)."""
    out = []
    for n in names:
        p = params_m_estimate(n)
        big = p is not None and p > BIG_PARAMS_M
        marks = [pytest.mark.slow] if ((p is not None and p > slow_over) or n in slow_names) else []
        out.append(pytest.param(n, marks=marks + ([GIANT_GROUP] if big else []), id=n))
    return out


def test_input_size(model) -> int:
    """Small square input the architecture accepts: 64, unless the family declares
    ``fixed_input_size`` (a classifier that needs e.g. 224x224, see _features.py)."""
    fixed = getattr(model, "fixed_input_size", None)
    if fixed:
        return int(fixed)
    return int(getattr(model, "min_input_size", None) or 64)


test_input_size.__test__ = False  # not a test


# ---------------------------------------------------------------------------------------------
# pip paddleclas 2.6 (tests/install_peers.sh) as the reference implementation
def peer_backbone():
    """paddleclas's backbone module, or a skip when the peer is not installed."""
    return pytest.importorskip("paddleclas.ppcls.arch.backbone")


@functools.lru_cache(maxsize=None)
def peer_names():
    """The registered architectures that pip paddleclas also defines."""
    try:
        import paddleclas.ppcls.arch.backbone as pc_backbone
    except Exception:  # noqa: BLE001 - not installed: the parity tests skip, saying why
        return frozenset()
    return frozenset(n for n in arch_names() if callable(getattr(pc_backbone, n, None)))


def build_peer(name, **kwargs):
    import paddle

    # paddleclas's model_zoo modules give parameters fixed (Paddle 1.x) names, which Paddle refuses
    # to create twice in one process; a fresh name scope per model avoids that.
    with paddle.utils.unique_name.guard():
        model = getattr(peer_backbone(), name)(**kwargs)
    model.eval()
    return model


def randomize(model, seed=0):
    """Randomise the 1-D tensors (BN scale/shift/running stats, biases), whose defaults (1/0)
    would hide mix-ups; conv/linear weights are already random from their initialisers."""
    rng = np.random.RandomState(seed)
    state = {}
    for k, v in model.state_dict().items():
        arr = v.numpy()
        if arr.ndim == 1 and arr.dtype.kind == "f":
            if k.endswith(("_variance", "running_var")):
                arr = rng.uniform(0.5, 1.5, arr.shape)
            elif k.endswith(("_mean", "running_mean")):
                arr = rng.uniform(-0.1, 0.1, arr.shape)
            else:
                arr = arr + rng.uniform(-0.2, 0.2, arr.shape)
            arr = arr.astype(v.numpy().dtype)
            v.set_value(arr)
        state[k] = arr
    return state


def logits(model, x):
    import paddle

    with paddle.no_grad():
        out = model(x)
    if isinstance(out, dict):  # paddleclas TheseusLayer may return a dict
        out = out["logits"] if "logits" in out else next(iter(out.values()))
    if isinstance(out, (list, tuple)):  # GoogLeNet returns [main, aux1, aux2] even in eval
        out = out[0]
    return out.numpy()


def make_input(size, seed=1):
    import paddle

    return paddle.to_tensor(np.random.RandomState(seed).standard_normal((1, 3, size, size)).astype("float32"))
