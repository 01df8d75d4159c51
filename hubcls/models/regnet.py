"""RegNetX (Radosavovic et al., 2020, "Designing Network Design Spaces"), PaddleClas layout.

Per-block widths follow the quantized linear rule u_j = w_0 + w_a * j, snapped to w_0 * w_m^k and
to multiples of q; consecutive blocks of equal width form a stage (stride 2 at its first block).
Blocks are ResNeXt bottlenecks (bottleneck multiplier 1, group width ``group_w``). Parameter names
follow PaddleClas's ``model_zoo/regnet.py``; only RegNetX_4GF has official weights.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np

from .._paddle import import_paddle
from ._layers import ConvBN, PooledBackbone, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, folded_bn_mean, register_static_fold, static_map

paddle = import_paddle()
nn = paddle.nn
F = nn.functional


def regnet_widths(w_a: float, w_0: int, w_m: float, depth: int, q: int = 8) -> List[int]:
    """Per-block widths of the RegNet design rule (quantized to multiples of q)."""
    if not (w_a >= 0 and w_0 > 0 and w_m > 1 and w_0 % q == 0):
        raise ValueError(f"invalid RegNet parameters w_a={w_a} w_0={w_0} w_m={w_m} q={q}")
    cont = np.arange(depth) * w_a + w_0
    k = np.round(np.log(cont / w_0) / np.log(w_m))
    return (np.round(w_0 * np.power(w_m, k) / q) * q).astype(int).tolist()


def regnet_stages(w_a: float, w_0: int, w_m: float, depth: int, group_w: int, bot_mul: float = 1.0,
                  q: int = 8) -> List[Tuple[int, int, int]]:
    """[(depth, width, group width)] per stage, widths made compatible with the group width."""
    blocks = regnet_widths(w_a, w_0, w_m, depth, q)
    widths, depths = [], []
    for w in blocks:
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    out = []
    for d, w in zip(depths, widths):
        w_bot = int(w * bot_mul)
        g = min(group_w, w_bot)
        w_bot = int(round(w_bot / g) * g)
        out.append((d, int(w_bot / bot_mul), g))
    return out


class RegBottleneck(nn.Layer):
    def __init__(self, in_ch, out_ch, stride, bot_mul, group_w, shortcut):
        super().__init__()
        w_b = int(round(out_ch * bot_mul))
        self.conv0 = ConvBN(in_ch, w_b, 1, padding=0, act="relu")
        self.conv1 = ConvBN(w_b, w_b, 3, stride=stride, padding=1, groups=w_b // group_w, act="relu")
        self.conv2 = ConvBN(w_b, out_ch, 1, padding=0)
        self.shortcut = shortcut
        if not shortcut:
            # PaddleClas's projection is a 1x1 conv with padding 0 (its ConvBNLayer default)
            self.short = ConvBN(in_ch, out_ch, 1, stride=stride, padding=0)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv2(self.conv1(self.conv0(x)))
        return F.relu(y + (x if self.shortcut else self.short(x)))


class RegNet(PooledBackbone):
    classifier_name = "out"

    def __init__(self, w_a, w_0, w_m, d, group_w, bot_mul=1.0, q=8, num_classes=1000, class_num=None):
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        stem_w = 32
        self.conv = ConvBN(3, stem_w, 3, stride=2, padding=1, act="relu")
        self.feature_info = [dict(num_chs=stem_w, reduction=2, module="conv")]
        self.block_list = []
        in_ch = stem_w
        for s, (depth, w, g) in enumerate(regnet_stages(w_a, w_0, w_m, d, group_w, bot_mul, q)):
            for i in range(depth):
                name = f"s{s + 1}_b{i + 1}"
                self.block_list.append(self.add_sublayer(name, RegBottleneck(
                    in_ch, w, 2 if i == 0 else 1, bot_mul, g, shortcut=i > 0)))
                in_ch = w
            self.feature_info.append(dict(num_chs=w, reduction=2 ** (s + 2), module=name))
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_features = in_ch
        self.out = linear(in_ch, num_classes)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv(x)
        for block in self.block_list:
            x = block(x)
        return x


# --- Paddle 1.x static names (PaddleClas release/static regnet.py) --------------------------------
# Units ``stem_conv`` and ``s<stage>_b<block>_branch2a|2b|2c|1``; their convs had a bias (fluid's
# default), which the BatchNorm right after makes redundant: it folds into the BN mean.
_REG_PARTS = {"conv0": "branch2a", "conv1": "branch2b", "conv2": "branch2c", "short": "branch1"}
_REG_TF = dict(conv_suffix=".conv2d.output.1.w_0", bn_suffixes=("_bn.output.1.w_0", "_bn.output.1.b_0", "_bn_mean",
                                                                "_bn_variance"))
_STATIC_RULES = [
    *conv_bn_rules(r"conv", "stem_conv", "stem_conv", **_REG_TF),
    *conv_bn_rules(r"(s\d+_b\d+)\.(conv\d|short)", lambda m: f"{m[1]}_{_REG_PARTS[m[2]]}",
                   lambda m: f"{m[1]}_{_REG_PARTS[m[2]]}", **_REG_TF),
    *fc_rules(r"out", "fc_0", weight=".w_0", bias=".b_0"),
]
register_key_map("RegNet", static_map(_STATIC_RULES), scheme="static")


def _static_units(model: "RegNet"):
    for name, _ in model.named_sublayers():
        if name == "conv" or (name.split(".")[-1] in _REG_PARTS and "." in name):
            yield "stem_conv" if name == "conv" else f"{name.split('.')[0]}_{_REG_PARTS[name.split('.')[-1]]}"


def _fold_conv_bias(model: "RegNet", state: dict) -> dict:
    for unit in _static_units(model):
        folded_bn_mean(state, f"{unit}.conv2d.output.1.b_0", f"{unit}_bn_mean")
    return state


register_static_fold("RegNet", _fold_conv_bias,
                     extra=lambda model: [f"{unit}.conv2d.output.1.b_0" for unit in _static_units(model)])


_REGNETX = {  # name: (w_a, w_0, w_m, depth, group width)
    "RegNetX_200MF": (36.44, 24, 2.49, 13, 8),
    "RegNetX_400MF": (24.48, 24, 2.54, 22, 16),
    "RegNetX_600MF": (36.97, 48, 2.24, 16, 24),
    "RegNetX_800MF": (35.73, 56, 2.28, 16, 16),
    "RegNetX_1600MF": (34.01, 80, 2.25, 18, 24),
    "RegNetX_3200MF": (26.31, 88, 2.25, 25, 48),
    "RegNetX_4GF": (38.65, 96, 2.43, 23, 40),
    "RegNetX_6400MF": (60.83, 184, 2.07, 17, 56),
    "RegNetX_8GF": (49.56, 80, 2.88, 23, 120),
    "RegNetX_12GF": (73.36, 168, 2.37, 19, 112),
    "RegNetX_16GF": (55.59, 216, 2.1, 22, 128),
    "RegNetX_32GF": (69.86, 320, 2.0, 23, 168),
}


# Only RegNetX_4GF has official weights, so only it is registered (the others build with
# ``RegNet(*_REGNETX[name])``; registering them would only lengthen the generic test suites).
@register_model
def RegNetX_4GF(**kwargs: Any) -> RegNet:
    """RegNetX-4GF."""
    return RegNet(*_REGNETX["RegNetX_4GF"], **kwargs)


default_cfgs = [
    zoo_cfg("RegNetX_4GF"),
]
register_pretrained(*default_cfgs)
