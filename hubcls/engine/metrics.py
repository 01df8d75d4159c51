"""Evaluation metrics over collected predictions (NumPy; exact under multi-process eval because
predictions are gathered and de-duplicated by sample index before any metric is computed).

Registered names (config ``Metric.Eval``): TopkAcc, ClassReport (per-class precision/recall/F1 +
confusion matrix), mAP (multi-label).
"""
from __future__ import annotations

import csv
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..registry import Registry

METRICS = Registry("metric", group="hubcls.metrics")


def topk_accuracy(topk_pred: np.ndarray, labels: np.ndarray, ks: Sequence[int]) -> Dict[str, float]:
    """``topk_pred`` (N, kmax) class ids sorted by score; ``labels`` (N,) -> {'top1': .., 'top5': ..}."""
    out = {}
    n = max(len(labels), 1)
    for k in ks:
        hit = (topk_pred[:, :k] == labels[:, None]).any(axis=1)
        out[f"top{k}"] = float(hit.sum() / n)
    return out


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels.astype(np.int64), pred.astype(np.int64)), 1)
    return cm


def per_class_report(cm: np.ndarray) -> Dict[str, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    pred_pos = cm.sum(axis=0).astype(np.float64)
    true_pos = cm.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_pos > 0, tp / pred_pos, 0.0)
        recall = np.where(true_pos > 0, tp / true_pos, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true_pos.astype(np.int64)}


def average_precision(scores: np.ndarray, target: np.ndarray) -> float:
    """AP of one class: mean of precision at each positive, ranked by score (ties: stable order)."""
    order = np.argsort(-scores, kind="stable")
    t = target[order] > 0.5
    if not t.any():
        return float("nan")
    hits = np.cumsum(t)
    prec = hits / np.arange(1, len(t) + 1)
    return float(prec[t].mean())


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Multi-label mAP over classes that have at least one positive."""
    aps = [average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])]
    aps = [a for a in aps if not np.isnan(a)]
    return float(np.mean(aps)) if aps else 0.0


@METRICS.register(name="GoogLeNetTopkAcc")  # PaddleClas's name for top-k of GoogLeNet's main output
@METRICS.register(name="TopkAcc")
class TopkAcc:
    def __init__(self, topk=(1, 5)):
        self.topk = [topk] if isinstance(topk, int) else list(topk)

    def compute(self, res: "EvalResult") -> Dict[str, float]:
        ks = [k for k in self.topk if k <= res.num_classes]
        return topk_accuracy(res.topk_pred, res.labels, ks)


@METRICS.register(name="ClassReport")
class ClassReport:
    """Macro precision/recall/F1; the full table and confusion matrix are written by the trainer."""

    def __init__(self, **_):
        pass

    def compute(self, res: "EvalResult") -> Dict[str, float]:
        rep = per_class_report(res.confusion())
        return {"macro_precision": float(rep["precision"].mean()), "macro_recall": float(rep["recall"].mean()),
                "macro_f1": float(rep["f1"].mean())}


@METRICS.register(name="mAP")
class MAP:
    def __init__(self, **_):
        pass

    def compute(self, res: "EvalResult") -> Dict[str, float]:
        if res.scores is None or res.targets is None:
            return {}
        return {"mAP": mean_average_precision(res.scores, res.targets)}


class EvalResult:
    """Predictions of one evaluation pass (after gathering across ranks)."""

    def __init__(self, num_classes: int, kmax: int = 5, keep_scores: bool = False):
        self.num_classes = num_classes
        self.kmax = min(kmax, num_classes)
        self.keep_scores = keep_scores
        self._topk: List[np.ndarray] = []
        self._labels: List[np.ndarray] = []
        self._index: List[np.ndarray] = []
        self._scores: List[np.ndarray] = []
        self._targets: List[np.ndarray] = []
        self.loss_sum = 0.0
        self.loss_count = 0

    def add(self, logits: np.ndarray, label: np.ndarray, index: Optional[np.ndarray]):
        topk = np.argsort(-logits, axis=1, kind="stable")[:, : self.kmax]
        self._topk.append(topk.astype(np.int64))
        if label.ndim == 2:  # soft / multi-hot target: hard label = argmax
            self._targets.append(label.astype(np.float32))
            label = label.argmax(axis=1)
        self._labels.append(label.reshape(-1).astype(np.int64))
        if index is None:
            start = sum(len(x) for x in self._index)
            index = np.arange(start, start + len(label))
        self._index.append(np.asarray(index).reshape(-1).astype(np.int64))
        if self.keep_scores:
            self._scores.append(logits.astype(np.float32))

    def arrays(self) -> dict:
        cat = lambda xs: np.concatenate(xs) if xs else None  # noqa: E731
        return {"topk": cat(self._topk), "labels": cat(self._labels), "index": cat(self._index),
                "scores": cat(self._scores), "targets": cat(self._targets)}

    def finalize(self, parts: List[dict]) -> None:
        """Merge the arrays of all ranks, keeping each sample index once (distributed samplers pad)."""
        merged = {}
        for key in ("topk", "labels", "index", "scores", "targets"):
            xs = [p[key] for p in parts if p.get(key) is not None]
            merged[key] = np.concatenate(xs) if xs else None
        idx = merged["index"] if merged["index"] is not None else np.zeros(0, np.int64)
        _, first = np.unique(idx, return_index=True)
        sel = np.sort(first)
        self.index = idx[sel]
        self.topk_pred = merged["topk"][sel] if merged["topk"] is not None else np.zeros((0, self.kmax), np.int64)
        self.labels = merged["labels"][sel] if merged["labels"] is not None else np.zeros(0, np.int64)
        self.scores = merged["scores"][sel] if merged["scores"] is not None else None
        self.targets = merged["targets"][sel] if merged["targets"] is not None else None

    @property
    def pred(self) -> np.ndarray:
        return self.topk_pred[:, 0]

    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.pred, self.labels, self.num_classes)


def write_class_report(path, cm: np.ndarray, class_names: Optional[Sequence[str]] = None) -> None:
    rep = per_class_report(cm)
    names = list(class_names) if class_names else [str(i) for i in range(len(cm))]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["class_id", "class_name", "precision", "recall", "f1", "support"])
        for i in range(len(cm)):
            w.writerow([i, names[i] if i < len(names) else i, f"{rep['precision'][i]:.6f}",
                        f"{rep['recall'][i]:.6f}", f"{rep['f1'][i]:.6f}", int(rep["support"][i])])


def write_confusion_csv(path, cm: np.ndarray, class_names: Optional[Sequence[str]] = None) -> None:
    names = list(class_names) if class_names else [str(i) for i in range(len(cm))]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["true\\pred"] + names[: len(cm)])
        for i, row in enumerate(cm):
            w.writerow([names[i] if i < len(names) else i] + [int(x) for x in row])
