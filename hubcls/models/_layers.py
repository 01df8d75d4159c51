"""Shared building blocks for the model families.

Parameter names matter: official PaddleClas weight files are keyed by the attribute path of each
parameter, so the layers here let a family choose the attribute names its PaddleClas counterpart
uses (``style="legendary"`` -> ``conv`` / ``bn`` as in ``ppcls/arch/backbone/legendary_models``;
``style="zoo"`` -> ``_conv`` / ``_batch_norm`` as in release/2.0 and ``model_zoo``).

Layers may also record the *static* (Paddle 1.x ``save_persistables``) name of each parameter in
``self._static_names`` (attribute path inside the layer -> static file name); the static weight
loader (hubcls.models._static) collects them by walking the model. Families whose layers do not
carry names register a ``scheme="static"`` key map instead.
"""
from __future__ import annotations

import math
from typing import Optional, Union

from .._paddle import import_paddle
from ._features import Backbone, linear  # noqa: F401 - linear: the families import it from here

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


def make_divisible(v: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` without going below 90% of ``v``
    (MobileNetV2/V3, GhostNet, EfficientNet channel rule)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Hardsigmoid(nn.Layer):
    """hardsigmoid with PaddleClas MobileNetV3's slope 0.2 / offset 0.5 (nn.Hardsigmoid uses 1/6)."""

    def __init__(self, slope: float = 0.2, offset: float = 0.5):
        super().__init__()
        self.slope, self.offset = slope, offset

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.hardsigmoid(x, slope=self.slope, offset=self.offset)


class Swish(nn.Layer):
    """x * sigmoid(x) (PaddleClas's swish; identical to nn.Silu)."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * F.sigmoid(x)


def get_act(act: Union[str, nn.Layer, None, bool]) -> Optional[nn.Layer]:
    """Activation layer by name (None/'' -> None). Layers have no parameters, so names don't matter."""
    if act is None or act == "" or act is False:
        return None
    if isinstance(act, nn.Layer):
        return act
    name = str(act).lower()
    table = {
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "hardswish": nn.Hardswish,
        "hard_swish": nn.Hardswish,
        "hardsigmoid": Hardsigmoid,
        "hard_sigmoid": Hardsigmoid,
        "sigmoid": nn.Sigmoid,
        "swish": Swish,
        "silu": nn.Silu,
        "gelu": nn.GELU,
        "tanh": nn.Tanh,
        "leaky_relu": lambda: nn.LeakyReLU(0.1),
        "leakyrelu": lambda: nn.LeakyReLU(0.1),
        "prelu": nn.PReLU,
    }
    if name not in table:
        raise ValueError(f"unknown activation {act!r}; known: {', '.join(sorted(table))}")
    return table[name]()


_STYLES = {"legendary": ("conv", "bn"), "zoo": ("_conv", "_batch_norm")}
DATA_FORMATS = ("NCHW", "NHWC")


def check_data_format(data_format: str) -> str:
    """'NCHW' or 'NHWC' (any case), else ValueError naming both."""
    fmt = str(data_format).upper()
    if fmt not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'NCHW' or 'NHWC', got {data_format!r}")
    return fmt


def to_channels_last(x: paddle.Tensor) -> paddle.Tensor:
    """NCHW -> NHWC (a model built with data_format='NHWC' takes NCHW images like every other model
    and runs channels-last inside, as PaddleClas's models do)."""
    return paddle.transpose(x, [0, 2, 3, 1])


def to_channels_first(x: paddle.Tensor) -> paddle.Tensor:
    """NHWC -> NCHW (feature maps leave a channels-last model in the common layout)."""
    return paddle.transpose(x, [0, 3, 1, 2])


class ConvBNLayer(nn.Layer):
    """Conv2D (no bias) + BatchNorm + optional activation, optionally preceded by the ResNet-vd
    2x2 average pool ("vd mode": the pool does the striding, the conv runs at stride 1).

    style: 'legendary' (attributes ``conv``/``bn``) or 'zoo' (``_conv``/``_batch_norm``).
    vd_pool: 'zoo' -> AvgPool2D(2, 2, padding=0, ceil_mode=True) as in release/2.0;
             'legendary' -> AvgPool2D(2, stride, padding='SAME', ceil_mode=True) as in legendary ResNet.
    static_name / bn_static_name: Paddle 1.x parameter prefixes (conv: ``<static_name>_weights``,
             BN: ``<bn_static_name>_{scale,offset,mean,variance}``).
    data_format: 'NCHW' or 'NHWC' (channels-last, the layout of PaddleClas's ``data_format`` option).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, act=None,
                 is_vd_mode=False, style="zoo", vd_pool="zoo", padding=None, dilation=1,
                 static_name=None, bn_static_name=None, lr_mult=1.0, data_format="NCHW"):
        super().__init__()
        df = check_data_format(data_format)
        conv_attr, bn_attr = _STYLES[style]
        self._conv_attr, self._bn_attr = conv_attr, bn_attr
        self.is_vd_mode = is_vd_mode
        if is_vd_mode:
            if vd_pool == "legendary":
                self.avg_pool = nn.AvgPool2D(kernel_size=2, stride=stride, padding="SAME", ceil_mode=True,
                                             data_format=df)
            else:
                self._pool2d_avg = nn.AvgPool2D(kernel_size=2, stride=2, padding=0, ceil_mode=True, data_format=df)
            self._vd_pool_layer = "avg_pool" if vd_pool == "legendary" else "_pool2d_avg"
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        w_attr = paddle.ParamAttr(learning_rate=lr_mult) if lr_mult != 1.0 else None
        conv = nn.Conv2D(in_channels, out_channels, kernel_size,
                         stride=1 if (is_vd_mode and vd_pool == "legendary") else stride,
                         padding=padding, dilation=dilation, groups=groups,
                         weight_attr=w_attr, bias_attr=False, data_format=df)
        bn = nn.BatchNorm2D(out_channels, data_format=df)
        setattr(self, conv_attr, conv)
        setattr(self, bn_attr, bn)
        self.act = get_act(act)
        if static_name is not None:
            if bn_static_name is None:
                bn_static_name = "bn_" + static_name if static_name == "conv1" else "bn" + static_name[3:]
            self._static_names = {
                f"{conv_attr}.weight": static_name + "_weights",
                f"{bn_attr}.weight": bn_static_name + "_scale",
                f"{bn_attr}.bias": bn_static_name + "_offset",
                f"{bn_attr}._mean": bn_static_name + "_mean",
                f"{bn_attr}._variance": bn_static_name + "_variance",
            }

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.is_vd_mode:
            x = getattr(self, self._vd_pool_layer)(x)
        x = getattr(self, self._conv_attr)(x)
        x = getattr(self, self._bn_attr)(x)
        if self.act is not None:
            x = self.act(x)
        return x


class SEModule(nn.Layer):
    """Squeeze-and-excitation.

    kind='linear' : release/2.0 SE-ResNet(X)/SENet layout (Linear ``squeeze`` -> ReLU -> Linear
                    ``excitation`` -> sigmoid); mid = int(channels / reduction).
    kind='conv'   : 1x1-conv layout (``conv1`` -> ReLU -> ``conv2`` -> gate) as in MobileNetV3/GhostNet;
                    mid = make_divisible(channels / reduction) when ``divisible``, gate e.g. 'hardsigmoid'.
    """

    def __init__(self, channels, reduction=16, kind="linear", gate="sigmoid", mid_channels=None,
                 names=None, static_name=None, divisible=False, data_format="NCHW"):
        super().__init__()
        self.kind = kind
        self.data_format = check_data_format(data_format)
        if mid_channels is None:
            mid_channels = make_divisible(channels / reduction) if divisible else int(channels / reduction)
        self.pool = nn.AdaptiveAvgPool2D(1, data_format=self.data_format)
        self.relu = nn.ReLU()
        self.gate = get_act(gate)
        if kind == "linear":
            n1, n2 = names or ("squeeze", "excitation")
            stdv1 = 1.0 / math.sqrt(channels)
            stdv2 = 1.0 / math.sqrt(mid_channels)
            uni = paddle.nn.initializer.Uniform
            l1 = nn.Linear(channels, mid_channels, weight_attr=paddle.ParamAttr(initializer=uni(-stdv1, stdv1)))
            l2 = nn.Linear(mid_channels, channels, weight_attr=paddle.ParamAttr(initializer=uni(-stdv2, stdv2)))
        elif kind == "conv":
            n1, n2 = names or ("conv1", "conv2")
            l1 = nn.Conv2D(channels, mid_channels, 1, data_format=self.data_format)
            l2 = nn.Conv2D(mid_channels, channels, 1, data_format=self.data_format)
        else:
            raise ValueError(f"SEModule kind must be 'linear' or 'conv', got {kind!r}")
        self._n1, self._n2 = n1, n2
        setattr(self, n1, l1)
        setattr(self, n2, l2)
        if static_name is not None:
            self._static_names = {
                f"{n1}.weight": static_name + "_sqz_weights",
                f"{n1}.bias": static_name + "_sqz_offset",
                f"{n2}.weight": static_name + "_exc_weights",
                f"{n2}.bias": static_name + "_exc_offset",
            }

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        s = self.pool(x)
        if self.kind == "linear":
            s = paddle.flatten(s, 1)
        s = self.relu(getattr(self, self._n1)(s))
        s = self.gate(getattr(self, self._n2)(s))
        if self.kind == "linear":
            s = s.unsqueeze([2, 3] if self.data_format == "NCHW" else [1, 2])
        return x * s


def ConvBN(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: Optional[int] = None,
           groups: int = 1, dilation: int = 1, act: Optional[str] = None) -> ConvBNLayer:
    """2.0-scheme Conv2D (no bias) -> BatchNorm -> act, attributes ``_conv`` / ``_batch_norm``."""
    return ConvBNLayer(in_ch, out_ch, kernel_size, stride=stride, groups=groups, act=act,
                       style="zoo", padding=padding, dilation=dilation)


class BNActConv(nn.Layer):
    """Pre-activation unit: BatchNorm (+act) -> Conv2D (no bias), 2.0 names ``_batch_norm``/``_conv``."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, act: Optional[str] = "relu"):
        super().__init__()
        self._batch_norm = nn.BatchNorm2D(in_ch)
        self.act = get_act(act)
        self._conv = nn.Conv2D(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                               groups=groups, bias_attr=False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._batch_norm(x)
        if self.act is not None:
            x = self.act(x)
        return self._conv(x)


class PooledBackbone(Backbone):
    """Backbone whose head is global average pool -> flatten -> (dropout) -> Linear at
    ``self.<classifier_name>``. Families set ``global_pool`` (and ``head_drop`` if any)."""

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = paddle.flatten(self.global_pool(x), start_axis=1)
        # sub-layers live in _sub_layers (a class attribute default would shadow them)
        drop = self._sub_layers.get("head_drop")
        if drop is not None:
            x = drop(x)
        return x if pre_logits else self.get_classifier()(x)
