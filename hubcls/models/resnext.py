"""ResNeXt50/101/152 32x4d/64x4d (+ _vd) and ResNet50_vc, with release/2.0 (model_zoo) names.

:class:`ResNeXt` is the one ResNet-shaped network behind PaddleClas's model_zoo ResNets
(ResNeXt, ResNeXt_vd, ResNet_vc here; SE_ResNet_vd, SE_ResNeXt, SENet154_vd in senet.py). Its
parameter names equal pip paddleclas's ``model_zoo`` modules (``conv1_1._conv.weight``,
``bb_0_0.conv0._batch_norm._mean``, ``bb_0_0.scale.squeeze.weight``, ``out.weight``), which are
also the release/2.0 names, so those files load directly; layers record their Paddle 1.x static
names for the static tars.
"""
from __future__ import annotations

from typing import Any, Dict

from ._features import Backbone
from ._layers import ConvBNLayer, SEModule, check_data_format, linear, nn, paddle, to_channels_first, to_channels_last
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import register_static_fold, scale_tensor
from .resnet import DEPTHS, ppdet_unit, stage_block_names


class ResNeXtBlock(nn.Layer):
    """Basic (two 3x3) or bottleneck (1x1, grouped 3x3, 1x1) block, optional SE, optional vd shortcut."""

    def __init__(self, in_ch, width, out_ch, stride, groups, bottleneck, shortcut, vd_short,
                 se_reduction, names, data_format="NCHW", stride_in_1x1=False):
        super().__init__()
        kw = dict(style="zoo", vd_pool="zoo", data_format=data_format)
        bn = names.get("bn")  # callable static conv name -> BN name, or None for the default rule
        sn = names.get

        def cb(i, o, k, s=1, g=1, act=None, key=None, **extra):
            st = sn(key)
            return ConvBNLayer(i, o, k, stride=s, groups=g, act=act, static_name=st,
                               bn_static_name=bn(st) if (bn and st) else None, **kw, **extra)

        if bottleneck:  # the stride sits on the 3x3 conv (PaddleDetection's variant 'a': on the 1x1)
            self.conv0 = cb(in_ch, width, 1, s=stride if stride_in_1x1 else 1, act="relu", key="a")
            self.conv1 = cb(width, width, 3, s=1 if stride_in_1x1 else stride, g=groups, act="relu", key="b")
            self.conv2 = cb(width, out_ch, 1, key="c")
        else:
            self.conv0 = cb(in_ch, width, 3, s=stride, act="relu", key="a")
            self.conv1 = cb(width, out_ch, 3, key="b")
        self.bottleneck = bottleneck
        self.scale = SEModule(out_ch, se_reduction, kind="linear", static_name=sn("se"),
                              data_format=data_format) if se_reduction else None
        if not shortcut:
            self.short = cb(in_ch, out_ch, 1, s=1 if vd_short else stride, key="short", is_vd_mode=vd_short)
        self.shortcut = shortcut
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv1(self.conv0(x))
        if self.bottleneck:
            y = self.conv2(y)
        if self.scale is not None:
            y = self.scale(y)
        return self.relu(y + (x if self.shortcut else self.short(x)))


