"""Shared helpers of the generic model suites (tests/test_models_*.py)."""
from __future__ import annotations

import functools

import pytest

BIG_PARAMS_M = 300.0  # models above this are marked slow everywhere


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
    """pytest params (ids = names) with giant models (and ``slow_names``) marked slow."""
    out = []
    for n in names:
        p = params_m_estimate(n)
        marks = [pytest.mark.slow] if ((p is not None and p > slow_over) or n in slow_names) else []
        out.append(pytest.param(n, marks=marks, id=n))
    return out


def test_input_size(model) -> int:
    """Small square input the architecture accepts: 64, unless the family declares
    ``fixed_input_size`` (a classifier that needs e.g. 224x224, see _features.py)."""
    fixed = getattr(model, "fixed_input_size", None)
    if fixed:
        return int(fixed)
    return int(getattr(model, "min_input_size", None) or 64)


test_input_size.__test__ = False  # not a test
