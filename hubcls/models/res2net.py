"""Res2Net (Gao et al., 2019) and Res2Net-vd, PaddleClas release/2.0 layouts.

A Res2Net bottleneck splits its 1x1-conv output into ``scales`` groups and runs 3x3 convs over them
hierarchically (group s gets the previous group's output added before its conv), building several
receptive fields inside one block. The -vd variant adds ResNet-D's 3-conv stem and average-pool
shortcut downsampling. Parameter names follow ``model_zoo/res2net.py`` / ``res2net_vd.py``.
"""
from __future__ import annotations

import re
from typing import Any, Dict

from .._paddle import import_paddle
from ._layers import ConvBN, ConvBNLayer, PooledBackbone, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, rename

paddle = import_paddle()
nn = paddle.nn
F = nn.functional

DEPTHS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3], 200: [3, 12, 48, 3]}


class Res2Bottleneck(nn.Layer):
    def __init__(self, in_ch, out_ch, width, stride, scales, shortcut, vd=False, first=False, name=""):
        super().__init__()
        self.stride, self.scales = stride, scales
        self.conv0 = ConvBN(in_ch, width, 1, act="relu")
        self.conv1_list = []
        for s in range(scales - 1):
            # sub-layer names "res2a_branch2b_1", ... as in PaddleClas
            self.conv1_list.append(self.add_sublayer(
                f"{name}_branch2b_{s + 1}",
                ConvBN(width // scales, width // scales, 3, stride=stride, act="relu")))
        self.pool2d_avg = nn.AvgPool2D(kernel_size=3, stride=stride, padding=1)
        self.conv2 = ConvBN(width, out_ch, 1)
        self.shortcut = shortcut
        if not shortcut:
            if vd:
                # ResNet-D: 2x2 average pool does the striding, the 1x1 conv stays at stride 1
                self.short = ConvBNLayer(in_ch, out_ch, 1, stride=1, is_vd_mode=not first, style="zoo")
            else:
                self.short = ConvBN(in_ch, out_ch, 1, stride=stride)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        xs = paddle.split(self.conv0(x), self.scales, axis=1)
        ys = []
        for s, conv in enumerate(self.conv1_list):
            ys.append(conv(xs[s] if (s == 0 or self.stride == 2) else xs[s] + ys[-1]))
        ys.append(xs[-1] if self.stride == 1 else self.pool2d_avg(xs[-1]))
        y = self.conv2(paddle.concat(ys, axis=1))
        return F.relu(y + (x if self.shortcut else self.short(x)))


class Res2Net(PooledBackbone):
    classifier_name = "out"

    def __init__(self, layers=50, scales=4, width=26, vd=False, num_classes=1000, class_num=None):
        super().__init__()
        if layers not in DEPTHS:
            raise ValueError(f"Res2Net layers must be one of {sorted(DEPTHS)}, got {layers}")
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self.vd = vd
        if vd:
            self.conv1_1 = ConvBN(3, 32, 3, stride=2, act="relu")
            self.conv1_2 = ConvBN(32, 32, 3, act="relu")
            self.conv1_3 = ConvBN(32, 64, 3, act="relu")
            stem_out = "conv1_3"
        else:
            self.conv1 = ConvBN(3, 64, 7, stride=2, act="relu")
            stem_out = "conv1"
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.feature_info = [dict(num_chs=64, reduction=2, module=stem_out)]
        in_chs, out_chs = [64, 256, 512, 1024], [256, 512, 1024, 2048]
        # 2.0's plain Res2Net spells 200-layer stage-3 names like 50-layer ones (only 101/152 use "b<i>")
        long_names = (101, 152, 200) if vd else (101, 152)
        self.block_list = []
        for b, depth in enumerate(DEPTHS[layers]):
            for i in range(depth):
                if layers in long_names and b == 2:
                    cname = f"res{b + 2}a" if i == 0 else f"res{b + 2}b{i}"
                else:
                    cname = f"res{b + 2}{chr(97 + i)}"
                self.block_list.append(self.add_sublayer(f"bb_{b}_{i}", Res2Bottleneck(
                    in_chs[b] if i == 0 else out_chs[b], out_chs[b], width * scales * 2 ** b,
                    stride=2 if (i == 0 and b != 0) else 1, scales=scales, shortcut=i != 0,
                    vd=vd, first=b == i == 0, name=cname)))
            self.feature_info.append(dict(num_chs=out_chs[b], reduction=4 * 2 ** b, module=f"bb_{b}_{depth - 1}"))
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_features = 2048
        self.out = linear(2048, num_classes)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1_3(self.conv1_2(self.conv1_1(x))) if self.vd else self.conv1(x)
        x = self.pool2d_max(x)
        for block in self.block_list:
            x = block(x)
        return x


@register_key_map("Res2Net", scheme="static")
def key_map_static(model: Res2Net) -> Dict[str, str]:
    """Paddle 1.x static names (PaddleClas release/static res2net.py, res2net_vd.py): ResNet's fluid
    naming - stem ``conv1`` / ``bn_conv1`` (vd: ``conv1_<k>`` / ``bnv1_<k>``), block ``res<s><x>``
    with ``_branch2a`` / ``_branch2b_<k>`` / ``_branch2c`` / ``_branch1``, BN ``bn<s><x>_...``,
    classifier ``fc``. Each block's name is the one its split convs carry (``res4b22_branch2b_1``)."""
    keys = list(model.state_dict())
    blocks = {}
    for key in keys:
        m = re.match(r"(bb_\d+_\d+)\.(res\w+?)_branch2b_\d+\.", key)
        if m:
            blocks[m[1]] = m[2]
    bn = lambda conv: "bn" + conv[3:]  # noqa: E731 - res2a_branch2a -> bn2a_branch2a
    rules = [*conv_bn_rules(r"conv1", "conv1", "bn_conv1"),
             *conv_bn_rules(r"conv1_(\d)", r"conv1_\1", r"bnv1_\1"),
             *fc_rules(r"out", "fc")]
    for block, res in blocks.items():
        for attr, part in (("conv0", "branch2a"), ("conv2", "branch2c"), ("short", "branch1")):
            rules += conv_bn_rules(rf"{block}\.{attr}", f"{res}_{part}", bn(f"{res}_{part}"))
        rules += conv_bn_rules(rf"{block}\.({res}_branch2b_\d+)", r"\1", lambda m: bn(m[1]))
    return rename(keys, rules)


@register_model
def Res2Net50_26w_4s(**kwargs: Any) -> Res2Net:
    """Res2Net-50, 26w x 4s."""
    return Res2Net(layers=50, scales=4, width=26, vd=False, **kwargs)


@register_model
def Res2Net50_14w_8s(**kwargs: Any) -> Res2Net:
    """Res2Net-50, 14w x 8s."""
    return Res2Net(layers=50, scales=8, width=14, vd=False, **kwargs)


@register_model
def Res2Net50_vd_26w_4s(**kwargs: Any) -> Res2Net:
    """Res2Net-50-vd, 26w x 4s."""
    return Res2Net(layers=50, scales=4, width=26, vd=True, **kwargs)


@register_model
def Res2Net101_vd_26w_4s(**kwargs: Any) -> Res2Net:
    """Res2Net-101-vd, 26w x 4s."""
    return Res2Net(layers=101, scales=4, width=26, vd=True, **kwargs)


@register_model
def Res2Net200_vd_26w_4s(**kwargs: Any) -> Res2Net:
    """Res2Net-200-vd, 26w x 4s."""
    return Res2Net(layers=200, scales=4, width=26, vd=True, **kwargs)


default_cfgs = [
    zoo_cfg("Res2Net50_26w_4s"),
    zoo_cfg("Res2Net50_14w_8s"),
    zoo_cfg("Res2Net50_vd_26w_4s"),
    zoo_cfg("Res2Net50_vd_26w_4s_ssld", arch="Res2Net50_vd_26w_4s"),  # SSLD-distilled weights of the same architecture
    zoo_cfg("Res2Net101_vd_26w_4s"),
    zoo_cfg("Res2Net101_vd_26w_4s_ssld", arch="Res2Net101_vd_26w_4s"),  # SSLD-distilled weights of the same architecture
    zoo_cfg("Res2Net200_vd_26w_4s"),
    zoo_cfg("Res2Net200_vd_26w_4s_ssld", arch="Res2Net200_vd_26w_4s"),  # SSLD-distilled weights of the same architecture
]
register_pretrained(*default_cfgs)