class ResNeXt(Backbone):
    """A release/2.0 model_zoo ResNet.

    layers: depth (DEPTHS key); cardinality: groups of the 3x3 conv (1 = plain ResNet);
    widths: per-stage width of the 3x3 conv; out_mult: stage output = width * out_mult;
    stem: 'vb' (7x7/64, attribute ``conv``) or 'vd' (three 3x3 convs ``conv1_1..3``);
    stem_width: channels the stem outputs (64; SENet154_vd/SE_ResNeXt_vd: 128);
    vd_shortcut: avg-pool downsampling shortcuts; se_reduction: SE after the last conv of each block;
    naming: 'res' (res2a_branch2a...) or 'se' (conv2_1_x1...) Paddle 1.x names; fc_static: classifier names;
    static_dropout: the dropout the 2020 static program ran before its classifier (fluid scaled by
    1 - p at inference; this model has no dropout there), folded into static weights as they load.
    input_image_channel / data_format: PaddleClas's arguments (input channels; 'NHWC' runs
    channels-last inside - the model still takes NCHW images and gives the same logits).
    stride_in_1x1: bottleneck blocks stride on their first 1x1 conv (PaddleDetection's variant 'a').
    """

    classifier_name = "out"

    def __init__(self, layers=50, cardinality=1, widths=(64, 128, 256, 512), out_mult=4, stem="vb",
                 stem_width=64, vd_shortcut=False, se_reduction=None, naming="res",
                 fc_static=("fc_0.w_0", "fc_0.b_0"), stem_static=None, static_dropout=0.0, num_classes=1000,
                 class_num=None, input_image_channel=3, data_format="NCHW", stride_in_1x1=False):
        super().__init__()
        self.fc_static, self.static_dropout = tuple(fc_static), float(static_dropout)
        self.data_format = df = check_data_format(data_format)
        self.input_image_channel = int(input_image_channel)
        num_classes = class_num if class_num is not None else num_classes
        self.layers, self.num_classes = layers, num_classes
        bottleneck = layers >= 50
        kw = dict(style="zoo", vd_pool="zoo", act="relu", data_format=df)
        bn_rule = (lambda st: st + "_bn") if naming == "se" else None
        if stem == "vd":
            half = stem_width // 2
            chans = [(self.input_image_channel, half, 2), (half, half, 1), (half, stem_width, 1)]
            st_names = stem_static or ["conv1_1", "conv1_2", "conv1_3"]
            self._stem_names = ["conv1_1", "conv1_2", "conv1_3"]
            for attr, (i, o, s), st in zip(self._stem_names, chans, st_names):
                setattr(self, attr, ConvBNLayer(i, o, 3, stride=s, static_name=st,
                                                bn_static_name=bn_rule(st) if bn_rule else None, **kw))
            in_ch = stem_width
        else:
            st = (stem_static or ["conv1"])[0]
            self.conv = ConvBNLayer(self.input_image_channel, stem_width, 7, stride=2, static_name=st,
                                    bn_static_name=bn_rule(st) if bn_rule else None, **kw)
            self._stem_names = ["conv"]
            in_ch = stem_width
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1, data_format=df)
        self.block_list, self.feature_info = [], []
        n_se = 1 if layers in (50, 101) else 3
        for s, n in enumerate(DEPTHS[layers]):
            res_names = stage_block_names(layers if layers in (101, 152) else 50, s, n)
            n_se += 1
            for i in range(n):
                if naming == "se":
                    base = f"{n_se}_{i + 1}"
                    names = {"a": f"conv{base}_x1", "b": f"conv{base}_x2", "c": f"conv{base}_x3",
                             "short": f"conv{base}_prj", "se": f"fc{base}", "bn": bn_rule}
                    if not bottleneck:
                        names["b"] = f"conv{base}_x2"
                else:
                    r = res_names[i]
                    names = {"a": r + "_branch2a", "b": r + "_branch2b", "c": r + "_branch2c",
                             "short": r + "_branch1", "se": "fc_" + r}
                out_ch = int(round(widths[s] * out_mult))
                block = ResNeXtBlock(in_ch, widths[s], out_ch, stride=2 if (i == 0 and s != 0) else 1,
                                 groups=cardinality, bottleneck=bottleneck, shortcut=i != 0,
                                 vd_short=vd_shortcut and not (s == 0 and i == 0),
                                 se_reduction=se_reduction, names=names, data_format=df,
                                 stride_in_1x1=stride_in_1x1)
                self.add_sublayer(f"bb_{s}_{i}", block)
                self.block_list.append(block)
                in_ch = out_ch
            self.feature_info.append(dict(num_chs=in_ch, reduction=4 * 2 ** s, module=f"bb_{s}_{n - 1}"))
        self.num_features = in_ch
        self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self.out = linear(in_ch, num_classes, static_names=fc_static)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.data_format == "NHWC":
            x = to_channels_last(x)
        for name in self._stem_names:
            x = getattr(self, name)(x)
        x = self.pool2d_max(x)
        for block in self.block_list:
            x = block(x)
        return to_channels_first(x) if self.data_format == "NHWC" else x

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = self.pool2d_avg(x).flatten(1)
        return x if pre_logits else self.out(x)


