"""ShuffleNetV2 (Ma et al., 2018) with PaddleClas's parameter names.

PaddleClas keeps ShuffleNetV2 in ``model_zoo`` with release/2.0 dygraph names (``_conv1``, units
``2_1`` ... ``4_4``, ``_last_conv``, ``_fc``), so official files load unchanged. ``ShuffleNetV2``
in the zoo table is the x1.0 model (weights file ``ShuffleNetV2_x1_0``); ``ShuffleNetV2_swish``
is x1.0 with swish instead of ReLU.
"""
from __future__ import annotations

from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._layers import ConvBNLayer
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn

STAGE_REPEATS = (4, 8, 4)
# scale -> channels of (stem, stage 2, stage 3, stage 4, last conv)
STAGE_CHANNELS = {
    0.25: (24, 24, 48, 96, 512),
    0.33: (24, 32, 64, 128, 512),
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
# x2.0: PaddleClas release/2.0 (and PaddlePaddle/models' fluid code the weights were trained with)
# built stage 2 with 224 channels; PaddleClas changed it to the paper's 244 in 2022 (commit 60a4269d,
# "fix ShuffleNetV2 x2_0 stage_out_channels") without publishing new weights. hubcls follows
# paddleclas 2.6 (244). If the official ShuffleNetV2_x2_0 file turns out to be 224 wide, loading it
# fails with a shape mismatch (never silently); build the release/2.0 shape with
# ``create_model("ShuffleNetV2_x2_0", pretrained=True, stage2_channels=224)``.


def channel_shuffle(x: paddle.Tensor, groups: int) -> paddle.Tensor:
    """Interleave the channel groups: [g0c0, g0c1, ..., g1c0, ...] -> [g0c0, g1c0, g0c1, ...]."""
    c = x.shape[1]
    shape = paddle.shape(x)  # a tensor: stays valid when H/W are dynamic in an exported program
    x = x.reshape([0, groups, c // groups, -1]).transpose([0, 2, 1, 3])
    return x.reshape(shape)


def _conv_bn(in_c, out_c, kernel, stride=1, groups=1, act=None):
    if act == "swish":
        # paddle's swish kernel (what PaddleClas's BatchNorm(act="swish") runs); x * sigmoid(x)
        # differs by float rounding, visible (~1e-4) on large logits
        act = nn.Swish()
    conv = ConvBNLayer(in_c, out_c, kernel, stride=stride, groups=groups, act=act, style="zoo")
    nn.initializer.KaimingNormal()(conv._conv.weight)  # PaddleClas's init for these convs
    return conv


class InvertedResidual(nn.Layer):
    """Stride-1 unit: half the channels pass through, the other half goes pw -> dw -> pw."""

    def __init__(self, channels, act):
        super().__init__()
        half = channels // 2
        self._conv_pw = _conv_bn(half, half, 1, act=act)
        self._conv_dw = _conv_bn(half, half, 3, groups=half, act=None)
        self._conv_linear = _conv_bn(half, half, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x1, x2 = paddle.split(x, 2, axis=1)
        x2 = self._conv_linear(self._conv_dw(self._conv_pw(x2)))
        return channel_shuffle(paddle.concat([x1, x2], axis=1), 2)


class InvertedResidualDS(nn.Layer):
    """Down-sampling unit: both branches see the whole input and halve the resolution."""

    def __init__(self, in_c, out_c, stride, act):
        super().__init__()
        half = out_c // 2
        self._conv_dw_1 = _conv_bn(in_c, in_c, 3, stride, groups=in_c, act=None)
        self._conv_linear_1 = _conv_bn(in_c, half, 1, act=act)
        self._conv_pw_2 = _conv_bn(in_c, half, 1, act=act)
        self._conv_dw_2 = _conv_bn(half, half, 3, stride, groups=half, act=None)
        self._conv_linear_2 = _conv_bn(half, half, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x1 = self._conv_linear_1(self._conv_dw_1(x))
        x2 = self._conv_linear_2(self._conv_dw_2(self._conv_pw_2(x)))
        return channel_shuffle(paddle.concat([x1, x2], axis=1), 2)


class ShuffleNetV2Model(Backbone):
    classifier_name = "_fc"

    def __init__(self, scale: float = 1.0, act: str = "relu", num_classes: int = 1000,
                 stage2_channels: int | None = None):
        """stage2_channels overrides the width of stage 2 (see the x2.0 note at STAGE_CHANNELS)."""
        super().__init__()
        if scale not in STAGE_CHANNELS:
            raise ValueError(f"ShuffleNetV2 scale must be one of {sorted(STAGE_CHANNELS)}, got {scale!r}")
        if act not in ("relu", "swish"):
            raise ValueError(f"ShuffleNetV2 act must be 'relu' or 'swish', got {act!r}")
        chs = STAGE_CHANNELS[scale]
        if stage2_channels is not None:
            if stage2_channels <= 0 or stage2_channels % 2:
                raise ValueError(f"stage2_channels must be a positive even number, got {stage2_channels!r}")
            chs = (chs[0], int(stage2_channels)) + chs[2:]
        self.scale = scale
        self._conv1 = _conv_bn(3, chs[0], 3, stride=2, act=act)
        self._max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.feature_info = [dict(num_chs=chs[0], reduction=2, module="_conv1"),
                             dict(num_chs=chs[0], reduction=4, module="_max_pool")]
        self._block_list = []
        reduction = 4
        for stage, repeats in enumerate(STAGE_REPEATS):
            in_c, out_c = chs[stage], chs[stage + 1]
            reduction *= 2
            for i in range(repeats):
                name = f"{stage + 2}_{i + 1}"
                unit = InvertedResidualDS(in_c, out_c, 2, act) if i == 0 else InvertedResidual(out_c, act)
                self._block_list.append(self.add_sublayer(name, unit))
            if stage < len(STAGE_REPEATS) - 1:
                self.feature_info.append(dict(num_chs=out_c, reduction=reduction, module=name))
        self._last_conv = _conv_bn(chs[3], chs[4], 1, act=act)
        self.feature_info.append(dict(num_chs=chs[4], reduction=reduction, module="_last_conv"))
        self._pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self._out_c = self.num_features = chs[4]
        self.num_classes = num_classes
        self._fc = nn.Linear(chs[4], num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._max_pool(self._conv1(x))
        for unit in self._block_list:
            x = unit(x)
        return self._last_conv(x)

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = paddle.flatten(self._pool2d_avg(x), start_axis=1)
        return x if pre_logits else self._fc(x)


# Paddle 1.x static names (PaddleClas release/static shufflenet_v2.py and _swish.py): stem
# ``stage1_conv``, unit ``<s>_<i>`` is ``stage_<s>_<i>`` with convs numbered as in the 2020 code,
# BN ``<conv>_bn``; ``conv5``; classifier ``fc6``.
_SHUFFLE_CONVS = {"_conv_pw": "conv1", "_conv_dw": "conv2", "_conv_linear": "conv3", "_conv_pw_2": "conv1",
                  "_conv_dw_2": "conv2", "_conv_linear_2": "conv3", "_conv_dw_1": "conv4", "_conv_linear_1": "conv5"}
_STATIC_RULES = [
    *conv_bn_rules(r"_conv1", "stage1_conv", "stage1_conv_bn"),
    *conv_bn_rules(r"(\d+)_(\d+)\.(_conv_\w+)", lambda m: f"stage_{m[1]}_{m[2]}_{_SHUFFLE_CONVS[m[3]]}",
                   lambda m: f"stage_{m[1]}_{m[2]}_{_SHUFFLE_CONVS[m[3]]}_bn"),
    *conv_bn_rules(r"_last_conv", "conv5", "conv5_bn"),
    *fc_rules(r"_fc", "fc6"),
]
register_key_map("ShuffleNetV2Model", static_map(_STATIC_RULES), scheme="static")


@register_model
def ShuffleNetV2_x0_25(**kwargs: Any) -> ShuffleNetV2Model:
    """ShuffleNetV2 x0.25 (ReLU)."""
    return ShuffleNetV2Model(scale=0.25, **kwargs)


@register_model
def ShuffleNetV2_x0_33(**kwargs: Any) -> ShuffleNetV2Model:
    """ShuffleNetV2 x0.33 (ReLU)."""
    return ShuffleNetV2Model(scale=0.33, **kwargs)


@register_model
def ShuffleNetV2_x0_5(**kwargs: Any) -> ShuffleNetV2Model:
    """ShuffleNetV2 x0.5 (ReLU)."""
    return ShuffleNetV2Model(scale=0.5, **kwargs)


@register_model
def ShuffleNetV2_x1_0(**kwargs: Any) -> ShuffleNetV2Model:
    """ShuffleNetV2 x1.0 (ReLU)."""
    return ShuffleNetV2Model(scale=1.0, **kwargs)


@register_model
def ShuffleNetV2_x1_5(**kwargs: Any) -> ShuffleNetV2Model:
    """ShuffleNetV2 x1.5 (ReLU)."""
    return ShuffleNetV2Model(scale=1.5, **kwargs)


@register_model
def ShuffleNetV2_x2_0(**kwargs: Any) -> ShuffleNetV2Model:
    """ShuffleNetV2 x2.0 (ReLU)."""
    return ShuffleNetV2Model(scale=2.0, **kwargs)


@register_model
def ShuffleNetV2_swish(**kwargs: Any) -> ShuffleNetV2Model:
    """ShuffleNetV2 x1.0 with swish activations."""
    return ShuffleNetV2Model(scale=1.0, act="swish", **kwargs)


# The table's "ShuffleNetV2" row is the x1.0 model; both spellings name the same weights.
default_cfgs = [
    zoo_cfg("ShuffleNetV2_x0_25", key_scheme="2.0"),
    zoo_cfg("ShuffleNetV2_x0_33", key_scheme="2.0"),
    zoo_cfg("ShuffleNetV2_x0_5", key_scheme="2.0"),
    zoo_cfg("ShuffleNetV2_x1_5", key_scheme="2.0"),
    zoo_cfg("ShuffleNetV2_x2_0", key_scheme="2.0"),
    zoo_cfg("ShuffleNetV2_swish", key_scheme="2.0"),
    zoo_cfg("ShuffleNetV2", arch="ShuffleNetV2_x1_0", key_scheme="2.0"),
    zoo_cfg("ShuffleNetV2", arch="ShuffleNetV2_x1_0", key_scheme="2.0").with_(name="ShuffleNetV2_x1_0"),
]
register_pretrained(*default_cfgs)
