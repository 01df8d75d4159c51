"""EfficientNet B0-B7 and B0_small (Tan & Le, 2019) with PaddleClas's parameter names.

PaddleClas keeps EfficientNet in ``model_zoo`` with release/2.0 dygraph names, which are unusual:
the stem is ``_ef._conv_stem._conv._conv._conv``, the first block of each stage is a sub-layer
literally named ``_blocks.<i>.`` and the repeats ``block.<i>.`` (dots inside the name), e.g.
``_ef._blocks.0.._dcn._conv._conv._conv.weight``; the head is ``_conv`` and ``_fc``. Those names are
kept so official files load unchanged.

Numerics that differ from other families and matter for parity with the official weights:

* BatchNorm epsilon 1e-3 (momentum 0.99).
* ``padding_type="SAME"`` (B0-B7) is TensorFlow's SAME padding, computed *statically* from the
  model's nominal resolution (224 for B0 ... 600 for B7) for each stage, as PaddleClas does: where
  TF would pad asymmetrically (one more row/column at the bottom/right), the conv pads
  ``pad_top + stride`` on both sides and the output drops its first row and column. The choice is
  fixed at build time, so other input sizes get the same padding decisions as PaddleClas.
* B0_small: no squeeze-excite and symmetric ``"DYNAMIC"`` padding ``((stride - 1) + (k - 1)) // 2``.
* Swish everywhere; SE = pool -> 1x1 conv + swish -> 1x1 conv + sigmoid, squeeze width
  ``max(1, int(block input filters * 0.25))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Tuple

from .._paddle import import_paddle
from ._features import Backbone
from ._layers import make_divisible
from ._pretrained import PretrainedCfg, zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional

BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3

# name -> (width multiplier, depth multiplier, nominal resolution, dropout)
PARAMS = {
    "b0_small": (1.0, 1.0, 224, 0.2),
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
# PaddleClas's table of the input size each stage sees at the nominal resolution (index 0: stem,
# 1-7: the 7 stages of blocks, 7 again for the head); SAME padding is derived from it.
STAGE_INPUT = {
    "b0": (224, 112, 112, 56, 28, 14, 14, 7),
    "b1": (240, 120, 120, 60, 30, 15, 15, 8),
    "b2": (260, 130, 130, 65, 33, 17, 17, 9),
    "b3": (300, 150, 150, 75, 38, 19, 19, 10),
    "b4": (380, 190, 190, 95, 48, 24, 24, 12),
    "b5": (456, 228, 228, 114, 57, 29, 29, 15),
    "b6": (528, 264, 264, 132, 66, 33, 33, 17),
    "b7": (600, 300, 300, 150, 75, 38, 38, 19),
}
STAGE_INPUT["b0_small"] = STAGE_INPUT["b0"]


@dataclass(frozen=True)
class StageArgs:
    kernel: int
    repeats: int
    in_filters: int
    out_filters: int
    expand: int
    stride: int
    se_ratio: float = 0.25


# The B0 stages (TF's 'r1_k3_s11_e1_i32_o16_se0.25', ... strings, decoded)
B0_STAGES = (
    StageArgs(3, 1, 32, 16, 1, 1),
    StageArgs(3, 2, 16, 24, 6, 2),
    StageArgs(5, 2, 24, 40, 6, 2),
    StageArgs(3, 3, 40, 80, 6, 2),
    StageArgs(5, 3, 80, 112, 6, 1),
    StageArgs(5, 4, 112, 192, 6, 2),
    StageArgs(3, 1, 192, 320, 6, 1),
)


def same_padding(size: int, stride: int, kernel: int) -> Tuple[int, int]:
    """TF SAME padding (before, after) along one axis of length ``size``."""
    total = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    return total // 2, total - total // 2


class Conv2ds(nn.Layer):
    """Conv2D (attribute ``_conv``) with PaddleClas's padding modes and an optional activation.

    padding_type 'SAME' needs ``input_size`` (the nominal size this conv sees; 1 for 1x1 convs
    whose padding is 0 anyway); 'DYNAMIC' is symmetric ``((stride-1) + (k-1)) // 2``; 'VALID' is 0.
    """

    def __init__(self, in_c, out_c, kernel, stride=1, groups=1, act=None, use_bias=False,
                 padding_type="SAME", input_size=1):
        super().__init__()
        if act not in (None, "swish", "sigmoid"):
            raise ValueError(f"Conv2ds act must be None, 'swish' or 'sigmoid', got {act!r}")
        self.act = act
        self.need_crop = False
        if padding_type == "SAME":
            before, after = same_padding(input_size, stride, kernel)
            padding = before
            if before != after:
                # emulate the asymmetric TF padding: pad before+stride on both sides, drop the first
                # output row/column (the window positions are then exactly TF's)
                padding = before + stride
                self.need_crop = True
        elif padding_type == "DYNAMIC":
            padding = ((stride - 1) + (kernel - 1)) // 2
        elif padding_type == "VALID":
            padding = 0
        else:
            raise ValueError(f"padding_type must be 'SAME', 'DYNAMIC' or 'VALID', got {padding_type!r}")
        self._conv = nn.Conv2D(in_c, out_c, kernel, stride=stride, padding=padding, groups=groups,
                               bias_attr=None if use_bias else False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._conv(x)
        if self.act == "swish":
            x = F.swish(x)
        elif self.act == "sigmoid":
            x = F.sigmoid(x)
        if self.need_crop:
            x = x[:, :, 1:, 1:]
        return x


class ConvBNLayer(nn.Layer):
    """``_conv`` (Conv2ds) + ``_bn`` (eps 1e-3) + optional swish."""

    def __init__(self, in_c, out_c, kernel, stride=1, groups=1, bn_act=None, padding_type="SAME", input_size=1):
        super().__init__()
        self._conv = Conv2ds(in_c, out_c, kernel, stride, groups, padding_type=padding_type, input_size=input_size)
        self._bn = nn.BatchNorm2D(out_c, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)
        self.bn_act = bn_act

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._bn(self._conv(x))
        return F.swish(x) if self.bn_act == "swish" else x


class ConvNorm(nn.Layer):
    """A ConvBNLayer under the attribute ``_conv`` (PaddleClas's ExpandConvNorm, DepthwiseConvNorm,
    ProjectConvNorm and ConvStemNorm are all this wrapper)."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._conv = ConvBNLayer(*args, **kwargs)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._conv(x)