# Stage widths of the grouped 3x3 convs and the Paddle 1.x classifier names of the ResNeXt tars.
WIDTHS_32X4D = (128, 256, 512, 1024)
WIDTHS_64X4D = (256, 512, 1024, 2048)
_FC_STATIC = ("fc_weights", "fc_offset")


def _fold_static_dropout(model: ResNeXt, state: dict) -> dict:
    if model.static_dropout:
        scale_tensor(state, model.fc_static[0], 1.0 - model.static_dropout)
    return state


register_static_fold("ResNeXt", _fold_static_dropout)


def _resnext_ppdet_map(model: ResNeXt) -> Dict[str, str]:
    """PaddleDetection 2.x backbone names (its ResNet with groups / base_width / std_senet, see
    resnet._resnet_ppdet_map): stem ``conv1.conv1_1`` .. (vb: ``conv1.res_conv1`` when grouped),
    ``res<s>.<block>.branch2a`` .., ``short`` / ``short.conv``, SE ``se.squeeze`` / ``se.extract``."""
    names = {}
    for s, n in enumerate(DEPTHS[model.layers]):
        for i, name in enumerate(stage_block_names(model.layers, s, n)):
            names[f"bb_{s}_{i}"] = f"res{s + 2}.{name}"
    grouped = any(getattr(b.conv1, "_conv", None) is not None and b.conv1._conv._groups > 1 for b in model.block_list)
    stem = {"conv": "res_conv1" if grouped else "conv1", "conv1_1": "conv1_1", "conv1_2": "conv1_2", "conv1_3": "conv1_3"}
    se = {"squeeze": "squeeze", "excitation": "extract"}
    out = {}
    for key in model.state_dict():
        unit, rest = key.split(".", 1)
        if unit in stem and unit in model._stem_names:
            out[key] = ppdet_unit(f"conv1.{stem[unit]}", rest)
        elif unit in names:
            part, rest = rest.split(".", 1)
            block = getattr(model, unit)
            if part == "scale":
                layer, param = rest.split(".")
                out[key] = f"{names[unit]}.se.{se[layer]}.{param}"
            elif part == "short":
                out[key] = ppdet_unit(f"{names[unit]}.short" + (".conv" if block.short.is_vd_mode else ""), rest)
            else:
                out[key] = ppdet_unit(f"{names[unit]}.branch2{'abc'[int(part[4:])]}", rest)
    return {k: v for k, v in out.items() if v is not None}


register_key_map("ResNeXt", _resnext_ppdet_map, scheme="ppdet")


def build_resnext(kwargs: Dict[str, Any], **arch: Any) -> ResNeXt:
    """ResNeXt(**arch) with the caller's keyword arguments taking precedence over the variant's."""
    return ResNeXt(**{**arch, **kwargs})


@register_model
def ResNeXt50_32x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-50 32x4d."""
    return build_resnext(kwargs, layers=50, cardinality=32, widths=WIDTHS_32X4D, out_mult=2,
                         stem_static=["res_conv1"], fc_static=_FC_STATIC)


@register_model
def ResNeXt50_vd_32x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-50 32x4d, vd stem and shortcuts."""
    return build_resnext(kwargs, layers=50, cardinality=32, widths=WIDTHS_32X4D, out_mult=2, stem="vd",
                         vd_shortcut=True, fc_static=_FC_STATIC)


