"""DarkNet53 (the YOLOv3 backbone, Redmon & Farhadi 2018) with PaddleClas's parameter names.

Release/2.0 dygraph names as in pip paddleclas's ``model_zoo``: ``_conv1``, ``_conv2``, residual
blocks ``_basic_block_<stage><n>`` (stage 0..4, n from 1), ``_downsample_<stage>`` and ``_out``.
PaddleClas evaluates it at 256x256.
"""
from __future__ import annotations

import math
from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn

STAGES = (1, 2, 8, 8, 4)   # residual blocks per stage; a stride-2 conv follows stages 0-3


class _ConvBNReLU(nn.Layer):
    # like _layers.ConvBNLayer, but DarkNet's BN attribute is ``_bn`` (not ``_batch_norm``);
    # PaddleClas's DarkNet uses ReLU, not leaky ReLU
    def __init__(self, in_c, out_c, kernel, stride):
        super().__init__()
        self._conv = nn.Conv2D(in_c, out_c, kernel, stride=stride, padding=(kernel - 1) // 2, bias_attr=False)
        self._bn = nn.BatchNorm2D(out_c)
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.relu(self._bn(self._conv(x)))


_cbr = _ConvBNReLU


class BasicBlock(nn.Layer):
    def __init__(self, channels, mid):
        super().__init__()
        self._conv1 = _cbr(channels, mid, 1, 1)
        self._conv2 = _cbr(mid, mid * 2, 3, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x + self._conv2(self._conv1(x))


class DarkNet(Backbone):
    classifier_name = "_out"

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv1 = _cbr(3, 32, 3, 1)
        self._conv2 = _cbr(32, 64, 3, 2)
        self._stages = []
        self.feature_info = []
        channels, reduction = 64, 2
        for stage, repeats in enumerate(STAGES):
            blocks = []
            for n in range(repeats):
                name = f"_basic_block_{stage}{n + 1}"
                setattr(self, name, BasicBlock(channels, channels // 2))
                blocks.append(getattr(self, name))
            self.feature_info.append(dict(num_chs=channels, reduction=reduction, module=name))
            down = None
            if stage < len(STAGES) - 1:
                down = _cbr(channels, channels * 2, 3, 2)
                setattr(self, f"_downsample_{stage}", down)
                channels, reduction = channels * 2, reduction * 2
            self._stages.append((blocks, down))
        self._pool = nn.AdaptiveAvgPool2D(1)
        self.num_features = channels
        self.num_classes = num_classes
        stdv = 1.0 / math.sqrt(channels)
        self._out = nn.Linear(channels, num_classes,
                              weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-stdv, stdv))) \
            if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._conv2(self._conv1(x))
        for blocks, down in self._stages:
            for block in blocks:
                x = block(x)
            if down is not None:
                x = down(x)
        return x

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = paddle.flatten(self._pool(x), start_axis=1)
        return x if pre_logits else self._out(x)


# Paddle 1.x static names (PaddleClas release/static darknet.py): YOLOv3-style dotted names,
# ``yolo_input.conv.weights``, ``stage.<s>.<block>.<conv>.bn.var``, classifier ``fc_weights``.
def _unit(unit, base):
    join = (lambda part: lambda m: base(m) + part) if callable(base) else (lambda part: base + part)
    return conv_bn_rules(unit, join(".conv"), join(".bn"), conv_attr="_conv", bn_attr="_bn",
                         conv_suffix=".weights", bn_suffixes=(".scale", ".offset", ".mean", ".var"))


_STATIC_RULES = [
    *_unit(r"_conv1", "yolo_input"),
    *_unit(r"_conv2", "yolo_input.downsample"),
    *_unit(r"_basic_block_(\d)(\d+)\._conv([12])", lambda m: f"stage.{m[1]}.{int(m[2]) - 1}.{int(m[3]) - 1}"),
    *_unit(r"_downsample_(\d)", r"stage.\1.downsample"),
    *fc_rules(r"_out", "fc"),
]
register_key_map("DarkNet", static_map(_STATIC_RULES), scheme="static")


@register_model
def DarkNet53(**kwargs: Any) -> DarkNet:
    """DarkNet-53, the YOLOv3 backbone."""
    return DarkNet(**kwargs)


default_cfgs = [
    zoo_cfg("DarkNet53", key_scheme="2.0"),
]
register_pretrained(*default_cfgs)
