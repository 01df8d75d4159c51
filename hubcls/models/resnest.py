"""ResNeSt (Zhang et al., 2020): ResNet-D with split-attention blocks, PaddleClas release/2.0 layout.

Split attention: the 3x3 conv produces ``radix`` groups of feature maps; a squeezed summary of
their sum goes through two 1x1 convs to per-group weights (softmax over the radix, or a sigmoid
when radix is 1), and the block output is the weighted sum. ``avd`` moves the stride into a 3x3
average pool (before the split-attention conv for the "fast" variant, after it otherwise).
Parameter names follow ``model_zoo/resnest.py``.
"""
from __future__ import annotations

import re
from typing import Any, Dict

import numpy as np

from .._paddle import import_paddle
from ._layers import ConvBN, PooledBackbone, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import bn_rules, conv_bn_rules, fc_rules, register_static_fold, rename, static_names

paddle = import_paddle()
nn = paddle.nn
F = nn.functional


def _cbr(in_ch, out_ch, k, stride=1, groups=1, act=None):
    # PaddleClas pads (k-1)//2 whatever the dilation; all registered models use dilation 1
    return ConvBN(in_ch, out_ch, k, stride=stride, padding=(k - 1) // 2, groups=groups, act=act)


class RSoftmax(nn.Layer):
    def __init__(self, radix, cardinality):
        super().__init__()
        self.radix, self.cardinality = radix, cardinality

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.radix == 1:
            return F.sigmoid(x)
        b = x.shape[0]
        x = x.reshape([b, self.cardinality, self.radix, -1]).transpose([0, 2, 1, 3])
        return F.softmax(x, axis=1).reshape([b, -1, 1, 1])


class SplatConv(nn.Layer):
    def __init__(self, in_ch, channels, k=3, groups=1, radix=2, reduction_factor=4):
        super().__init__()
        self.radix = radix
        self.conv1 = _cbr(in_ch, channels * radix, k, groups=groups * radix, act="relu")
        self.avg_pool2d = nn.AdaptiveAvgPool2D(1)
        inter = int(max(in_ch * radix // reduction_factor, 32))
        self.conv2 = _cbr(channels, inter, 1, groups=groups, act="relu")
        self.conv3 = nn.Conv2D(inter, channels * radix, 1, groups=groups)  # with bias
        self.rsoftmax = RSoftmax(radix, groups)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        splits = paddle.split(x, self.radix, axis=1) if self.radix > 1 else None
        gap = paddle.add_n(splits) if splits else x
        att = self.rsoftmax(self.conv3(self.conv2(self.avg_pool2d(gap))))
        if splits is None:
            return x * att
        return paddle.add_n([s * a for s, a in zip(splits, paddle.split(att, self.radix, axis=1))])


class ResNeStBottleneck(nn.Layer):
    def __init__(self, inplanes, planes, stride=1, radix=1, cardinality=1, bottleneck_width=64,
                 avd=False, avd_first=False, is_first=False, avg_down=False):
        super().__init__()
        self.stride = stride
        gw = int(planes * (bottleneck_width / 64.0)) * cardinality
        self.conv1 = _cbr(inplanes, gw, 1, act="relu")
        self.pool_first = avd and avd_first and (stride > 1 or is_first)
        self.pool_after = avd and not avd_first and (stride > 1 or is_first)
        if self.pool_first:
            self.avg_pool2d_1 = nn.AvgPool2D(kernel_size=3, stride=stride, padding=1)
        self.conv2 = SplatConv(gw, gw, 3, groups=cardinality, radix=radix)
        if self.pool_after:
            self.avg_pool2d_2 = nn.AvgPool2D(kernel_size=3, stride=stride, padding=1)
        self.conv3 = _cbr(gw, planes * 4, 1)
        self.project = stride != 1 or inplanes != planes * 4
        self.avg_down = avg_down
        if self.project:
            if avg_down:
                self.avg_pool2d_3 = nn.AvgPool2D(kernel_size=stride, stride=stride, padding=0)
                self.conv4 = nn.Conv2D(inplanes, planes * 4, 1, bias_attr=False)
            else:
                self.conv4 = nn.Conv2D(inplanes, planes * 4, 1, stride=stride, bias_attr=False)
            self._batch_norm = nn.BatchNorm2D(planes * 4)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv1(x)
        if self.pool_first:
            y = self.avg_pool2d_1(y)
        y = self.conv2(y)
        if self.pool_after:
            y = self.avg_pool2d_2(y)
        y = self.conv3(y)
        short = x
        if self.project:
            if self.avg_down:
                short = self.avg_pool2d_3(short)
            short = self._batch_norm(self.conv4(short))
        return F.relu(short + y)


class ResNeStLayer(nn.Layer):
    def __init__(self, inplanes, planes, blocks, stride, is_first, name, **kw):
        super().__init__()
        self.blocks_ = []
        for i in range(blocks):
            self.blocks_.append(self.add_sublayer(f"{name}_bottleneck_{i}", ResNeStBottleneck(
                inplanes if i == 0 else planes * 4, planes, stride=stride if i == 0 else 1,
                is_first=is_first and i == 0, **kw)))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for b in self.blocks_:
            x = b(x)
        return x


class ResNeSt(PooledBackbone):
    classifier_name = "out"

    def __init__(self, layers=(3, 4, 6, 3), radix=2, groups=1, bottleneck_width=64, stem_width=32,
                 avg_down=True, avd=True, avd_first=False, num_classes=1000, class_num=None):
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self.stem = nn.Sequential(("conv1", _cbr(3, stem_width, 3, stride=2, act="relu")),
                                  ("conv2", _cbr(stem_width, stem_width, 3, act="relu")),
                                  ("conv3", _cbr(stem_width, stem_width * 2, 3, act="relu")))
        self.max_pool2d = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        kw = dict(radix=radix, cardinality=groups, bottleneck_width=bottleneck_width, avd=avd,
                  avd_first=avd_first, avg_down=avg_down)
        self.feature_info = [dict(num_chs=stem_width * 2, reduction=2, module="stem")]
        inplanes = stem_width * 2
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            setattr(self, f"layer{i + 1}", ResNeStLayer(
                inplanes, planes, n, stride=1 if i == 0 else 2, is_first=i > 0, name=f"layer{i + 1}", **kw))
            inplanes = planes * 4
            self.feature_info.append(dict(num_chs=inplanes, reduction=4 * 2 ** i, module=f"layer{i + 1}"))
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_features = 2048
        self.out = linear(2048, num_classes)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.max_pool2d(self.stem(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


# --- Paddle 1.x static names (PaddleClas release/static resnest.py) -------------------------------
_ST = dict(conv_suffix="_weight")  # this family's convs end in "_weight", BN in "_scale" ... "_variance"


def _static_block(layer: int, i: int) -> str:
    # the 2020 code extends the block name cumulatively: layer2_bottleneck_1_bottleneck_2_bottleneck_3
    return f"layer{layer}_bottleneck_0" if i == 0 else f"layer{layer}" + "".join(
        f"_bottleneck_{k}" for k in range(1, i + 1))


@register_key_map("ResNeSt", scheme="static")
def key_map_static(model: "ResNeSt") -> Dict[str, str]:
    """{key: static name}: stem ``conv1`` .. ``conv3``; block convs ``<block>_conv1``,
    ``_splatconv_splat1`` / ``_splat2`` / ``_splat_weights`` (the attention conv; the 2020 one had no
    bias, its zero bias is ``<block>_splatconv_splat_offset``), ``_conv3``; the projection shortcut
    ``<block>_weights`` (avg-down) or ``<block>_shortcut_weights``, BN ``<block>_shortcut``; ``fc``."""
    keys = list(model.state_dict())
    out = rename(keys, [*conv_bn_rules(r"stem\.(conv\d)", r"\1", r"\1", **_ST), *fc_rules(r"out", "fc")])
    by_block: Dict[tuple, list] = {}
    for key in keys:
        m = re.match(r"layer(\d)\.layer\d_bottleneck_(\d+)\.(.*)", key)
        if m:
            by_block.setdefault((int(m[1]), int(m[2])), []).append(m[3])
    for (layer, i), subkeys in by_block.items():
        block = _static_block(layer, i)
        avg_down = getattr(model, f"layer{layer}").blocks_[i].avg_down
        rules = [*conv_bn_rules(r"conv1", f"{block}_conv1", f"{block}_conv1", **_ST),
                 *conv_bn_rules(r"conv2\.conv([12])", rf"{block}_splatconv_splat\1", rf"{block}_splatconv_splat\1", **_ST),
                 *fc_rules(r"conv2\.conv3", f"{block}_splatconv_splat", weight="_weights"),
                 *conv_bn_rules(r"conv3", f"{block}_conv3", f"{block}_conv3", **_ST),
                 (r"conv4\.weight", f"{block}_weights" if avg_down else f"{block}_shortcut_weights"),
                 *bn_rules(r"_batch_norm", f"{block}_shortcut")]
        prefix = f"layer{layer}.layer{layer}_bottleneck_{i}."
        out.update({prefix + k: v for k, v in rename(subkeys, rules).items()})
    return out


def _attention_biases(model: "ResNeSt") -> Dict[str, str]:
    """{key: static name} of the attention convs' biases, which the 2020 program did not have."""
    return {k: n for k, n in static_names(model).items() if n.endswith("_splatconv_splat_offset")}


def _zero_attention_bias(model: "ResNeSt", state: dict) -> dict:
    sd = model.state_dict()
    for key, name in _attention_biases(model).items():
        state.setdefault(name, np.zeros(sd[key].shape, dtype="float32"))
    return state


register_static_fold("ResNeSt", _zero_attention_bias, absent=lambda model: _attention_biases(model).values())


@register_model
def ResNeSt50_fast_1s1x64d(**kwargs: Any) -> ResNeSt:
    """ResNeSt-50 fast, 1s1x64d (radix 1, avd before the split-attention conv)."""
    return ResNeSt((3, 4, 6, 3), radix=1, stem_width=32, avd_first=True, **kwargs)


@register_model
def ResNeSt50(**kwargs: Any) -> ResNeSt:
    """ResNeSt-50 (radix 2)."""
    return ResNeSt((3, 4, 6, 3), radix=2, stem_width=32, avd_first=False, **kwargs)


def ResNeSt101(**kwargs: Any) -> ResNeSt:
    """PaddleClas's ResNeSt101 (no release/2.0 weights, so not registered)."""
    return ResNeSt((3, 4, 23, 3), radix=2, stem_width=64, avd_first=False, **kwargs)


default_cfgs = [
    zoo_cfg("ResNeSt50_fast_1s1x64d"),
    zoo_cfg("ResNeSt50"),
]
register_pretrained(*default_cfgs)