class SEBlock(nn.Layer):
    def __init__(self, channels, squeezed, padding_type):
        super().__init__()
        self._pool = nn.AdaptiveAvgPool2D(1)
        self._conv1 = Conv2ds(channels, squeezed, 1, act="swish", use_bias=True, padding_type=padding_type)
        self._conv2 = Conv2ds(squeezed, channels, 1, act="sigmoid", use_bias=True, padding_type=padding_type)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * self._conv2(self._conv1(self._pool(x)))


class MbConvBlock(nn.Layer):
    def __init__(self, args: StageArgs, use_se, padding_type, input_size, drop_connect_rate=0.0):
        super().__init__()
        self.args = args
        mid = args.in_filters * args.expand
        conv_kw = dict(padding_type=padding_type, input_size=input_size)
        if args.expand != 1:
            self._ecn = ConvNorm(args.in_filters, mid, 1, **conv_kw)
        self._dcn = ConvNorm(mid, mid, args.kernel, args.stride, groups=mid, **conv_kw)
        self.has_se = use_se and args.se_ratio is not None and 0 < args.se_ratio <= 1
        if self.has_se:
            self._se = SEBlock(mid, max(1, int(args.in_filters * args.se_ratio)), padding_type)
        self._pcn = ConvNorm(mid, args.out_filters, 1, **conv_kw)
        self.residual = args.stride == 1 and args.in_filters == args.out_filters
        self.drop_connect_rate = drop_connect_rate

    def forward(self, inputs: paddle.Tensor) -> paddle.Tensor:
        x = inputs
        if self.args.expand != 1:
            x = F.swish(self._ecn(x))
        x = F.swish(self._dcn(x))
        if self.has_se:
            x = self._se(x)
        x = self._pcn(x)
        if self.residual:
            if self.training and self.drop_connect_rate:
                # stochastic depth: drop the whole residual branch per sample
                keep = 1.0 - self.drop_connect_rate
                mask = paddle.floor(keep + paddle.rand([x.shape[0], 1, 1, 1], dtype=x.dtype))
                x = x * mask / keep
            x = x + inputs
        return x


