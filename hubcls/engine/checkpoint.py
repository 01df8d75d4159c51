"""Checkpoints: one file per checkpoint, written atomically (temp file + rename), so a run killed at
any moment leaves either the previous complete checkpoint or the new complete one, never half of it.

A checkpoint (``*.pdckpt``) holds model, optimizer, LR schedule, epoch, global step, best metric, EMA
and RNG states. ``*.pdparams`` files next to it hold model weights only (what eval/infer/export and
``create_model(pretrained=path)`` load).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Optional

import numpy as np

from .._paddle import import_paddle
from ..errors import ConfigError

LAST = "last.pdckpt"
BEST = "best.pdckpt"
BEST_WEIGHTS = "best_model.pdparams"
LAST_WEIGHTS = "last_model.pdparams"


def atomic_save(obj, path) -> None:
    paddle = import_paddle()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    paddle.save(obj, str(tmp))
    with open(tmp, "rb") as f:  # make the bytes durable before the rename publishes them
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rng_state() -> dict:
    paddle = import_paddle()
    return {"python": random.getstate(), "numpy": np.random.get_state(), "paddle": paddle.get_rng_state()}


def set_rng_state(state: Optional[dict]) -> None:
    if not state:
        return
    paddle = import_paddle()
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    try:
        paddle.set_rng_state(state["paddle"])
    except Exception:  # noqa: BLE001 - a checkpoint from another device type: keep per-epoch seeding
        pass


def load_checkpoint(path) -> dict:
    """A training checkpoint, read by the restricted unpickler (a checkpoint is data, never code)."""
    from ..models import safe_load

    p = Path(path)
    if p.is_dir():
        p = p / LAST
    if not p.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} not found (expected a .pdckpt file or a run directory with {LAST})")
    return safe_load(p, return_numpy=False)


def load_weights(path) -> dict:
    """Model weights from a .pdparams, a .pdckpt, or a run directory (its best model, else last)."""
    from ..models import safe_load

    p = Path(path)
    if p.is_dir():
        for cand in (BEST_WEIGHTS, LAST_WEIGHTS, LAST):
            if (p / cand).is_file():
                p = p / cand
                break
    if not p.is_file() and Path(f"{p}.pdparams").is_file():  # PaddleClas style: path without suffix
        p = Path(f"{p}.pdparams")
    if not p.is_file():
        raise ConfigError(f"weights {str(path)!r} not found")
    state = safe_load(p, return_numpy=False)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return state
