"""Postprocessing of the one prediction pipeline: softmax, top-k and class names, defined once.

Every answer hubcls gives (hub.Module, Predictor, ``hubcls serve``, ``hubcls infer``) is computed
here, so they cannot disagree: probabilities are a float32 softmax of float32 logits; top-k orders
by probability, ties by the lower class index; a name that repeats (ImageNet-1k has "crane"
twice) gets its class index appended from the second time on ("crane (517)"), so a
``{label: prob}`` dict never merges two classes and ``top_k=1000`` returns 1000 keys.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (numerically stable: the row maximum is subtracted first)."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def topk(probs_row: np.ndarray, k: int) -> Tuple[np.ndarray, List[float]]:
    """(class indices, probabilities) of the ``k`` most probable classes of one row, most probable
    first; ties keep the lower class index first. ``k`` is clipped to 1..num_classes."""
    k = max(1, min(int(k), probs_row.shape[-1]))
    idx = np.argsort(-probs_row, kind="stable")[:k]
    return idx, [float(probs_row[i]) for i in idx]


def topk_dicts(probs: np.ndarray, labels: Sequence[str], k: int) -> List[dict]:
    """One ``{label: prob}`` dict per row, most probable first (``labels`` already unique)."""
    out = []
    for row in probs:
        idx, p = topk(row, k)
        out.append({labels[i]: v for i, v in zip(idx, p)})
    return out


def unique_labels(labels: Sequence[str]) -> List[str]:
    """Later repeats of a name get their class index appended: ``"crane (517)"``."""
    seen, out = set(), []
    for i, name in enumerate(labels):
        name = str(name)
        out.append(name if name not in seen else f"{name} ({i})")
        seen.add(name)
    return out
