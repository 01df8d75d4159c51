"""GhostNet (Han et al., 2020) with PaddleClas's parameter names.

PaddleClas keeps GhostNet in ``model_zoo`` with release/2.0 dygraph names (``conv1``,
``_ghostbottleneck_N``, ``conv_last``, ``fc_0``, ``fc_1``). PaddleClas specifics kept: widths are
rounded with make_divisible(4); the SE gate is clip(x, 0, 1) on Linear layers; the head is
pool -> 1x1 conv+BN+ReLU (``fc_0``, 1280 channels) -> dropout -> Linear (``fc_1``).
"""
from __future__ import annotations

import math
from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._layers import ConvBNLayer, SEModule, make_divisible
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, register_static_fold, scale_tensor, static_map

paddle = import_paddle()
nn = paddle.nn

# k: kernel, t: hidden channels, c: output channels, se, s: stride
CONFIG = [
    (3, 16, 16, 0, 1), (3, 48, 24, 0, 2), (3, 72, 24, 0, 1), (5, 72, 40, 1, 2), (5, 120, 40, 1, 1),
    (3, 240, 80, 0, 2), (3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 1, 1),
    (3, 672, 112, 1, 1), (5, 672, 160, 1, 2), (5, 960, 160, 0, 1), (5, 960, 160, 1, 1), (5, 960, 160, 0, 1),
    (5, 960, 160, 1, 1),
]
HEAD_CHANNELS = 1280


def _conv_bn(in_c, out_c, kernel, stride=1, groups=1, act=None):
    conv = ConvBNLayer(in_c, out_c, kernel, stride=stride, groups=groups, act=act, style="zoo")
    nn.initializer.KaimingNormal()(conv._conv.weight)  # PaddleClas's init for these convs
    return conv


