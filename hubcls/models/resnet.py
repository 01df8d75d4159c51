"""ResNet (vb) and ResNet-vd: ResNet18/34/50/101/152/200 and their _vd variants.

Parameter names follow PaddleClas's legendary ResNet (``stem.0.conv.weight``, ``blocks.3.conv1.bn._mean``,
``fc.weight``), so legendary files load as they are; release/2.0 files (``conv1_1._conv.weight``,
``bb_0_0.conv0._batch_norm.weight``, ``out.weight``) and the Paddle 1.x static tars
(``res2a_branch2a_weights``) are mapped by the key maps registered at the bottom.
ResNet50_vc (a release/2.0 model_zoo architecture) lives in resnext.py with the other model_zoo ResNets.
"""
from __future__ import annotations

from typing import Any, List

from ._features import Backbone
from ._layers import ConvBNLayer, linear, nn, paddle
from ._pretrained import static_url, zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained

DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
          152: [3, 8, 36, 3], 200: [3, 12, 48, 3]}
WIDTHS = [64, 128, 256, 512]


def stage_block_names(layers: int, stage: int, n_blocks: int) -> List[str]:
    """Paddle 1.x block names: res2a, res2b, ...; deep stage 3 of 101/152/200 uses res4a, res4b1, ..."""
    names = []
    for i in range(n_blocks):
        if layers in (101, 152, 200) and stage == 2:
            names.append(f"res{stage + 2}a" if i == 0 else f"res{stage + 2}b{i}")
        else:
            names.append(f"res{stage + 2}{chr(97 + i)}")
    return names


class BasicBlock(nn.Layer):
    expansion = 1

    def __init__(self, in_ch, width, stride, shortcut, vd_short, name=None):
        super().__init__()
        kw = dict(style="legendary", vd_pool="legendary")
        self.conv0 = ConvBNLayer(in_ch, width, 3, stride=stride, act="relu", static_name=_sn(name, "_branch2a"), **kw)
        self.conv1 = ConvBNLayer(width, width, 3, act=None, static_name=_sn(name, "_branch2b"), **kw)
        if not shortcut:
            self.short = ConvBNLayer(in_ch, width, 1, stride=stride, is_vd_mode=vd_short,
                                     static_name=_sn(name, "_branch1"), **kw)
        self.shortcut = shortcut
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv1(self.conv0(x))
        return self.relu(y + (x if self.shortcut else self.short(x)))


class BottleneckBlock(nn.Layer):
    expansion = 4

    def __init__(self, in_ch, width, stride, shortcut, vd_short, name=None):
        super().__init__()
        kw = dict(style="legendary", vd_pool="legendary")
        self.conv0 = ConvBNLayer(in_ch, width, 1, act="relu", static_name=_sn(name, "_branch2a"), **kw)
        self.conv1 = ConvBNLayer(width, width, 3, stride=stride, act="relu", static_name=_sn(name, "_branch2b"), **kw)
        self.conv2 = ConvBNLayer(width, width * 4, 1, act=None, static_name=_sn(name, "_branch2c"), **kw)
        if not shortcut:
            self.short = ConvBNLayer(in_ch, width * 4, 1, stride=stride, is_vd_mode=vd_short,
                                     static_name=_sn(name, "_branch1"), **kw)
        self.shortcut = shortcut
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv2(self.conv1(self.conv0(x)))
        return self.relu(y + (x if self.shortcut else self.short(x)))


def _sn(name, suffix):
    return None if name is None else name + suffix


