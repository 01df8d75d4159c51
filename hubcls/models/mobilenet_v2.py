"""MobileNetV2 (Sandler et al., 2018) with PaddleClas's parameter names.

PaddleClas keeps MobileNetV2 in ``model_zoo`` with the release/2.0 dygraph names (``conv1``,
``conv2`` ... ``conv8`` stages of inverted residuals, ``conv9``, ``out``), so the official weight
files load without renaming. Widths: PaddleClas truncates ``c * scale`` with int() (no
make_divisible) and widens the last conv only for scale > 1.
"""
from __future__ import annotations

from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._layers import ConvBNLayer, check_data_format, to_channels_first, to_channels_last
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn

# (expansion t, channels c, repeats n, first stride s) per stage; stages are named conv2 ... conv8
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class InvertedResidualUnit(nn.Layer):
    def __init__(self, in_c, out_c, stride, expansion, data_format="NCHW"):
        super().__init__()
        mid = int(round(in_c * expansion))
        # release/2.0 attribute names: _conv / _batch_norm
        kw = dict(style="zoo", data_format=data_format)
        self._expand_conv = ConvBNLayer(in_c, mid, 1, act="relu6", **kw)
        self._bottleneck_conv = ConvBNLayer(mid, mid, 3, stride, groups=mid, act="relu6", **kw)
        self._linear_conv = ConvBNLayer(mid, out_c, 1, act=None, **kw)

    def forward(self, x: paddle.Tensor, shortcut: bool) -> paddle.Tensor:
        y = self._linear_conv(self._bottleneck_conv(self._expand_conv(x)))
        return x + y if shortcut else y


class InvresiBlocks(nn.Layer):
    """One stage: the first unit changes width/stride (never a shortcut), the rest keep both and add
    the identity. PaddleClas names the repeats ``<stage>_2``, ``<stage>_3``, ..."""

    def __init__(self, in_c, t, c, n, s, name, data_format="NCHW"):
        super().__init__()
        self._first_block = InvertedResidualUnit(in_c, c, s, t, data_format)
        self._block_list = []
        for i in range(1, n):
            self._block_list.append(self.add_sublayer(f"{name}_{i + 1}", InvertedResidualUnit(c, c, 1, t, data_format)))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._first_block(x, shortcut=False)
        for block in self._block_list:
            x = block(x, shortcut=True)
        return x


class MobileNetV2Model(Backbone):
    classifier_name = "out"

    def __init__(self, scale: float = 1.0, num_classes: int = 1000, data_format: str = "NCHW"):
        """data_format: PaddleClas's argument; 'NHWC' runs channels-last inside (the model still
        takes NCHW images and gives the same logits)."""
        super().__init__()
        self.scale = scale
        self.data_format = df = check_data_format(data_format)
        in_c = int(32 * scale)
        self.conv1 = ConvBNLayer(3, in_c, 3, stride=2, act="relu6", style="zoo", data_format=df)
        self.block_list = []
        self.feature_info = []
        reduction = 2
        for i, (t, c, n, s) in enumerate(STAGES):
            name = f"conv{i + 2}"
            out_c = int(c * scale)
            self.block_list.append(self.add_sublayer(name, InvresiBlocks(in_c, t, out_c, n, s, name, df)))
            reduction *= s
            if i + 1 < len(STAGES) and STAGES[i + 1][3] == 2:  # last stage at this reduction
                self.feature_info.append(dict(num_chs=out_c, reduction=reduction, module=name))
            in_c = out_c
        self.out_c = int(1280 * scale) if scale > 1.0 else 1280
        self.conv9 = ConvBNLayer(in_c, self.out_c, 1, act="relu6", style="zoo", data_format=df)
        self.feature_info.append(dict(num_chs=self.out_c, reduction=reduction, module="conv9"))
        self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self.num_features = self.out_c
        self.num_classes = num_classes
        self.out = nn.Linear(self.out_c, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.data_format == "NHWC":
            x = to_channels_last(x)
        x = self.conv1(x)
        for block in self.block_list:
            x = block(x)
        x = self.conv9(x)
        return to_channels_first(x) if self.data_format == "NHWC" else x

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = paddle.flatten(self.pool2d_avg(x), start_axis=1)
        return x if pre_logits else self.out(x)


# Paddle 1.x static names (PaddleClas release/static mobilenet_v2.py): ``conv1_1``, unit j of stage
# ``conv<n>`` is ``conv<n>_<j>`` with ``_expand`` / ``_dwise`` / ``_linear`` convs, BN ``<conv>_bn``,
# ``conv9``, classifier ``fc10``.
_V2_PARTS = {"_expand_conv": "expand", "_bottleneck_conv": "dwise", "_linear_conv": "linear"}


def _v2_unit(m):
    unit = f"{m[1]}_1" if m[2] == "_first_block" else m[2]
    return f"{unit}_{_V2_PARTS[m[3]]}"


_STATIC_RULES = [
    *conv_bn_rules(r"conv1", "conv1_1", "conv1_1_bn"),
    *conv_bn_rules(r"(conv\d)\.(_first_block|conv\d_\d+)\.(_\w+_conv)", _v2_unit, lambda m: _v2_unit(m) + "_bn"),
    *conv_bn_rules(r"conv9", "conv9", "conv9_bn"),
    *fc_rules(r"out", "fc10"),
]
register_key_map("MobileNetV2Model", static_map(_STATIC_RULES), scheme="static")


@register_model
def MobileNetV2_x0_25(**kwargs: Any) -> MobileNetV2Model:
    """MobileNetV2, width x0.25."""
    return MobileNetV2Model(scale=0.25, **kwargs)


@register_model
def MobileNetV2_x0_5(**kwargs: Any) -> MobileNetV2Model:
    """MobileNetV2, width x0.5."""
    return MobileNetV2Model(scale=0.5, **kwargs)


@register_model
def MobileNetV2_x0_75(**kwargs: Any) -> MobileNetV2Model:
    """MobileNetV2, width x0.75."""
    return MobileNetV2Model(scale=0.75, **kwargs)


@register_model
def MobileNetV2(**kwargs: Any) -> MobileNetV2Model:
    """MobileNetV2, width x1.0."""
    return MobileNetV2Model(scale=1.0, **kwargs)


@register_model
def MobileNetV2_x1_5(**kwargs: Any) -> MobileNetV2Model:
    """MobileNetV2, width x1.5."""
    return MobileNetV2Model(scale=1.5, **kwargs)


@register_model
def MobileNetV2_x2_0(**kwargs: Any) -> MobileNetV2Model:
    """MobileNetV2, width x2.0."""
    return MobileNetV2Model(scale=2.0, **kwargs)


default_cfgs = [
    zoo_cfg("MobileNetV2_x0_25", key_scheme="2.0"),
    zoo_cfg("MobileNetV2_x0_5", key_scheme="2.0"),
    zoo_cfg("MobileNetV2_x0_75", key_scheme="2.0"),
    zoo_cfg("MobileNetV2", key_scheme="2.0"),
    zoo_cfg("MobileNetV2_x1_5", key_scheme="2.0"),
    zoo_cfg("MobileNetV2_x2_0", key_scheme="2.0"),
    zoo_cfg("MobileNetV2_ssld", arch="MobileNetV2", key_scheme="2.0"),
]
register_pretrained(*default_cfgs)
