"""Losses by name (PaddleClas config spelling). Each takes ``(logits, batch)`` and returns a scalar.

Labels come in three shapes, all handled by the CE family:
  * int64 (N,)         hard labels
  * float32 (N, K)     soft targets (mixup/cutmix output of the data pipeline, or multi-hot)
  * teacher logits     for distillation losses (see hubcls.engine.distill)
"""
from __future__ import annotations

from ..errors import ConfigError
from ..registry import Registry

LOSSES = Registry("loss", group="hubcls.losses")


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


def main_logits(out):
    """The classifier output of a model's forward: the tensor itself, ``out["logits"]``, or the
    first of a list (GoogLeNet in training returns [logits, aux1, aux2])."""
    if isinstance(out, dict):
        return out["logits"]
    if isinstance(out, (list, tuple)):
        return out[0]
    return out


@LOSSES.register(name="GoogLeNetLoss")
class GoogLeNetLoss:
    """GoogLeNet with its two auxiliary heads: CE(logits) + 0.3 * CE(aux1) + 0.3 * CE(aux2)
    (PaddleClas's weights; the aux heads run in training only, so in evaluation it is plain CE).
    ``epsilon`` smooths the labels of all three terms (release/2.0 allowed it; 2.x refuses it)."""

    takes_all_outputs = True
    aux_weights = (0.3, 0.3)

    def __init__(self, epsilon: float = 0.0, weight: float = 1.0):
        self._ce = CELoss(epsilon=epsilon or 0.0)
        self.epsilon = self._ce.epsilon
        self.weight = float(weight)

    def __call__(self, outputs, batch):
        if not isinstance(outputs, (list, tuple)):
            return self._ce(main_logits(outputs), batch)
        if len(outputs) != 1 + len(self.aux_weights):
            raise ConfigError(f"GoogLeNetLoss needs the model's 3 outputs (logits, aux1, aux2), got {len(outputs)}; "
                              "use it with GoogLeNet (built with aux_logits=True in training)")
        total = self._ce(main_logits(outputs[0]), batch)
        for w, aux in zip(self.aux_weights, outputs[1:]):
            total = total + w * self._ce(main_logits(aux), batch)
        return total


class CombinedLoss:
    """Weighted sum of the configured losses; returns (total, {name: value}). Each loss gets the
    main logits, or the model's full output when it says ``takes_all_outputs`` (GoogLeNetLoss)."""

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
            x = logits if getattr(fn, "takes_all_outputs", False) else main_logits(logits)
            v = fn(x, batch) * getattr(fn, "weight", 1.0)
            parts[name] = v
            total = v if total is None else total + v
        return total, parts


# ---------------------------------------------------------------------------------------------
# distillation losses (teacher vs student logits), used by hubcls.engine.distill

DISTILL_LOSSES = Registry("distillation loss", group="hubcls.distill_losses")


def _F():
    return _paddle().nn.functional


def _probs(logits, T, mask=None):
    F = _F()
    if mask is not None:  # top-k teacher logits: the other classes get no mass
        logits = logits + (1.0 - mask) * -1e9
    return F.softmax(logits / T, axis=-1)


def _kl(p, q, eps=1e-10):
    """KL(p || q) per sample."""
    paddle = _paddle()
    return (p * (paddle.log(p + eps) - paddle.log(q + eps))).sum(axis=-1)


@DISTILL_LOSSES.register(name="JSDiv")
def js_div(student_logits, teacher_logits, T: float = 1.0, teacher_mask=None):
    """SSLD's loss: Jensen-Shannon divergence between student and teacher distributions."""
    p = _probs(student_logits, T)
    q = _probs(teacher_logits, T, teacher_mask)
    m = 0.5 * (p + q)
    return (0.5 * _kl(p, m) + 0.5 * _kl(q, m)).mean()


@DISTILL_LOSSES.register(name="KL")
def kl_div(student_logits, teacher_logits, T: float = 1.0, teacher_mask=None):
    """Hinton's soft-target loss, T^2 * KL(teacher || student)."""
    p = _probs(student_logits, T)
    q = _probs(teacher_logits, T, teacher_mask)
    return (T * T) * _kl(q, p).mean()


@DISTILL_LOSSES.register(name="DML")
def dml(student_logits, teacher_logits, T: float = 1.0, teacher_mask=None):
    """Deep mutual learning's symmetric KL (with a frozen teacher only the student moves)."""
    p = _probs(student_logits, T)
    q = _probs(teacher_logits, T, teacher_mask)
    return 0.5 * (_kl(p, q) + _kl(q, p)).mean()
