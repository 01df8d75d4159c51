"""ResNeXt-101 32xNd trained weakly supervised on Instagram hashtags (Mahajan et al., 2018; "WSL"),
fine-tuned on ImageNet, and FixRes's Fix_ResNeXt101_32x48d_wsl (Touvron et al., 2019).

Plain torchvision-style ResNeXt-101 (7x7 stem, 32 groups, bottleneck width 32*N per stage unit);
parameter names follow PaddleClas's ``model_zoo/resnext101_wsl.py`` (``_conv1_0`` .. ``_conv4_2``,
``_conv``/``_bn``). 32x32d and 32x48d have 469M / 829M parameters.
"""
from __future__ import annotations

from typing import Any

from .._paddle import import_paddle
from ._layers import PooledBackbone, get_act, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn
F = nn.functional

DEPTH = [3, 4, 23, 3]


class ConvBN(nn.Layer):
    """conv -> ``_bn`` (this family's BN attribute name) -> act."""

    def __init__(self, in_ch, out_ch, k, stride=1, groups=1, act=None):
        super().__init__()
        self._conv = nn.Conv2D(in_ch, out_ch, k, stride=stride, padding=(k - 1) // 2, groups=groups,
                               bias_attr=False)
        self._bn = nn.BatchNorm2D(out_ch)
        self.act = get_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._bn(self._conv(x))
        return self.act(x) if self.act is not None else x


class ShortCut(nn.Layer):
    def __init__(self, in_ch, out_ch, stride):
        super().__init__()
        self.project = in_ch != out_ch or stride != 1
        if self.project:
            self._conv = ConvBN(in_ch, out_ch, 1, stride=stride)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._conv(x) if self.project else x


class Bottleneck(nn.Layer):
    def __init__(self, in_ch, mid_ch, out_ch, stride, cardinality):
        super().__init__()
        self._conv0 = ConvBN(in_ch, mid_ch, 1, act="relu")
        self._conv1 = ConvBN(mid_ch, mid_ch, 3, stride=stride, groups=cardinality, act="relu")
        self._conv2 = ConvBN(mid_ch, out_ch, 1)
        self._short = ShortCut(in_ch, out_ch, stride)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.relu(self._conv2(self._conv1(self._conv0(x))) + self._short(x))


class ResNeXtWSL(PooledBackbone):
    classifier_name = "_out"

    def __init__(self, cardinality=32, width=48, num_classes=1000, class_num=None):
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self._conv_stem = ConvBN(3, 64, 7, stride=2, act="relu")
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.feature_info = [dict(num_chs=64, reduction=2, module="_conv_stem")]
        self.block_names = []
        in_ch = 64
        for s, depth in enumerate(DEPTH):
            mid, out = cardinality * width * 2 ** s, 256 * 2 ** s
            for i in range(depth):
                name = f"_conv{s + 1}_{i}"
                setattr(self, name, Bottleneck(in_ch, mid, out, 2 if (i == 0 and s > 0) else 1, cardinality))
                self.block_names.append(name)
                in_ch = out
            self.feature_info.append(dict(num_chs=out, reduction=4 * 2 ** s, module=name))
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_features = 2048
        self._out = linear(2048, num_classes)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._pool(self._conv_stem(x))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return x


# Paddle 1.x static names (PaddleClas release/static resnext101_wsl.py keeps the names of the
# converted PyTorch/WSL checkpoint): ``conv1.weight``, ``bn1.running_mean``, ``layer<L>.<i>.conv<k>``,
# ``layer<L>.<i>.downsample.0`` / ``.1``, ``fc.weight``.
_TORCH = dict(conv_suffix=".weight", bn_suffixes=(".weight", ".bias", ".running_mean", ".running_var"), bn_attr="_bn")
_STATIC_RULES = [
    *conv_bn_rules(r"_conv_stem", "conv1", "bn1", **_TORCH),
    *conv_bn_rules(r"_conv(\d)_(\d+)\._conv(\d)", lambda m: f"layer{m[1]}.{m[2]}.conv{int(m[3]) + 1}",
                   lambda m: f"layer{m[1]}.{m[2]}.bn{int(m[3]) + 1}", **_TORCH),
    *conv_bn_rules(r"_conv(\d)_(\d+)\._short\._conv", r"layer\1.\2.downsample.0", r"layer\1.\2.downsample.1", **_TORCH),
    *fc_rules(r"_out", "fc", weight=".weight", bias=".bias"),
]
register_key_map("ResNeXtWSL", static_map(_STATIC_RULES), scheme="static")


@register_model
def ResNeXt101_32x8d_wsl(**kwargs: Any) -> ResNeXtWSL:
    """ResNeXt-101 32x8d, weakly supervised (Instagram) pre-training."""
    return ResNeXtWSL(cardinality=32, width=8, **kwargs)


@register_model
def ResNeXt101_32x16d_wsl(**kwargs: Any) -> ResNeXtWSL:
    """ResNeXt-101 32x16d, weakly supervised (Instagram) pre-training."""
    return ResNeXtWSL(cardinality=32, width=16, **kwargs)


@register_model
def ResNeXt101_32x32d_wsl(**kwargs: Any) -> ResNeXtWSL:
    """ResNeXt-101 32x32d, weakly supervised (Instagram) pre-training."""
    return ResNeXtWSL(cardinality=32, width=32, **kwargs)


@register_model
def ResNeXt101_32x48d_wsl(**kwargs: Any) -> ResNeXtWSL:
    """ResNeXt-101 32x48d, weakly supervised (Instagram) pre-training."""
    return ResNeXtWSL(cardinality=32, width=48, **kwargs)


# Eval sizes come from the zoo table (32x8d: its release/2.0 config, resize 224 / crop 224; the
# others have no config: crop 224, resize 256). FixRes's model was fine-tuned at test resolution:
# release/2.0's docs speed table gives crop 320 from a 320 short-side resize (the table has no
# resize for it, and the 320/0.875 fallback would be wrong).
default_cfgs = [
    zoo_cfg("ResNeXt101_32x8d_wsl"),
    zoo_cfg("ResNeXt101_32x16d_wsl"),
    zoo_cfg("ResNeXt101_32x32d_wsl"),
    zoo_cfg("ResNeXt101_32x48d_wsl"),
    zoo_cfg("Fix_ResNeXt101_32x48d_wsl", arch="ResNeXt101_32x48d_wsl", resize_short=320),
]
register_pretrained(*default_cfgs)