class GhostModule(nn.Layer):
    """Half the output from a regular conv, the other half from a cheap depthwise conv of it."""

    def __init__(self, in_c, out_c, kernel=1, ratio=2, dw_size=3, stride=1, relu=True):
        super().__init__()
        init_c = int(math.ceil(out_c / ratio))
        act = "relu" if relu else None
        self.primary_conv = _conv_bn(in_c, init_c, kernel, stride, act=act)
        self.cheap_operation = _conv_bn(init_c, init_c * (ratio - 1), dw_size, 1, groups=init_c, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.primary_conv(x)
        return paddle.concat([x, self.cheap_operation(x)], axis=1)


class GhostBottleneck(nn.Layer):
    def __init__(self, in_c, hidden, out_c, kernel, stride, use_se):
        super().__init__()
        self._stride, self._use_se = stride, use_se
        self.ghost_module_1 = GhostModule(in_c, hidden, relu=True)
        if stride == 2:
            self.depthwise_conv = _conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        if use_se:
            self.se_block = SEModule(hidden, reduction=4, kind="linear", gate=nn.Hardtanh(0.0, 1.0))
        self.ghost_module_2 = GhostModule(hidden, out_c, relu=False)
        self._identity = stride == 1 and in_c == out_c
        if not self._identity:
            self.shortcut_depthwise = _conv_bn(in_c, in_c, kernel, stride, groups=in_c)
            self.shortcut_conv = _conv_bn(in_c, out_c, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.ghost_module_1(x)
        if self._stride == 2:
            y = self.depthwise_conv(y)
        if self._use_se:
            y = self.se_block(y)
        y = self.ghost_module_2(y)
        shortcut = x if self._identity else self.shortcut_conv(self.shortcut_depthwise(x))
        return y + shortcut


class GhostNet(Backbone):
    classifier_name = "fc_1"

    def __init__(self, scale: float = 1.0, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self.scale = scale
        out_c = int(make_divisible(16 * scale, 4))
        self.conv1 = _conv_bn(3, out_c, 3, stride=2, act="relu")
        self.ghost_bottleneck_list = []
        self.feature_info = []
        reduction = 2
        for idx, (k, exp, c, se, s) in enumerate(CONFIG):
            in_c, out_c = out_c, int(make_divisible(c * scale, 4))
            hidden = int(make_divisible(exp * scale, 4))
            name = f"_ghostbottleneck_{idx}"
            self.ghost_bottleneck_list.append(
                self.add_sublayer(name, GhostBottleneck(in_c, hidden, out_c, k, s, bool(se))))
            reduction *= s
            if idx + 1 < len(CONFIG) and CONFIG[idx + 1][4] == 2:  # last block at this reduction
                self.feature_info.append(dict(num_chs=out_c, reduction=reduction, module=name))
        last_c = int(make_divisible(CONFIG[-1][1] * scale, 4))
        self.conv_last = _conv_bn(out_c, last_c, 1, act="relu")
        self.feature_info.append(dict(num_chs=last_c, reduction=reduction, module="conv_last"))
        self.pool2d_gap = nn.AdaptiveAvgPool2D(1)
        self.fc_0 = _conv_bn(last_c, HEAD_CHANNELS, 1, act="relu")
        self.dropout = nn.Dropout(p=dropout)
        # num_features: channels of forward_features' map; head_hidden_size: what the classifier sees
        self.num_features, self.head_hidden_size = last_c, HEAD_CHANNELS
        self.num_classes = num_classes
        stdv = 1.0 / math.sqrt(HEAD_CHANNELS)
        self.fc_1 = nn.Linear(HEAD_CHANNELS, num_classes,
                              weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-stdv, stdv))) \
            if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        # the classifier takes the head's fc_0 features (head_hidden_size), not num_features
        self.num_classes = num_classes
        self.fc_1 = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        for block in self.ghost_bottleneck_list:
            x = block(x)
        return self.conv_last(x)

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = self.dropout(self.fc_0(self.pool2d_gap(x)))
        x = paddle.flatten(x, start_axis=1)
        return x if pre_logits else self.fc_1(x)


# Paddle 1.x static names (PaddleClas release/static ghostnet.py): the unit's path joined with "_"
# (``_ghostbottleneck_3_ghost_module_1_primary_conv``), depthwise convs doubled
# (``..._depthwise_depthwise``), BN ``<unit>_bn_scale`` / ``_bn_offset`` / ``_bn_mean`` but
# ``<unit>_variance``; SE ``<block>_se_1`` / ``_se_2``; classifier ``fc_1``.
def _joined(m):
    return m[0].rsplit(".", 2)[0].replace(".", "_").replace("depthwise_conv", "depthwise_depthwise").replace(
        "shortcut_depthwise", "shortcut_depthwise_depthwise")


_STATIC_RULES = [
    *conv_bn_rules(r"[\w.]+", _joined, _joined,
                   bn_suffixes=("_bn_scale", "_bn_offset", "_bn_mean", "_variance")),
    *fc_rules(r"(_ghostbottleneck_\d+)\.se_block\.squeeze", r"\1_se_1"),
    *fc_rules(r"(_ghostbottleneck_\d+)\.se_block\.excitation", r"\1_se_2"),
    *fc_rules(r"fc_1", "fc_1"),
]
register_key_map("GhostNet", static_map(_STATIC_RULES), scheme="static")


def _fold_dropout(model, state):
    # the 2020 program's dropout before fc_1 scaled by (1 - 0.2) at inference (fluid's default
    # downgrade_in_infer); this model's dropout does not, so the scale moves into the weights
    scale_tensor(state, "fc_1_weights", 0.8)
    return state


register_static_fold("GhostNet", _fold_dropout)


@register_model
def GhostNet_x0_5(**kwargs: Any) -> GhostNet:
    """GhostNet x0.5."""
    return GhostNet(scale=0.5, **kwargs)


@register_model
def GhostNet_x1_0(**kwargs: Any) -> GhostNet:
    """GhostNet x1.0."""
    return GhostNet(scale=1.0, **kwargs)


@register_model
def GhostNet_x1_3(**kwargs: Any) -> GhostNet:
    """GhostNet x1.3."""
    return GhostNet(scale=1.3, **kwargs)


default_cfgs = [
    zoo_cfg("GhostNet_x0_5", key_scheme="2.0"),
    zoo_cfg("GhostNet_x1_0", key_scheme="2.0"),
    zoo_cfg("GhostNet_x1_3", key_scheme="2.0"),
    zoo_cfg("GhostNet_x1_3_ssld", arch="GhostNet_x1_3", key_scheme="2.0"),
]
register_pretrained(*default_cfgs)
