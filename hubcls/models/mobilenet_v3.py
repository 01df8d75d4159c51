"""MobileNetV3 large/small (Howard et al., 2019) with PaddleClas's parameter names.

Names follow pip paddleclas 2.6's *legendary* implementation (``conv``, ``blocks.N``,
``last_second_conv``, ``last_conv``, ``fc``); ``map_20_keys`` renames release/2.0 dygraph files
(``conv1``, ``conv2`` ... ``conv{N+1}``, ``out``). PaddleClas specifics kept on purpose:
channels rounded by make_divisible(8), the SE gate is hardsigmoid with slope 0.2 / offset 0.5
(paddle 2.0's ``F.hard_sigmoid``; today's ``nn.Hardsigmoid`` uses 1/6) and the SE squeeze width is
``channels // 4`` without rounding.
"""
from __future__ import annotations

import re
from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._layers import ConvBNLayer, SEModule, make_divisible
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn

# k: kernel, exp: expanded channels, c: output channels, se: squeeze-excite, act, s: stride
CONFIGS = {
    "large": [
        # k, exp, c, se, act, s
        (3, 16, 16, False, "relu", 1),
        (3, 64, 24, False, "relu", 2),
        (3, 72, 24, False, "relu", 1),
        (5, 72, 40, True, "relu", 2),
        (5, 120, 40, True, "relu", 1),
        (5, 120, 40, True, "relu", 1),
        (3, 240, 80, False, "hardswish", 2),
        (3, 200, 80, False, "hardswish", 1),
        (3, 184, 80, False, "hardswish", 1),
        (3, 184, 80, False, "hardswish", 1),
        (3, 480, 112, True, "hardswish", 1),
        (3, 672, 112, True, "hardswish", 1),
        (5, 672, 160, True, "hardswish", 2),
        (5, 960, 160, True, "hardswish", 1),
        (5, 960, 160, True, "hardswish", 1),
    ],
    "small": [
        (3, 16, 16, True, "relu", 2),
        (3, 72, 24, False, "relu", 2),
        (3, 88, 24, False, "relu", 1),
        (5, 96, 40, True, "hardswish", 2),
        (5, 240, 40, True, "hardswish", 1),
        (5, 240, 40, True, "hardswish", 1),
        (5, 120, 48, True, "hardswish", 1),
        (5, 144, 48, True, "hardswish", 1),
        (5, 288, 96, True, "hardswish", 2),
        (5, 576, 96, True, "hardswish", 1),
        (5, 576, 96, True, "hardswish", 1),
    ],
}
STEM_CHANNELS = 16
SQUEEZE_CHANNELS = {"large": 960, "small": 576}   # the last 1x1 conv before pooling (x scale)
EXPAND_CHANNELS = 1280                            # the 1x1 conv after pooling (not scaled)


def _conv_bn(in_c, out_c, kernel, stride=1, groups=1, act=None):
    return ConvBNLayer(in_c, out_c, kernel, stride=stride, groups=groups, act=act, style="legendary")


class ResidualUnit(nn.Layer):
    def __init__(self, in_c, mid_c, out_c, kernel, stride, use_se, act):
        super().__init__()
        self.if_shortcut = stride == 1 and in_c == out_c
        self.expand_conv = _conv_bn(in_c, mid_c, 1, act=act)
        self.bottleneck_conv = _conv_bn(mid_c, mid_c, kernel, stride, groups=mid_c, act=act)
        # SE: conv1 -> ReLU -> conv2 -> hardsigmoid(slope 0.2, offset 0.5); squeeze = channels // 4
        self.mid_se = SEModule(mid_c, reduction=4, kind="conv", gate="hardsigmoid") if use_se else None
        self.linear_conv = _conv_bn(mid_c, out_c, 1, act=None)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.mid_se is not None:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.if_shortcut else y


