"""ResNet (vb) and ResNet-vd: ResNet18/34/50/101/152/200 and their _vd variants.

Parameter names follow PaddleClas's legendary ResNet (``stem.0.conv.weight``, ``blocks.3.conv1.bn._mean``,
``fc.weight``), so legendary files load as they are; release/2.0 files (``conv1_1._conv.weight``,
``bb_0_0.conv0._batch_norm.weight``, ``out.weight``) and the Paddle 1.x static tars
(``res2a_branch2a_weights``) are mapped by the key maps registered at the bottom.
ResNet50_vc (a release/2.0 model_zoo architecture) lives in resnext.py with the other model_zoo ResNets.
"""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from ._features import Backbone
from ._layers import ConvBNLayer, check_data_format, linear, nn, paddle, to_channels_first, to_channels_last
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

    def __init__(self, in_ch, width, stride, shortcut, vd_short, name=None, data_format="NCHW", layer_type="ConvBNLayer"):
        super().__init__()
        kw = dict(style="legendary", vd_pool="legendary", data_format=data_format)
        unit = _unit(layer_type)
        self.conv0 = unit(in_ch, width, 3, stride=stride, act="relu", static_name=_sn(name, "_branch2a"), **kw)
        self.conv1 = unit(width, width, 3, act=None, static_name=_sn(name, "_branch2b"), **kw)
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

    def __init__(self, in_ch, width, stride, shortcut, vd_short, name=None, data_format="NCHW", layer_type="ConvBNLayer"):
        super().__init__()
        kw = dict(style="legendary", vd_pool="legendary", data_format=data_format)
        unit = _unit(layer_type)
        self.conv0 = unit(in_ch, width, 1, act="relu", static_name=_sn(name, "_branch2a"), **kw)
        self.conv1 = unit(width, width, 3, stride=stride, act="relu", static_name=_sn(name, "_branch2b"), **kw)
        self.conv2 = unit(width, width * 4, 1, act=None, static_name=_sn(name, "_branch2c"), **kw)
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


# ---------------------------------------------------------------------------------------------
# Diverse Branch Block (Ding et al., 2021, "Diverse Branch Block: Building a Convolution as an
# Inception-like Unit"): PaddleClas's ``layer_type="DiverseBranchBlock"`` ResNets replace each
# block conv by four parallel branches that sum to what one conv could express - k x k conv + BN,
# 1x1 conv + BN, 1x1 conv + BN + k x k average, 1x1 conv + BN + k x k conv + BN - and train better.
# Parameter names follow PaddleClas (``dbb_origin``, ``dbb_1x1``, ``dbb_avg``, ``dbb_1x1_kxk``).
class _ConvBN(nn.Sequential):
    def __init__(self, in_ch, out_ch, k, stride=1, padding=0, groups=1):
        super().__init__(("conv", nn.Conv2D(in_ch, out_ch, k, stride=stride, padding=padding, groups=groups,
                                            bias_attr=False)),
                         ("bn", nn.BatchNorm2D(out_ch)))


class _IdentityConv1x1(nn.Conv2D):
    """1x1 conv initialised to (and parametrised as a residual on) the identity: kernel = I + weight."""

    def __init__(self, channels: int, groups: int = 1):
        super().__init__(channels, channels, 1, groups=groups, bias_attr=False)
        per_group = channels // groups
        eye = np.zeros((channels, per_group, 1, 1), dtype="float32")
        eye[np.arange(channels), np.arange(channels) % per_group] = 1.0
        self.register_buffer("identity", paddle.to_tensor(eye), persistable=False)
        self.weight.set_value(np.zeros(self.weight.shape, dtype="float32"))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        kernel = self.weight + self.identity.astype(self.weight.dtype)
        return nn.functional.conv2d(x, kernel, groups=self._groups)


