"""Shared by tests/tools/record_static_2020.py (which runs PaddleClas's 2020 static programs) and
tests/test_models_static.py (which loads the same tensors into hubcls): the deterministic tensor
each Paddle 1.x parameter gets, and the recorded test data.

A tensor depends only on the parameter's static name and shape, so the recorder and the tests
produce the same bytes without storing any weights: the test data is the names, shapes, the input
size and the 2020 program's logits.
"""
from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import numpy as np

DATA = Path(__file__).with_name("data") / "static_2020.json.gz"
NUM_CLASSES = 16  # the recorded programs end in a 16-way classifier (small logits to store)


def make_tensor(name: str, shape) -> np.ndarray:
    """The value of static parameter ``name``: seeded by the name, scaled so activations keep
    their magnitude through deep networks (weights ~ N(0, 1/fan_in)); 1-D tensors are BN
    statistics / affine parameters or biases (variances kept positive)."""
    rng = np.random.RandomState(zlib.crc32(name.encode()))
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        if "variance" in name or name.endswith("_var"):
            return rng.uniform(0.5, 1.5, shape).astype("float32")
        if name.endswith(("_scale", "_bn_scale")):
            return rng.uniform(0.8, 1.2, shape).astype("float32")
        return rng.uniform(-0.2, 0.2, shape).astype("float32")
    fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))  # fc: [in, out]; conv: OIHW
    return (rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))).astype("float32")


def make_input(size: int) -> np.ndarray:
    """The image batch every recorded program ran on."""
    return np.random.RandomState(0).standard_normal((1, 3, size, size)).astype("float32")


def load_records() -> dict:
    """model name -> {"params": [[name, shape], ...] (program order), "input_size": int,
    "logits": [...], "softmax": bool (the program's output is probabilities), "source": "<file>.py"}
    recorded from the 2020 static programs."""
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        return json.load(f)