@register_model
def ResNeXt50_64x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-50 64x4d."""
    return build_resnext(kwargs, layers=50, cardinality=64, widths=WIDTHS_64X4D, out_mult=1,
                         stem_static=["res_conv1"], fc_static=_FC_STATIC)


@register_model
def ResNeXt50_vd_64x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-50 64x4d, vd stem and shortcuts."""
    return build_resnext(kwargs, layers=50, cardinality=64, widths=WIDTHS_64X4D, out_mult=1, stem="vd",
                         vd_shortcut=True, fc_static=_FC_STATIC)


@register_model
def ResNeXt101_32x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-101 32x4d."""
    return build_resnext(kwargs, layers=101, cardinality=32, widths=WIDTHS_32X4D, out_mult=2,
                         stem_static=["res_conv1"], fc_static=_FC_STATIC)


@register_model
def ResNeXt101_vd_32x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-101 32x4d, vd stem and shortcuts."""
    return build_resnext(kwargs, layers=101, cardinality=32, widths=WIDTHS_32X4D, out_mult=2, stem="vd",
                         vd_shortcut=True, fc_static=_FC_STATIC)


@register_model
def ResNeXt101_64x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-101 64x4d."""
    return build_resnext(kwargs, layers=101, cardinality=64, widths=WIDTHS_64X4D, out_mult=1,
                         stem_static=["res_conv1"], fc_static=_FC_STATIC)


@register_model
def ResNeXt101_vd_64x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-101 64x4d, vd stem and shortcuts."""
    return build_resnext(kwargs, layers=101, cardinality=64, widths=WIDTHS_64X4D, out_mult=1, stem="vd",
                         vd_shortcut=True, fc_static=_FC_STATIC)


@register_model
def ResNeXt152_32x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-152 32x4d."""
    return build_resnext(kwargs, layers=152, cardinality=32, widths=WIDTHS_32X4D, out_mult=2,
                         stem_static=["res_conv1"], fc_static=_FC_STATIC)


@register_model
def ResNeXt152_vd_32x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-152 32x4d, vd stem and shortcuts."""
    return build_resnext(kwargs, layers=152, cardinality=32, widths=WIDTHS_32X4D, out_mult=2, stem="vd",
                         vd_shortcut=True, fc_static=_FC_STATIC)


@register_model
def ResNeXt152_64x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-152 64x4d."""
    return build_resnext(kwargs, layers=152, cardinality=64, widths=WIDTHS_64X4D, out_mult=1,
                         stem_static=["res_conv1"], fc_static=_FC_STATIC)


@register_model
def ResNeXt152_vd_64x4d(**kwargs: Any) -> ResNeXt:
    """ResNeXt-152 64x4d, vd stem and shortcuts."""
    return build_resnext(kwargs, layers=152, cardinality=64, widths=WIDTHS_64X4D, out_mult=1, stem="vd",
                         vd_shortcut=True, fc_static=_FC_STATIC)


@register_model
def ResNet50_vc(**kwargs: Any) -> ResNeXt:
    """ResNet-50-vc: the three-conv (vc) stem, plain shortcuts."""
    return build_resnext(kwargs, layers=50, stem="vd")


default_cfgs = [
    zoo_cfg("ResNeXt50_32x4d"),
    zoo_cfg("ResNeXt50_vd_32x4d"),
    zoo_cfg("ResNeXt50_64x4d"),
    zoo_cfg("ResNeXt50_vd_64x4d"),
    zoo_cfg("ResNeXt101_32x4d"),
    zoo_cfg("ResNeXt101_vd_32x4d"),
    zoo_cfg("ResNeXt101_64x4d"),
    zoo_cfg("ResNeXt101_vd_64x4d"),
    zoo_cfg("ResNeXt152_32x4d"),
    zoo_cfg("ResNeXt152_vd_32x4d"),
    zoo_cfg("ResNeXt152_64x4d"),
    zoo_cfg("ResNeXt152_vd_64x4d"),
    zoo_cfg("ResNet50_vc"),
]
register_pretrained(*default_cfgs)