class _BNAndPad(nn.Layer):
    """BatchNorm, then pad by ``pad`` pixels with the value BN gives a zero input: the same as
    zero-padding before BN, so a following unpadded k x k op sees what a padded conv would."""

    def __init__(self, pad: int, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2D(channels)
        self.pad = pad

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.bn(x)
        if self.pad <= 0:
            return y
        bn = self.bn
        fill = bn.bias - bn.weight * bn._mean / paddle.sqrt(bn._variance + bn._epsilon)
        n, c, h, w = y.shape
        fill = fill.reshape([1, -1, 1, 1])
        y = paddle.concat([fill.expand([n, c, self.pad, w]), y, fill.expand([n, c, self.pad, w])], axis=2)
        h += 2 * self.pad
        return paddle.concat([fill.expand([n, c, h, self.pad]), y, fill.expand([n, c, h, self.pad])], axis=3)


class DiverseBranchBlock(nn.Layer):
    """A k x k conv unit as four branches (see above); same call signature as ConvBNLayer."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, act=None, data_format="NCHW",
                 **_unused):
        super().__init__()
        if check_data_format(data_format) != "NCHW":
            raise ValueError("layer_type='DiverseBranchBlock' runs in NCHW only (as in PaddleClas)")
        pad = kernel_size // 2
        self.act = nn.ReLU() if act else None
        self.dbb_origin = _ConvBN(in_channels, out_channels, kernel_size, stride, pad, groups)
        self.dbb_avg = nn.Sequential()
        if groups < out_channels:
            self.dbb_avg.add_sublayer("conv", nn.Conv2D(in_channels, out_channels, 1, groups=groups, bias_attr=False))
            self.dbb_avg.add_sublayer("bn", _BNAndPad(pad, out_channels))
            self.dbb_avg.add_sublayer("avg", nn.AvgPool2D(kernel_size, stride=stride, padding=0))
            self.dbb_1x1 = _ConvBN(in_channels, out_channels, 1, stride, 0, groups)
        else:
            self.dbb_avg.add_sublayer("avg", nn.AvgPool2D(kernel_size, stride=stride, padding=pad))
        self.dbb_avg.add_sublayer("avgbn", nn.BatchNorm2D(out_channels))
        mid = in_channels if groups < out_channels else 2 * in_channels
        self.dbb_1x1_kxk = nn.Sequential()
        if mid == in_channels:
            self.dbb_1x1_kxk.add_sublayer("idconv1", _IdentityConv1x1(in_channels, groups))
        else:
            self.dbb_1x1_kxk.add_sublayer("conv1", nn.Conv2D(in_channels, mid, 1, groups=groups, bias_attr=False))
        self.dbb_1x1_kxk.add_sublayer("bn1", _BNAndPad(pad, mid))
        self.dbb_1x1_kxk.add_sublayer("conv2", nn.Conv2D(mid, out_channels, kernel_size, stride=stride, groups=groups,
                                                         bias_attr=False))
        self.dbb_1x1_kxk.add_sublayer("bn2", nn.BatchNorm2D(out_channels))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.dbb_origin(x) + self.dbb_avg(x) + self.dbb_1x1_kxk(x)
        if "dbb_1x1" in self._sub_layers:
            y = y + self.dbb_1x1(x)
        return self.act(y) if self.act is not None else y


LAYER_TYPES = ("ConvBNLayer", "DiverseBranchBlock")


def _unit(layer_type: str):
    if layer_type == "ConvBNLayer":
        return ConvBNLayer
    if layer_type == "DiverseBranchBlock":
        return DiverseBranchBlock
    raise ValueError(f"layer_type must be one of {', '.join(LAYER_TYPES)}, got {layer_type!r}")


class ResNet(Backbone):
    """ResNet vb (7x7 stem) or vd (three 3x3 stem convs + avg-pool shortcuts).

    PaddleClas's model arguments: ``input_image_channel`` (channels of the input, e.g. 4 for the
    "ultra" configs' zero-padded RGB), ``data_format='NHWC'`` (channels-last inside; the model
    still takes NCHW images and gives the same logits), ``layer_type='DiverseBranchBlock'``
    (the ResNet18_dbb configs), ``use_first_short_conv=False`` (the first stage's first block adds
    its input as it is instead of a projection, as torchvision's ResNet18/34; basic blocks only)."""

    classifier_name = "fc"
    key_family = "ResNet"

    def __init__(self, layers=50, variant="vb", num_classes=1000, class_num=None, drop_rate=0.0,
                 input_image_channel=3, data_format="NCHW", layer_type="ConvBNLayer", use_first_short_conv=True):
        super().__init__()
        if layers not in DEPTHS:
            raise ValueError(f"ResNet layers must be one of {sorted(DEPTHS)}, got {layers}")
        if not use_first_short_conv and layers >= 50:
            raise ValueError("use_first_short_conv=False needs basic blocks (ResNet18/34): a bottleneck "
                             "block's first stage widens 64 -> 256 channels and needs its projection")
        if variant not in ("vb", "vd"):
            raise ValueError(f"ResNet variant must be 'vb' or 'vd', got {variant!r}")
        _unit(layer_type)
        num_classes = class_num if class_num is not None else num_classes
        self.layers, self.variant, self.num_classes = layers, variant, num_classes
        self.data_format = df = check_data_format(data_format)
        self.input_image_channel, self.layer_type = int(input_image_channel), layer_type
        kw = dict(style="legendary", vd_pool="legendary", act="relu", data_format=df)
        c_in = self.input_image_channel
        if variant == "vd":
            self.stem = nn.Sequential(
                ConvBNLayer(c_in, 32, 3, stride=2, static_name="conv1_1", **kw),
                ConvBNLayer(32, 32, 3, stride=1, static_name="conv1_2", **kw),
                ConvBNLayer(32, 64, 3, stride=1, static_name="conv1_3", **kw),
            )
        else:
            self.stem = nn.Sequential(ConvBNLayer(c_in, 64, 7, stride=2, static_name="conv1", **kw))
        self.max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1, data_format=df)
        block_cls = BasicBlock if layers < 50 else BottleneckBlock
        blocks, self.feature_info = [], []
        in_ch, idx = 64, 0
        for s, n in enumerate(DEPTHS[layers]):
            names = stage_block_names(layers, s, n)
            for i in range(n):
                stride = 2 if (i == 0 and s != 0) else 1
                blocks.append(block_cls(in_ch, WIDTHS[s], stride, shortcut=i != 0 or (s == 0 and not use_first_short_conv),
                                        vd_short=variant == "vd" and not (s == 0 and i == 0), name=names[i],
                                        data_format=df, layer_type=layer_type))
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
        if self.data_format == "NHWC":
            x = to_channels_last(x)
        x = self.blocks(self.max_pool(self.stem(x)))
        return to_channels_first(x) if self.data_format == "NHWC" else x

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


