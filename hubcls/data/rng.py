"""Deterministic random streams: every random draw of the data pipeline comes from
(seed, epoch, sample index) — or (seed, epoch, rank, batch number) for batch ops — so results do not
depend on the number of workers, on which worker ran a sample, or on the order they finished."""
from __future__ import annotations

import numpy as np

_MASK = (1 << 63) - 1
STREAM_SAMPLE = 0
STREAM_BATCH = 1
STREAM_SHUFFLE = 2


def sample_rng(seed: int, epoch: int, index: int, stream: int = STREAM_SAMPLE) -> np.random.Generator:
    """Generator for one sample's augmentation draws."""
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence([int(seed) & _MASK, int(epoch) & _MASK, int(index) & _MASK, stream])))


def batch_rng(seed: int, epoch: int, rank: int, batch_no: int) -> np.random.Generator:
    """Generator for one batch's batch-op draws (mixup lambda, permutation, ...)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [int(seed) & _MASK, int(epoch) & _MASK, int(rank), int(batch_no), STREAM_BATCH])))


def shuffle_rng(seed: int, epoch: int) -> np.random.Generator:
    """Generator for the epoch's permutation (the same on every rank, so shards stay disjoint)."""
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence([int(seed) & _MASK, int(epoch) & _MASK, STREAM_SHUFFLE])))


def seed_globals(rng: np.random.Generator) -> None:
    """Seed Python's and NumPy's global generators from ``rng``: lets third-party (PaddleClas-style)
    augmenters that call ``random``/``np.random`` stay reproducible."""
    import random

    s = int(rng.integers(0, 2**32 - 1))
    random.seed(s)
    np.random.seed(s)
