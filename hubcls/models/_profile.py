"""Parameter and MAC counts with paddle.flops()'s conventions (the source of the zoo table's
macs_g_today column), counted with forward hooks.

Conventions, as in paddle/hapi/dynamic_flops.py:
* Conv: out.numel() * (in_ch / groups * kh * kw + has_bias)
* Linear: out.numel() * in_features
* BatchNorm (eval): 2 * in.numel()
* AvgPool: out.numel(); AdaptiveAvgPool: out.numel() * (kernel + 1)
* LeakyReLU: in.numel(); ReLU/ReLU6/Dropout/MaxPool/others: 0
paddle.flops matches layer types exactly (a subclass counts 0); here ``isinstance`` is used, which
only differs for subclasses of those layers (none in hubcls). The result is MACs, and
``flops = 2 * macs``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple, Union

import numpy as np

from .._paddle import import_paddle

if TYPE_CHECKING:
    import paddle


def _counters(nn):
    def conv(m, x, y):
        x = x[0]
        k = int(np.prod(m.weight.shape[2:]))
        bias = 1 if m.bias is not None else 0
        return int(int(y.numel()) * (x.shape[1] / m._groups * k + bias))

    def linear(m, x, y):
        return int(m.weight.shape[0]) * int(y.numel())

    def bn(m, x, y):
        return 2 * int(x[0].numel())

    def avgpool(m, x, y):
        return int(y.numel())

    def adaptive_avgpool(m, x, y):
        kernel = np.array(x[0].shape[2:]) // np.array(y.shape[2:])
        return int((int(np.prod(kernel)) + 1) * int(y.numel()))

    def leaky(m, x, y):
        return int(x[0].numel())

    return [
        ((nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Conv1DTranspose, nn.Conv2DTranspose, nn.Conv3DTranspose), conv),
        ((nn.Linear,), linear),
        ((nn.BatchNorm2D, nn.BatchNorm, nn.BatchNorm1D, nn.BatchNorm3D), bn),
        ((nn.AdaptiveAvgPool1D, nn.AdaptiveAvgPool2D, nn.AdaptiveAvgPool3D), adaptive_avgpool),
        ((nn.AvgPool1D, nn.AvgPool2D, nn.AvgPool3D), avgpool),
        ((nn.LeakyReLU,), leaky),
    ]


def count_params(model: "paddle.nn.Layer") -> int:
    """Number of parameters (trainable or not; buffers such as BN statistics excluded)."""
    return int(sum(int(np.prod(p.shape)) for p in model.parameters()))


def count_macs(model: "paddle.nn.Layer", input_size: Union[int, Tuple[int, int]]) -> int:
    """MACs of one forward pass on a (1, 3, H, W) zero input, in eval mode."""
    paddle = import_paddle()
    nn = paddle.nn
    table = _counters(nn)
    total = [0]
    handles = []

    def make(fn):
        def hook(layer, inputs, output):
            total[0] += abs(fn(layer, inputs, output))
        return hook

    for layer in model.sublayers(include_self=True):
        if list(layer.children()):
            continue  # leaves only, like paddle.flops
        for types, fn in table:
            if isinstance(layer, types):
                handles.append(layer.register_forward_post_hook(make(fn)))
                break
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, 3, int(input_size[0]), int(input_size[1])], dtype="float32"))
    finally:
        for h in handles:
            h.remove()
        if was_training:
            model.train()
    return int(total[0])


def profile(name_or_model: Union[str, "paddle.nn.Layer"], input_size: Optional[int] = None) -> dict:
    """dict(params, macs, flops=2*macs, input_size) for a model name or a built model.

    input_size: square side or (H, W); default: the model's eval crop (pretrained_cfg.input_size).
    """
    if isinstance(name_or_model, str):
        from ._resolve import create_model

        model = create_model(name_or_model)
    else:
        model = name_or_model
    if input_size is None:
        cfg = getattr(model, "pretrained_cfg", None)
        input_size = cfg.input_size if cfg is not None else 224
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    macs = count_macs(model, hw)
    return dict(params=count_params(model), macs=macs, flops=2 * macs, input_size=hw)