# PaddleDetection 2.x backbone names (ppdet/modeling/backbones/resnet.py): stem ``conv1.conv1`` (vd:
# ``conv1.conv1_1`` ..), stages ``res<s>.<block>`` with ``branch2a/b/c`` and ``short`` (``short.conv``
# behind vd's average pool), each ``conv`` + ``norm``; a DCNv2 conv's offsets are ``conv_offset``.
# hubcls.det's backbones load PaddleDetection backbone weights through it.
_PPDET_SUB = {"conv": "conv", "_conv": "conv", "bn": "norm", "_batch_norm": "norm"}


def ppdet_unit(head: str, rest: str) -> Optional[str]:
    """``<head>`` + a ConvBNLayer-relative key (``conv.weight``, ``_batch_norm._mean``, a DCNv2
    conv's ``conv.conv_offset.bias``) in PaddleDetection's ConvNormLayer naming; None for a layer
    PaddleDetection has no name for (a DiverseBranchBlock's branches): that key keeps its own name."""
    parts = rest.split(".")
    if parts[0] in ("conv", "_conv") and len(parts) == 3 and parts[1] == "conv_offset":
        return f"{head}.conv_offset.{parts[2]}"  # a DCNv2 conv: its offset predictor sits beside it
    if parts[0] not in _PPDET_SUB:
        return None
    return f"{head}.{_PPDET_SUB[parts[0]]}.{'.'.join(parts[1:])}"


def _resnet_ppdet_map(model):
    idx = _block_index(model)
    stem = ["conv1_1", "conv1_2", "conv1_3"] if model.variant == "vd" else ["conv1"]
    out = {}
    for key in model.state_dict().keys():
        if key.startswith("stem."):
            _, n, rest = key.split(".", 2)
            out[key] = ppdet_unit(f"conv1.{stem[int(n)]}", rest)
        elif key.startswith("blocks."):
            _, n, unit, rest = key.split(".", 3)
            s, _, name = idx[int(n)]
            block = model.blocks[int(n)]
            if unit == "short":
                pooled = getattr(block.short, "is_vd_mode", False)
                out[key] = ppdet_unit(f"res{s + 2}.{name}.short" + (".conv" if pooled else ""), rest)
            elif unit.startswith("conv"):
                out[key] = ppdet_unit(f"res{s + 2}.{name}.branch2{'abc'[int(unit[4:])]}", rest)
    return {k: v for k, v in out.items() if v is not None}


register_key_map("ResNet", _resnet_ppdet_map, scheme="ppdet")


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
    zoo_cfg("ResNet18"),
    zoo_cfg("ResNet18_vd"),
    zoo_cfg("ResNet34"),
    zoo_cfg("ResNet34_vd"),
    zoo_cfg("ResNet34_vd_ssld", arch="ResNet34_vd"),
    zoo_cfg("ResNet50"),
    zoo_cfg("ResNet50_vd"),
    zoo_cfg("ResNet50_vd_v2", arch="ResNet50_vd"),
    zoo_cfg("ResNet50_vd_ssld", arch="ResNet50_vd"),
    zoo_cfg("ResNet50_vd_ssld_v2", arch="ResNet50_vd"),
    zoo_cfg("Fix_ResNet50_vd_ssld_v2", arch="ResNet50_vd"),
    zoo_cfg("ResNet101"),
    zoo_cfg("ResNet101_vd"),
    zoo_cfg("ResNet101_vd_ssld", arch="ResNet101_vd"),
    zoo_cfg("ResNet152"),
    zoo_cfg("ResNet152_vd"),
    zoo_cfg("ResNet200_vd"),
    # ResNet50_vd trained on 100k classes (the SSLD paper's 10w set): only a Paddle 1.x static tar exists.
    zoo_cfg("ResNet50_vd").with_(
        name="ResNet50_vd_10w", url=None, url_legendary=None, url_static=static_url("ResNet50_vd_10w"),
        num_classes=100000, label_list="", top1=None, top5=None, macs_g=None, params_m=None, in_2020_readme=True),
]
register_pretrained(*default_cfgs)
