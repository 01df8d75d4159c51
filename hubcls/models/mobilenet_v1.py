"""MobileNetV1 (Howard et al., 2017) with PaddleClas's parameter names.

Parameter names follow pip paddleclas 2.6's *legendary* implementation (``conv``, ``blocks.N``,
``fc``), so its ``legendary_models`` weight files load unchanged; ``map_20_keys`` renames the
release/2.0 dygraph files (``conv1``, ``conv2_1`` ... ``conv6``, ``out``).
"""
from __future__ import annotations

import re
from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._layers import ConvBNLayer
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn

# Each depthwise-separable block: (output channels of the pointwise conv, stride); the input
# channels are the previous block's output. Channel counts are for scale 1.0.
_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
# release/2.0 sub-layer names of the 13 blocks, in order
_NAMES_20 = ["conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv4_1", "conv4_2"] + [
    f"conv5_{i}" for i in range(1, 7)] + ["conv6"]


def _conv_bn_relu(in_ch, out_ch, kernel, stride, groups=1):
    # legendary attribute names: conv / bn
    return ConvBNLayer(in_ch, out_ch, kernel, stride=stride, groups=groups, act="relu", style="legendary")


class DepthwiseSeparable(nn.Layer):
    def __init__(self, in_ch, out_ch, stride):
        super().__init__()
        self.depthwise_conv = _conv_bn_relu(in_ch, in_ch, 3, stride, groups=in_ch)
        self.pointwise_conv = _conv_bn_relu(in_ch, out_ch, 1, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class MobileNetV1Model(Backbone):
    """MobileNetV1 with width multiplier ``scale`` (PaddleClas truncates channels with int())."""

    classifier_name = "fc"
    key_family = "MobileNetV1"

    def __init__(self, scale: float = 1.0, num_classes: int = 1000):
        super().__init__()
        self.scale = scale
        stem_ch = int(32 * scale)
        self.conv = _conv_bn_relu(3, stem_ch, 3, 2)
        blocks, in_ch, reduction = [], stem_ch, 2
        self.feature_info = []
        for i, (ch, stride) in enumerate(_BLOCKS):
            out_ch = int(ch * scale)
            blocks.append(DepthwiseSeparable(in_ch, out_ch, stride))
            reduction *= stride
            # one feature level per reduction (2, 4, 8, 16, 32): the last block at it
            if i + 1 == len(_BLOCKS) or _BLOCKS[i + 1][1] == 2:
                self.feature_info.append(dict(num_chs=out_ch, reduction=reduction, module=f"blocks.{i}"))
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.num_features = in_ch
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.num_classes = num_classes
        self.fc = nn.Linear(in_ch, num_classes, weight_attr=nn.initializer.KaimingNormal()) \
            if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.blocks(self.conv(x))

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = self.flatten(self.avg_pool(x))
        return x if pre_logits else self.fc(x)


def map_20_keys(state_dict: dict) -> dict:
    """release/2.0 dygraph keys -> legendary keys (``conv2_1._depthwise_conv._conv.weight`` ->
    ``blocks.0.depthwise_conv.conv.weight``, ``conv1.*`` -> ``conv.*``, ``out.*`` -> ``fc.*``)."""
    block_index = {name: i for i, name in enumerate(_NAMES_20)}
    out = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if head == "conv1":
            head = "conv"
        elif head == "out":
            head = "fc"
        elif head in block_index:
            head = f"blocks.{block_index[head]}"
        rest = re.sub(r"(^|\.)_(depthwise_conv|pointwise_conv|conv)(?=\.)", r"\1\2", rest)
        rest = rest.replace("_batch_norm.", "bn.")
        out[f"{head}.{rest}"] = value
    return out


_SUB_TO_20 = {"depthwise_conv": "_depthwise_conv", "pointwise_conv": "_pointwise_conv", "conv": "_conv",
              "bn": "_batch_norm"}


def key_to_20(key: str) -> str:
    """legendary key -> release/2.0 key (the inverse of ``map_20_keys``)."""
    parts = key.split(".")
    if parts[0] == "blocks":
        head, rest = _NAMES_20[int(parts[1])], parts[2:]
    else:
        head, rest = {"conv": "conv1", "fc": "out"}[parts[0]], parts[1:]
    return ".".join([head] + [_SUB_TO_20.get(p, p) for p in rest[:-1]] + rest[-1:])


# the weight loader's hook: {model key: release/2.0 file key}
register_key_map("MobileNetV1", lambda model: {k: key_to_20(k) for k in model.state_dict()}, scheme="2.0")

# Paddle 1.x static names (PaddleClas release/static mobilenet_v1.py): stem ``conv1``, blocks by
# their release/2.0 names with ``_dw`` / ``_sep`` convs, BN ``<conv>_bn``, classifier ``fc7``.
_STATIC_RULES = [
    *conv_bn_rules(r"conv", "conv1", "conv1_bn", conv_attr="conv", bn_attr="bn"),
    *[rule for i, name in enumerate(_NAMES_20) for part, suffix in (("depthwise", "dw"), ("pointwise", "sep"))
      for rule in conv_bn_rules(rf"blocks\.{i}\.{part}_conv", f"{name}_{suffix}", f"{name}_{suffix}_bn",
                                conv_attr="conv", bn_attr="bn")],
    *fc_rules(r"fc", "fc7"),
]
register_key_map("MobileNetV1", static_map(_STATIC_RULES), scheme="static")


@register_model
def MobileNetV1_x0_25(**kwargs: Any) -> MobileNetV1Model:
    """MobileNetV1, width x0.25."""
    return MobileNetV1Model(scale=0.25, **kwargs)


@register_model
def MobileNetV1_x0_5(**kwargs: Any) -> MobileNetV1Model:
    """MobileNetV1, width x0.5."""
    return MobileNetV1Model(scale=0.5, **kwargs)


@register_model
def MobileNetV1_x0_75(**kwargs: Any) -> MobileNetV1Model:
    """MobileNetV1, width x0.75."""
    return MobileNetV1Model(scale=0.75, **kwargs)


@register_model
def MobileNetV1(**kwargs: Any) -> MobileNetV1Model:
    """MobileNetV1, width x1.0."""
    return MobileNetV1Model(scale=1.0, **kwargs)


# The release/2.0 files (``url``) use the 2.0 key scheme, the legendary ones the current names.
default_cfgs = [
    zoo_cfg("MobileNetV1_x0_25", key_scheme="2.0"),
    zoo_cfg("MobileNetV1_x0_5", key_scheme="2.0"),
    zoo_cfg("MobileNetV1_x0_75", key_scheme="2.0"),
    zoo_cfg("MobileNetV1", key_scheme="2.0"),
    zoo_cfg("MobileNetV1_ssld", arch="MobileNetV1", key_scheme="2.0"),
]
register_pretrained(*default_cfgs)