class ExtractFeatures(nn.Layer):
    """Stem + blocks under PaddleClas's names (``_conv_stem``, ``_blocks.<i>.`` / ``block.<i>.``)."""

    def __init__(self, name, width, depth, use_se, padding_type, drop_connect_rate=0.2):
        super().__init__()
        sizes = STAGE_INPUT[name]
        self._conv_stem = ConvNorm(3, make_divisible(32 * width), 3, 2, padding_type=padding_type,
                                   input_size=sizes[0])
        stages = []
        for s in B0_STAGES:
            stages.append(replace(s, in_filters=make_divisible(s.in_filters * width),
                                  out_filters=make_divisible(s.out_filters * width),
                                  repeats=int(math.ceil(depth * s.repeats))))
        total = sum(s.repeats for s in stages)
        self.stage_blocks = []   # per stage: list of its blocks (plain list: the names above own them)
        idx = 0
        for stage_idx, args in enumerate(stages):
            blocks = []
            for r in range(args.repeats):
                if r == 1:
                    args = replace(args, in_filters=args.out_filters, stride=1)
                block = MbConvBlock(args, use_se, padding_type, sizes[stage_idx + 1],
                                    drop_connect_rate * idx / total if drop_connect_rate else 0.0)
                blocks.append(self.add_sublayer(f"{'_blocks' if r == 0 else 'block'}.{idx}.", block))
                idx += 1
            self.stage_blocks.append(blocks)
        self.stage_args = stages
        self.final_oup = stages[-1].out_filters


class EfficientNet(Backbone):
    classifier_name = "_fc"

    def __init__(self, name: str = "b0", padding_type: str | None = None, use_se: bool | None = None,
                 num_classes: int = 1000, drop_connect_rate: float = 0.2, dropout: float | None = None):
        super().__init__()
        if name not in PARAMS:
            raise ValueError(f"EfficientNet variant must be one of {sorted(PARAMS)}, got {name!r}")
        width, depth, resolution, default_dropout = PARAMS[name]
        small = name == "b0_small"
        padding_type = padding_type or ("DYNAMIC" if small else "SAME")
        use_se = (not small) if use_se is None else use_se
        self.name_, self.resolution = name, resolution
        self._ef = ExtractFeatures(name, width, depth, use_se, padding_type, drop_connect_rate)
        head_c = make_divisible(1280 * width)
        self._conv = ConvBNLayer(self._ef.final_oup, head_c, 1, bn_act="swish", padding_type=padding_type,
                                 input_size=STAGE_INPUT[name][7])
        self._pool = nn.AdaptiveAvgPool2D(1)
        dropout = default_dropout if dropout is None else dropout
        self._drop = nn.Dropout(p=dropout, mode="upscale_in_train") if dropout else nn.Identity()
        self.num_features = head_c
        self.num_classes = num_classes
        self._fc = nn.Linear(head_c, num_classes) if num_classes > 0 else nn.Identity()
        # Feature levels: the last block of each stage before a stride-2 stage, and the head conv.
        # The block names contain dots, so parameter-free taps give the hooks a plain path.
        self.feature_info, self._tap_after = [], {}
        stages, reduction = self._ef.stage_args, 2
        for i, args in enumerate(stages):
            reduction *= args.stride
            if i + 1 < len(stages) and stages[i + 1].stride == 2:
                self._tap_after[i] = len(self.feature_info)
                self.feature_info.append(dict(num_chs=args.out_filters, reduction=reduction,
                                              module=f"_taps.{len(self.feature_info)}"))
        self._taps = nn.LayerList([nn.Identity() for _ in self.feature_info])
        self.feature_info.append(dict(num_chs=head_c, reduction=reduction, module="_conv"))

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = F.swish(self._ef._conv_stem(x))
        for i, blocks in enumerate(self._ef.stage_blocks):
            for block in blocks:
                x = block(x)
            if i in self._tap_after:
                x = self._taps[self._tap_after[i]](x)
        return self._conv(x)

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = paddle.flatten(self._drop(self._pool(x)), start_axis=1)
        return x if pre_logits else self._fc(x)