class MobileNetV3(Backbone):
    classifier_name = "fc"
    key_family = "MobileNetV3"

    def __init__(self, config: str = "large", scale: float = 1.0, num_classes: int = 1000,
                 dropout_prob: float = 0.2):
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"MobileNetV3 config must be one of {sorted(CONFIGS)}, got {config!r}")
        cfg = CONFIGS[config]
        self.scale = scale
        in_c = make_divisible(STEM_CHANNELS * scale)
        self.conv = _conv_bn(3, in_c, 3, stride=2, act="hardswish")
        blocks, reduction = [], 2
        self.feature_info = []
        for i, (k, exp, c, se, act, s) in enumerate(cfg):
            out_c = make_divisible(scale * c)
            blocks.append(ResidualUnit(in_c, make_divisible(scale * exp), out_c, k, s, se, act))
            reduction *= s
            if i + 1 < len(cfg) and cfg[i + 1][5] == 2:  # last block at this reduction
                self.feature_info.append(dict(num_chs=out_c, reduction=reduction, module=f"blocks.{i}"))
            in_c = out_c
        self.blocks = nn.Sequential(*blocks)
        squeeze = make_divisible(scale * SQUEEZE_CHANNELS[config])
        self.last_second_conv = _conv_bn(in_c, squeeze, 1, act="hardswish")
        self.feature_info.append(dict(num_chs=squeeze, reduction=reduction, module="last_second_conv"))
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.last_conv = nn.Conv2D(squeeze, EXPAND_CHANNELS, 1, bias_attr=False)
        self.hardswish = nn.Hardswish()
        self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer") if dropout_prob else nn.Identity()
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        # num_features: channels of forward_features' map; head_hidden_size: what the classifier sees
        self.num_features, self.head_hidden_size = squeeze, EXPAND_CHANNELS
        self.num_classes = num_classes
        self.fc = nn.Linear(EXPAND_CHANNELS, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        # the classifier takes the head's 1x1-conv features (head_hidden_size), not num_features
        self.num_classes = num_classes
        self.fc = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.last_second_conv(self.blocks(self.conv(x)))

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = self.hardswish(self.last_conv(self.avg_pool(x)))
        x = self.flatten(self.dropout(x))
        return x if pre_logits else self.fc(x)


def map_20_keys(state_dict: dict) -> dict:
    """release/2.0 dygraph keys -> legendary keys: ``conv1.*`` -> ``conv.*``, ``conv{i+2}.*`` ->
    ``blocks.{i}.*`` (block sub-layer names are unchanged), ``out.*`` -> ``fc.*``."""
    out = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if head == "conv1":
            head = "conv"
        elif head == "out":
            head = "fc"
        else:
            m = re.fullmatch(r"conv(\d+)", head)
            if m:
                head = f"blocks.{int(m.group(1)) - 2}"
        out[f"{head}.{rest}"] = value
    return out


def key_to_20(key: str) -> str:
    """legendary key -> release/2.0 key (the inverse of ``map_20_keys``)."""
    head, _, rest = key.partition(".")
    if head == "blocks":
        i, _, rest = rest.partition(".")
        head = f"conv{int(i) + 2}"
    else:
        head = {"conv": "conv1", "fc": "out"}.get(head, head)
    return f"{head}.{rest}"


# the weight loader's hook: {model key: release/2.0 file key}
register_key_map("MobileNetV3", lambda model: {k: key_to_20(k) for k in model.state_dict()}, scheme="2.0")

# Paddle 1.x static names (PaddleClas release/static mobilenet_v3.py): stem ``conv1``, block i is
# ``conv<i+2>`` with ``_expand`` / ``_depthwise`` / ``_linear`` convs and ``_se_1`` / ``_se_2``,
# BN ``<conv>_bn``; then ``conv_last``, ``last_1x1_conv`` (no BN, no bias) and ``fc``.
_V3_PARTS = {"expand_conv": "expand", "bottleneck_conv": "depthwise", "linear_conv": "linear"}
_STATIC_RULES = [
    *conv_bn_rules(r"conv", "conv1", "conv1_bn", conv_attr="conv", bn_attr="bn"),
    *conv_bn_rules(r"blocks\.(\d+)\.(\w+_conv)", lambda m: f"conv{int(m[1]) + 2}_{_V3_PARTS[m[2]]}",
                   lambda m: f"conv{int(m[1]) + 2}_{_V3_PARTS[m[2]]}_bn", conv_attr="conv", bn_attr="bn"),
    *fc_rules(r"blocks\.(\d+)\.mid_se\.conv([12])", lambda m: f"conv{int(m[1]) + 2}_se_{m[2]}"),
    *conv_bn_rules(r"last_second_conv", "conv_last", "conv_last_bn", conv_attr="conv", bn_attr="bn"),
    (r"last_conv\.weight", "last_1x1_conv_weights"),
    *fc_rules(r"fc", "fc"),
]
register_key_map("MobileNetV3", static_map(_STATIC_RULES), scheme="static")


@register_model
def MobileNetV3_large_x0_35(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 large, width x0.35."""
    return MobileNetV3(config="large", scale=0.35, **kwargs)


@register_model
def MobileNetV3_large_x0_5(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 large, width x0.5."""
    return MobileNetV3(config="large", scale=0.5, **kwargs)


@register_model
def MobileNetV3_large_x0_75(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 large, width x0.75."""
    return MobileNetV3(config="large", scale=0.75, **kwargs)


@register_model
def MobileNetV3_large_x1_0(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 large, width x1.0."""
    return MobileNetV3(config="large", scale=1.0, **kwargs)


@register_model
def MobileNetV3_large_x1_25(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 large, width x1.25."""
    return MobileNetV3(config="large", scale=1.25, **kwargs)


@register_model
def MobileNetV3_small_x0_35(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 small, width x0.35."""
    return MobileNetV3(config="small", scale=0.35, **kwargs)


@register_model
def MobileNetV3_small_x0_5(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 small, width x0.5."""
    return MobileNetV3(config="small", scale=0.5, **kwargs)


@register_model
def MobileNetV3_small_x0_75(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 small, width x0.75."""
    return MobileNetV3(config="small", scale=0.75, **kwargs)


@register_model
def MobileNetV3_small_x1_0(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 small, width x1.0."""
    return MobileNetV3(config="small", scale=1.0, **kwargs)


@register_model
def MobileNetV3_small_x1_25(**kwargs: Any) -> MobileNetV3:
    """MobileNetV3 small, width x1.25."""
    return MobileNetV3(config="small", scale=1.25, **kwargs)


# The int8 entry is a quantization-aware-trained checkpoint of the same architecture; its release/2.0
# URL is only PaddleClas's naming pattern (never published as a link), so it may not exist.
default_cfgs = [
    zoo_cfg("MobileNetV3_large_x0_35", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_large_x0_5", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_large_x0_75", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_large_x1_0", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_large_x1_25", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_small_x0_35", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_small_x0_5", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_small_x0_75", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_small_x1_0", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_small_x1_25", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_large_x1_0_ssld", arch="MobileNetV3_large_x1_0", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_small_x1_0_ssld", arch="MobileNetV3_small_x1_0", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_small_x0_35_ssld", arch="MobileNetV3_small_x0_35", key_scheme="2.0"),
    zoo_cfg("MobileNetV3_large_x1_0_ssld_int8", arch="MobileNetV3_large_x1_0", key_scheme="2.0",
            extra={"note": "quantization-aware checkpoint; URL unverified"}),
]
register_pretrained(*default_cfgs)