class ResNet(Backbone):
    """ResNet vb (7x7 stem) or vd (three 3x3 stem convs + avg-pool shortcuts)."""

    classifier_name = "fc"
    key_family = "ResNet"

    def __init__(self, layers=50, variant="vb", num_classes=1000, class_num=None, drop_rate=0.0):
        super().__init__()
        if layers not in DEPTHS:
            raise ValueError(f"ResNet layers must be one of {sorted(DEPTHS)}, got {layers}")
        if variant not in ("vb", "vd"):
            raise ValueError(f"ResNet variant must be 'vb' or 'vd', got {variant!r}")
        num_classes = class_num if class_num is not None else num_classes
        self.layers, self.variant, self.num_classes = layers, variant, num_classes
        kw = dict(style="legendary", vd_pool="legendary", act="relu")
        if variant == "vd":
            self.stem = nn.Sequential(
                ConvBNLayer(3, 32, 3, stride=2, static_name="conv1_1", **kw),
                ConvBNLayer(32, 32, 3, stride=1, static_name="conv1_2", **kw),
                ConvBNLayer(32, 64, 3, stride=1, static_name="conv1_3", **kw),
            )
        else:
            self.stem = nn.Sequential(ConvBNLayer(3, 64, 7, stride=2, static_name="conv1", **kw))
        self.max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        block_cls = BasicBlock if layers < 50 else BottleneckBlock
        blocks, self.feature_info = [], []
        in_ch, idx = 64, 0
        for s, n in enumerate(DEPTHS[layers]):
            names = stage_block_names(layers, s, n)
            for i in range(n):
                stride = 2 if (i == 0 and s != 0) else 1
                blocks.append(block_cls(in_ch, WIDTHS[s], stride, shortcut=i != 0,
                                        vd_short=variant == "vd" and not (s == 0 and i == 0), name=names[i]))
                in_ch = WIDTHS[s] * block_cls.expansion
                idx += 1
            self.feature_info.append(dict(num_chs=in_ch, reduction=4 * 2 ** s, module=f"blocks.{idx - 1}"))
        self.blocks = nn.Sequential(*blocks)
        self.num_features = in_ch
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(drop_rate) if drop_rate else None
        self.fc = linear(in_ch, num_classes, static_names=("fc_0.w_0", "fc_0.b_0"))

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.stem(x)
        x = self.max_pool(x)
        return self.blocks(x)

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = self.flatten(self.avg_pool(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return x if pre_logits else self.fc(x)


# ---------------------------------------------------------------------------------------------
# release/2.0 key scheme. ResNet_vd: stem conv1_1..conv1_3, blocks bb_<stage>_<i>; ResNet (vb):
# stem `conv`, blocks named by their Paddle 1.x name (res2a, res4b22, ...); both: conv -> _conv,
# bn -> _batch_norm, fc -> out. "2.0-bb" covers vb files saved with bb_<stage>_<i> block names.
_SUB = (("conv", "_conv"), ("bn", "_batch_norm"))


def _block_index(model):
    """flat block index -> (stage, i, 1.x name)."""
    out, k = {}, 0
    for s, n in enumerate(DEPTHS[model.layers]):
        names = stage_block_names(model.layers, s, n)
        for i in range(n):
            out[k] = (s, i, names[i])
            k += 1
    return out


def _map_conv_bn(rest: str) -> str:
    # "<convbn>.conv.weight" -> "<convbn>._conv.weight"
    parts = rest.split(".")
    for j, p in enumerate(parts):
        for a, b in _SUB:
            if p == a:
                parts[j] = b
    return ".".join(parts)


def _resnet_20_map(model, block_style: str):
    idx = _block_index(model)
    out = {}
    for key in model.state_dict().keys():
        if key.startswith("stem."):
            _, n, rest = key.split(".", 2)
            head = f"conv1_{int(n) + 1}" if model.variant == "vd" else "conv"
            out[key] = f"{head}.{_map_conv_bn(rest)}"
        elif key.startswith("blocks."):
            _, n, rest = key.split(".", 2)
            s, i, name = idx[int(n)]
            head = f"bb_{s}_{i}" if (model.variant == "vd" or block_style == "bb") else name
            out[key] = f"{head}.{_map_conv_bn(rest)}"
        elif key.startswith("fc."):
            out[key] = "out." + key[3:]
    return out


register_key_map("ResNet", lambda m: _resnet_20_map(m, "name"), scheme="2.0")
register_key_map("ResNet", lambda m: _resnet_20_map(m, "bb"), scheme="2.0-bb")


# ---------------------------------------------------------------------------------------------
@register_model
def ResNet18(**kwargs: Any) -> ResNet:
    """ResNet-18 (vb: 7x7 stem)."""
    return ResNet(layers=18, variant="vb", **kwargs)


@register_model
def ResNet18_vd(**kwargs: Any) -> ResNet:
    """ResNet-18-vd (three 3x3 stem convs, avg-pool shortcuts)."""
    return ResNet(layers=18, variant="vd", **kwargs)


@register_model
def ResNet34(**kwargs: Any) -> ResNet:
    """ResNet-34 (vb: 7x7 stem)."""
    return ResNet(layers=34, variant="vb", **kwargs)


@register_model
def ResNet34_vd(**kwargs: Any) -> ResNet:
    """ResNet-34-vd (three 3x3 stem convs, avg-pool shortcuts)."""
    return ResNet(layers=34, variant="vd", **kwargs)


@register_model
def ResNet50(**kwargs: Any) -> ResNet:
    """ResNet-50 (vb: 7x7 stem)."""
    return ResNet(layers=50, variant="vb", **kwargs)


@register_model
def ResNet50_vd(**kwargs: Any) -> ResNet:
    """ResNet-50-vd (three 3x3 stem convs, avg-pool shortcuts)."""
    return ResNet(layers=50, variant="vd", **kwargs)


@register_model
def ResNet101(**kwargs: Any) -> ResNet:
    """ResNet-101 (vb: 7x7 stem)."""
    return ResNet(layers=101, variant="vb", **kwargs)


@register_model
def ResNet101_vd(**kwargs: Any) -> ResNet:
    """ResNet-101-vd (three 3x3 stem convs, avg-pool shortcuts)."""
    return ResNet(layers=101, variant="vd", **kwargs)


@register_model
def ResNet152(**kwargs: Any) -> ResNet:
    """ResNet-152 (vb: 7x7 stem)."""
    return ResNet(layers=152, variant="vb", **kwargs)


@register_model
def ResNet152_vd(**kwargs: Any) -> ResNet:
    """ResNet-152-vd (three 3x3 stem convs, avg-pool shortcuts)."""
    return ResNet(layers=152, variant="vd", **kwargs)


@register_model
def ResNet200(**kwargs: Any) -> ResNet:
    """ResNet-200 (vb: 7x7 stem)."""
    return ResNet(layers=200, variant="vb", **kwargs)


@register_model
def ResNet200_vd(**kwargs: Any) -> ResNet:
    """ResNet-200-vd (three 3x3 stem convs, avg-pool shortcuts)."""
    return ResNet(layers=200, variant="vd", **kwargs)


default_cfgs = [
    zoo_cfg("ResNet18", static=True),
    zoo_cfg("ResNet18_vd", static=True),
    zoo_cfg("ResNet34", static=True),
    zoo_cfg("ResNet34_vd", static=True),
    zoo_cfg("ResNet34_vd_ssld", arch="ResNet34_vd", static=True),
    zoo_cfg("ResNet50", static=True),
    zoo_cfg("ResNet50_vd", static=True),
    zoo_cfg("ResNet50_vd_v2", arch="ResNet50_vd", static=True),
    zoo_cfg("ResNet50_vd_ssld", arch="ResNet50_vd", static=True),
    zoo_cfg("ResNet50_vd_ssld_v2", arch="ResNet50_vd", static=True),
    zoo_cfg("Fix_ResNet50_vd_ssld_v2", arch="ResNet50_vd", static=True),
    zoo_cfg("ResNet101", static=True),
    zoo_cfg("ResNet101_vd", static=True),
    zoo_cfg("ResNet101_vd_ssld", arch="ResNet101_vd", static=True),
    zoo_cfg("ResNet152", static=True),
    zoo_cfg("ResNet152_vd", static=True),
    zoo_cfg("ResNet200_vd", static=True),
    # ResNet50_vd trained on 100k classes (the SSLD paper's 10w set): only a Paddle 1.x static tar exists.
    zoo_cfg("ResNet50_vd").with_(
        name="ResNet50_vd_10w", url=None, url_legendary=None, url_static=static_url("ResNet50_vd_10w"),
        num_classes=100000, label_list="", top1=None, top5=None, macs_g=None, params_m=None, in_2020_readme=True),
]
register_pretrained(*default_cfgs)
