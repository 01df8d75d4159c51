"""SqueezeNet 1.0 / 1.1 (Iandola et al., 2016) with PaddleClas's parameter names.

Release/2.0 dygraph names (``_conv``, fire modules ``_conv1`` ... ``_conv8``, classifier conv
``_conv9``) as in pip paddleclas's ``model_zoo``. The classifier is a 1x1 conv followed by ReLU and
global average pooling, so ``reset_classifier`` swaps that conv, not a Linear.
"""
from __future__ import annotations

from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional

# fire modules: (squeeze, expand1x1, expand3x3); inputs are the previous module's 2 * expand
FIRES = [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128), (48, 192, 192), (48, 192, 192),
         (64, 256, 256), (64, 256, 256)]
# after which fire modules (0-based) the 3x3/2 max-pool runs
POOL_AFTER = {"1.0": (2, 6), "1.1": (1, 3)}


class MakeFireConv(nn.Layer):
    def __init__(self, in_c, out_c, kernel, padding=0):
        super().__init__()
        self._conv = nn.Conv2D(in_c, out_c, kernel, padding=padding)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.relu(self._conv(x))


class MakeFire(nn.Layer):
    def __init__(self, in_c, squeeze, expand1x1, expand3x3):
        super().__init__()
        self._conv = MakeFireConv(in_c, squeeze, 1)
        self._conv_path1 = MakeFireConv(squeeze, expand1x1, 1)
        self._conv_path2 = MakeFireConv(squeeze, expand3x3, 3, padding=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._conv(x)
        return paddle.concat([self._conv_path1(x), self._conv_path2(x)], axis=1)


class SqueezeNet(Backbone):
    classifier_name = "_conv9"

    def __init__(self, version: str = "1.0", num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        if version not in POOL_AFTER:
            raise ValueError(f"SqueezeNet version must be '1.0' or '1.1', got {version!r}")
        self.version = version
        if version == "1.0":
            self._conv = nn.Conv2D(3, 96, 7, stride=2)
        else:
            self._conv = nn.Conv2D(3, 64, 3, stride=2, padding=1)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)
        in_c = self._conv.weight.shape[0]
        pools = POOL_AFTER[version]
        # stage outputs: the stem (reduction 2), then the last fire module before each pool / the end
        self.feature_info = [dict(num_chs=in_c, reduction=2, module="_relu")]
        self._relu = nn.ReLU()
        reduction = 4
        for i, (sq, e1, e3) in enumerate(FIRES):
            setattr(self, f"_conv{i + 1}", MakeFire(in_c, sq, e1, e3))
            in_c = e1 + e3
            if i in pools or i == len(FIRES) - 1:
                self.feature_info.append(dict(num_chs=in_c, reduction=reduction, module=f"_conv{i + 1}"))
                reduction *= 2
        self._fires = [getattr(self, f"_conv{i + 1}") for i in range(len(FIRES))]
        self._drop = nn.Dropout(p=dropout, mode="downscale_in_infer")
        self.num_features = in_c
        self.num_classes = num_classes
        self._conv9 = nn.Conv2D(in_c, num_classes, 1) if num_classes > 0 else nn.Identity()
        self._avg_pool = nn.AdaptiveAvgPool2D(1)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self._conv9 = nn.Conv2D(self.num_features, num_classes, 1) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._pool(self._relu(self._conv(x)))
        pools = POOL_AFTER[self.version]
        for i, fire in enumerate(self._fires):
            x = fire(x)
            if i in pools:
                x = self._pool(x)
        return x

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        if pre_logits or self.num_classes <= 0:
            return paddle.flatten(self._avg_pool(x), start_axis=1)
        x = F.relu(self._conv9(self._drop(x)))
        return paddle.flatten(self._avg_pool(x), start_axis=1)


# Paddle 1.x static names (PaddleClas release/static squeezenet.py): biased convs ``conv1``,
# ``fire<n>_squeeze1x1`` / ``_expand1x1`` / ``_expand3x3`` (n = module + 1), classifier conv ``conv10``.
_FIRE_PARTS = {"_conv": "squeeze1x1", "_conv_path1": "expand1x1", "_conv_path2": "expand3x3"}
_STATIC_RULES = [
    *fc_rules(r"_conv", "conv1"),
    *fc_rules(r"_conv(\d)\.(_conv\w*)\._conv", lambda m: f"fire{int(m[1]) + 1}_{_FIRE_PARTS[m[2]]}"),
    *fc_rules(r"_conv9", "conv10"),
]
register_key_map("SqueezeNet", static_map(_STATIC_RULES), scheme="static")


@register_model
def SqueezeNet1_0(**kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.0."""
    return SqueezeNet(version="1.0", **kwargs)


@register_model
def SqueezeNet1_1(**kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.1 (2.4x less computation than 1.0)."""
    return SqueezeNet(version="1.1", **kwargs)


default_cfgs = [
    zoo_cfg("SqueezeNet1_0", key_scheme="2.0"),
    zoo_cfg("SqueezeNet1_1", key_scheme="2.0"),
]
register_pretrained(*default_cfgs)
