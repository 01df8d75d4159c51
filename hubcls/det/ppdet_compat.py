"""Compatibility layer that lets pip ``paddledet==2.6.0`` run on Paddle 3 / NumPy 2.

PaddleDetection 2.6 was written for Paddle 2.x, where ``paddle.shape(x)[0]`` was a 1-D tensor of
shape [1]. On Paddle 3 it is 0-D, which breaks its two-stage detectors in two ways:

1. ``paddle.concat([...])`` of those per-image counts (RPN proposals, RoI sampling targets): concat
   rejects 0-D inputs. We hand the affected ppdet modules a proxy of the ``paddle`` module whose
   ``concat`` promotes a list of 0-D tensors to 1-D first; every other attribute is Paddle's own.
   Nothing outside those modules sees the proxy. (Same mechanism: the IoU losses multiply a float
   tensor by a bool mask, which Paddle 3's type promotion refuses; their proxy casts the mask.)
2. ``range(batch_size)`` where ``batch_size = paddle.slice(paddle.shape(x), [0], [0], [1])`` is a
   1-element 1-D tensor: ``Tensor.__index__`` does ``int(np.array(t))``, which NumPy 2 refuses for
   1-D arrays. We extend ``Tensor.__index__`` to accept any one-element tensor; it only changes
   calls that raised before.

Nothing in site-packages is edited. ``apply()`` is idempotent and is called by ``hubcls.det`` before
it registers its backbone with PaddleDetection.
"""
from __future__ import annotations

import importlib
import types


def _concat(paddle):
    def concat(x, axis=0, name=None):
        # Paddle 2 semantics: counts from paddle.shape(t)[0] were 1-D; promote 0-D ones.
        if isinstance(x, (list, tuple)) and x and all(getattr(t, "ndim", None) == 0 for t in x):
            x = [t.reshape([1]) for t in x]
        return paddle.concat(x, axis=axis, name=name)

    return concat


def _greater_than_as_float(paddle):
    def greater_than(x, y, name=None):
        # Paddle 2 multiplied float tensors by this bool mask; Paddle 3 refuses float * bool.
        return paddle.greater_than(x, y, name=name).astype(x.dtype)

    return greater_than


# ppdet module -> the paddle functions it gets a Paddle-2-compatible version of (found by running
# Faster/Cascade R-CNN + FPN training and eval under Paddle 3.3).
_CONCAT_0D = {"concat": _concat}
_PATCHES = {
    "ppdet.modeling.proposal_generator.rpn_head": _CONCAT_0D,
    "ppdet.modeling.proposal_generator.target": _CONCAT_0D,
    "ppdet.modeling.proposal_generator.target_layer": _CONCAT_0D,
    "ppdet.modeling.heads.bbox_head": _CONCAT_0D,
    "ppdet.modeling.heads.cascade_head": _CONCAT_0D,
    "ppdet.modeling.post_process": _CONCAT_0D,
    "ppdet.modeling.losses.iou_loss": {"greater_than": _greater_than_as_float},
}

_applied = False


def _make_paddle_proxy(paddle, overrides):
    """A module object that is ``paddle`` except for ``overrides`` (name -> factory(paddle))."""
    proxy = types.ModuleType("paddle")
    proxy.__dict__.update({k: v for k, v in vars(paddle).items() if not k.startswith("__")})
    for name, factory in overrides.items():
        setattr(proxy, name, factory(paddle))
    proxy.__getattr__ = lambda name: getattr(paddle, name)  # attributes added to paddle later
    return proxy


def _patch_tensor_index(paddle):
    tensor_cls = paddle.Tensor
    original = tensor_cls.__index__
    if getattr(original, "_hubcls_compat", False):
        return

    def __index__(self):
        if len(self.shape) > 0 and int(self.numel()) == 1:
            return int(self.numpy().reshape(()).item())
        return original(self)

    __index__._hubcls_compat = True
    tensor_cls.__index__ = __index__


def apply() -> None:
    """Install the compatibility fixes (idempotent)."""
    global _applied
    if _applied:
        return
    from .._paddle import import_paddle

    paddle = import_paddle()
    for name, overrides in _PATCHES.items():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "paddle", None) is paddle:
            module.paddle = _make_paddle_proxy(paddle, overrides)
    _patch_tensor_index(paddle)
    _applied = True