# Paddle 1.x static names (PaddleClas release/static efficientnet.py): ``_conv_stem`` + ``_bn0``, block
# n's convs ``_blocks.<n>._expand_conv`` / ``_depthwise_conv`` / ``_project_conv`` with BN ``_bn0`` /
# ``_bn1`` / ``_bn2``, SE ``_se_reduce`` / ``_se_expand``; ``_conv_head`` + ``_bn1``; ``_fc``.
_EFF_CONVS = {"_ecn": ("_expand_conv", "_bn0"), "_dcn": ("_depthwise_conv", "_bn1"), "_pcn": ("_project_conv", "_bn2")}
_EFF_BLOCK = r"_ef\.(?:_blocks|block)\.(\d+)\.\."
_STATIC_RULES = [
    (r"_ef\._conv_stem\._conv\._conv\._conv\.weight", "_conv_stem_weights"),
    *bn_rules(r"_ef\._conv_stem\._conv\._bn", "_bn0"),
    (_EFF_BLOCK + r"(_[edp]cn)\._conv\._conv\._conv\.weight", lambda m: f"_blocks.{m[1]}.{_EFF_CONVS[m[2]][0]}_weights"),
    *bn_rules(_EFF_BLOCK + r"(_[edp]cn)\._conv\._bn", lambda m: f"_blocks.{m[1]}.{_EFF_CONVS[m[2]][1]}"),
    *fc_rules(_EFF_BLOCK + r"_se\._conv([12])\._conv", lambda m: f"_blocks.{m[1]}._se_{('reduce', 'expand')[int(m[2]) - 1]}"),
    (r"_conv\._conv\._conv\.weight", "_conv_head_weights"),
    *bn_rules(r"_conv\._bn", "_bn1"),
    *fc_rules(r"_fc", "_fc"),
]
register_key_map("EfficientNet", static_map(_STATIC_RULES), scheme="static")


@register_model
def EfficientNetB0_small(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B0 without squeeze-excite, symmetric padding (PaddleClas's B0_small)."""
    return EfficientNet(name="b0_small", **kwargs)


@register_model
def EfficientNetB0(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B0 (nominal resolution 224)."""
    return EfficientNet(name="b0", **kwargs)


@register_model
def EfficientNetB1(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B1 (nominal resolution 240)."""
    return EfficientNet(name="b1", **kwargs)


@register_model
def EfficientNetB2(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B2 (nominal resolution 260)."""
    return EfficientNet(name="b2", **kwargs)


@register_model
def EfficientNetB3(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B3 (nominal resolution 300)."""
    return EfficientNet(name="b3", **kwargs)


@register_model
def EfficientNetB4(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B4 (nominal resolution 380)."""
    return EfficientNet(name="b4", **kwargs)


@register_model
def EfficientNetB5(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B5 (nominal resolution 456)."""
    return EfficientNet(name="b5", **kwargs)


@register_model
def EfficientNetB6(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B6 (nominal resolution 528)."""
    return EfficientNet(name="b6", **kwargs)


@register_model
def EfficientNetB7(**kwargs: Any) -> EfficientNet:
    """EfficientNet-B7 (nominal resolution 600)."""
    return EfficientNet(name="b7", **kwargs)


def _cfg(name: str, variant: str) -> PretrainedCfg:
    # Eval: crop = nominal resolution, resize_short = crop + 32 (release/2.0 docs' speed tables),
    # bicubic resize (release/2.0 configs/EfficientNet/EfficientNetB0.yaml: interpolation 2 = cv2 cubic)
    res = PARAMS[variant][2]
    return zoo_cfg(name, key_scheme="2.0", input_size=res, resize_short=res + 32, interpolation="bicubic")


default_cfgs = [
    _cfg("EfficientNetB0_small", "b0_small"),
    _cfg("EfficientNetB0", "b0"),
    _cfg("EfficientNetB1", "b1"),
    _cfg("EfficientNetB2", "b2"),
    _cfg("EfficientNetB3", "b3"),
    _cfg("EfficientNetB4", "b4"),
    _cfg("EfficientNetB5", "b5"),
    _cfg("EfficientNetB6", "b6"),
    _cfg("EfficientNetB7", "b7"),
]
register_pretrained(*default_cfgs)
