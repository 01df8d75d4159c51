"""Losses by name (PaddleClas config spelling). Each takes ``(logits, batch)`` and returns a scalar.

Labels come in three shapes, all handled by the CE family:
  * int64 (N,)         hard labels
  * float32 (N, K)     soft targets (mixup/cutmix output of the data pipeline, or multi-hot)
  * teacher logits     for distillation losses (see hubcls.engine.distill)
"""
from __future__ import annotations

from ..errors import ConfigError
from ..registry import Registry

LOSSES = Registry("loss")


def _paddle():
    from .._paddle import import_paddle

    return import_paddle()


def soft_cross_entropy(logits, target):
    F = _paddle().nn.functional
    return -(target * F.log_softmax(logits, axis=-1)).sum(axis=-1).mean()


def _to_soft(label, num_classes, epsilon):
    paddle = _paddle()
    F = paddle.nn.functional
    if label.dtype in (paddle.int64, paddle.int32):
        label = F.one_hot(label.reshape([-1]).astype("int64"), num_classes)
    label = label.astype("float32")
    if epsilon:
        label = label * (1 - epsilon) + epsilon / num_classes
    return label


@LOSSES.register(name="CELoss")
class CELoss:
    """Cross entropy with optional epsilon label smoothing; accepts hard or soft (N,K) labels."""

    def __init__(self, epsilon: float = 0.0, weight: float = 1.0):
        if not 0 <= float(epsilon or 0) < 1:
            raise ConfigError(f"Loss CELoss.epsilon must be in [0, 1), got {epsilon!r}")
        self.epsilon = float(epsilon or 0.0)
        self.weight = float(weight)

    def __call__(self, logits, batch):
        paddle = _paddle()
        label = batch["label"]
        if isinstance(logits, dict):
            logits = logits["logits"]
        if label.dtype in (paddle.int64, paddle.int32) and not self.epsilon:
            return paddle.nn.functional.cross_entropy(logits, label.reshape([-1, 1]).astype("int64"))
        return soft_cross_entropy(logits, _to_soft(label, logits.shape[-1], self.epsilon))


@LOSSES.register(name="MixCELoss")
class MixCELoss(CELoss):
    """CE for mixup/cutmix: the data pipeline's batch ops emit soft (N,K) labels, so this is CE over
    soft targets (kept as its own name because PaddleClas configs use it)."""


@LOSSES.register(name="SoftTargetCELoss")
class SoftTargetCELoss(CELoss):
    pass


@LOSSES.register(name="MultiLabelLoss")
class MultiLabelLoss:
    """Sigmoid BCE over multi-hot (N,K) labels (multi-label classification)."""

    def __init__(self, epsilon: float = 0.0, weight: float = 1.0):
        self.epsilon = float(epsilon or 0.0)
        self.weight = float(weight)

    def __call__(self, logits, batch):
        F = _paddle().nn.functional
        label = batch["label"].astype("float32")
        if self.epsilon:
            label = label * (1 - self.epsilon) + self.epsilon / 2
        return F.binary_cross_entropy_with_logits(logits, label)


class CombinedLoss:
    """Weighted sum of the configured losses; returns (total, {name: value})."""

    def __init__(self, items):
        self.items = []
        for name, kwargs in items:
            cls = LOSSES.get(name)
            try:
                self.items.append((name, cls(**kwargs)))
            except TypeError as exc:
                raise ConfigError(f"Loss {name}: {exc}") from exc
        if not self.items:
            self.items = [("CELoss", CELoss())]

    @property
    def label_smoothing(self) -> float:
        return max((getattr(l, "epsilon", 0.0) for _, l in self.items), default=0.0)

    def __call__(self, logits, batch):
        total = None
        parts = {}
        for name, fn in self.items:
            v = fn(logits, batch) * getattr(fn, "weight", 1.0)
            parts[name] = v
            total = v if total is None else total + v
        return total, parts
