"""Inception-v4 (Szegedy et al., 2017), PaddleClas release/2.0 ``inception_v4.py`` names."""
from __future__ import annotations

from typing import Any

from .._paddle import import_paddle
from ._layers import ConvBN, PooledBackbone, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn

# PaddleClas evaluates the 299-crop Inception family with a 320 short-side resize (the zoo table
# already says so); kept explicit here because it is the family's defining difference.
_EVAL = dict(input_size=299, resize_short=320)


def _cbr(in_ch, out_ch, k, stride=1, padding=0):
    # Inception convs state their padding explicitly (many are 'valid'); default 0 as in PaddleClas.
    return ConvBN(in_ch, out_ch, k, stride=stride, padding=padding, act="relu")


class V4Stem(nn.Layer):
    def __init__(self):
        super().__init__()
        self._conv_1 = _cbr(3, 32, 3, stride=2)
        self._conv_2 = _cbr(32, 32, 3)
        self._conv_3 = _cbr(32, 64, 3, padding=1)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)
        self._conv2 = _cbr(64, 96, 3, stride=2)
        self._conv1_1 = _cbr(160, 64, 1)
        self._conv1_2 = _cbr(64, 96, 3)
        self._conv2_1 = _cbr(160, 64, 1)
        self._conv2_2 = _cbr(64, 64, (7, 1), padding=(3, 0))
        self._conv2_3 = _cbr(64, 64, (1, 7), padding=(0, 3))
        self._conv2_4 = _cbr(64, 96, 3)
        self._conv3 = _cbr(192, 192, 3, stride=2)
        self.stride4_out = nn.Identity()  # parameter-free tap on the 160-ch stride-4 concat

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._conv_3(self._conv_2(self._conv_1(x)))
        x = self.stride4_out(paddle.concat([self._pool(x), self._conv2(x)], axis=1))
        b2 = self._conv2_4(self._conv2_3(self._conv2_2(self._conv2_1(x))))
        x = paddle.concat([self._conv1_2(self._conv1_1(x)), b2], axis=1)
        return paddle.concat([self._conv3(x), self._pool(x)], axis=1)


def _avg3_excl():
    return nn.AvgPool2D(kernel_size=3, stride=1, padding=1)


class V4BlockA(nn.Layer):
    def __init__(self):
        super().__init__()
        self._pool = _avg3_excl()
        self._conv1 = _cbr(384, 96, 1)
        self._conv2 = _cbr(384, 96, 1)
        self._conv3_1 = _cbr(384, 64, 1)
        self._conv3_2 = _cbr(64, 96, 3, padding=1)
        self._conv4_1 = _cbr(384, 64, 1)
        self._conv4_2 = _cbr(64, 96, 3, padding=1)
        self._conv4_3 = _cbr(96, 96, 3, padding=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.concat([self._conv1(self._pool(x)), self._conv2(x),
                              self._conv3_2(self._conv3_1(x)),
                              self._conv4_3(self._conv4_2(self._conv4_1(x)))], axis=1)


class V4ReductionA(nn.Layer):
    def __init__(self):
        super().__init__()
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)
        self._conv2 = _cbr(384, 384, 3, stride=2)
        self._conv3_1 = _cbr(384, 192, 1)
        self._conv3_2 = _cbr(192, 224, 3, padding=1)
        self._conv3_3 = _cbr(224, 256, 3, stride=2)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.concat([self._pool(x), self._conv2(x),
                              self._conv3_3(self._conv3_2(self._conv3_1(x)))], axis=1)


class V4BlockB(nn.Layer):
    def __init__(self):
        super().__init__()
        self._pool = _avg3_excl()
        self._conv1 = _cbr(1024, 128, 1)
        self._conv2 = _cbr(1024, 384, 1)
        self._conv3_1 = _cbr(1024, 192, 1)
        self._conv3_2 = _cbr(192, 224, (1, 7), padding=(0, 3))
        self._conv3_3 = _cbr(224, 256, (7, 1), padding=(3, 0))
        self._conv4_1 = _cbr(1024, 192, 1)
        self._conv4_2 = _cbr(192, 192, (1, 7), padding=(0, 3))
        self._conv4_3 = _cbr(192, 224, (7, 1), padding=(3, 0))
        self._conv4_4 = _cbr(224, 224, (1, 7), padding=(0, 3))
        self._conv4_5 = _cbr(224, 256, (7, 1), padding=(3, 0))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b4 = self._conv4_1(x)
        for layer in (self._conv4_2, self._conv4_3, self._conv4_4, self._conv4_5):
            b4 = layer(b4)
        return paddle.concat([self._conv1(self._pool(x)), self._conv2(x),
                              self._conv3_3(self._conv3_2(self._conv3_1(x))), b4], axis=1)


class V4ReductionB(nn.Layer):
    def __init__(self):
        super().__init__()
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)
        self._conv2_1 = _cbr(1024, 192, 1)
        self._conv2_2 = _cbr(192, 192, 3, stride=2)
        self._conv3_1 = _cbr(1024, 256, 1)
        self._conv3_2 = _cbr(256, 256, (1, 7), padding=(0, 3))
        self._conv3_3 = _cbr(256, 320, (7, 1), padding=(3, 0))
        self._conv3_4 = _cbr(320, 320, 3, stride=2)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b3 = self._conv3_1(x)
        for layer in (self._conv3_2, self._conv3_3, self._conv3_4):
            b3 = layer(b3)
        return paddle.concat([self._pool(x), self._conv2_2(self._conv2_1(x)), b3], axis=1)


class V4BlockC(nn.Layer):
    def __init__(self):
        super().__init__()
        self._pool = _avg3_excl()
        self._conv1 = _cbr(1536, 256, 1)
        self._conv2 = _cbr(1536, 256, 1)
        self._conv3_0 = _cbr(1536, 384, 1)
        self._conv3_1 = _cbr(384, 256, (1, 3), padding=(0, 1))
        self._conv3_2 = _cbr(384, 256, (3, 1), padding=(1, 0))
        self._conv4_0 = _cbr(1536, 384, 1)
        self._conv4_00 = _cbr(384, 448, (1, 3), padding=(0, 1))
        self._conv4_000 = _cbr(448, 512, (3, 1), padding=(1, 0))
        self._conv4_1 = _cbr(512, 256, (1, 3), padding=(0, 1))
        self._conv4_2 = _cbr(512, 256, (3, 1), padding=(1, 0))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b3 = self._conv3_0(x)
        b4 = self._conv4_000(self._conv4_00(self._conv4_0(x)))
        return paddle.concat([self._conv1(self._pool(x)), self._conv2(x), self._conv3_1(b3),
                              self._conv3_2(b3), self._conv4_1(b4), self._conv4_2(b4)], axis=1)


class InceptionV4Model(PooledBackbone):
    classifier_name = "out"
    min_input_size = 75  # 'valid' convs and pools: smaller inputs run out of pixels

    def __init__(self, num_classes=1000, class_num=None):
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self._inception_stem = V4Stem()
        self._order = ["_inception_stem"]
        for i in range(1, 5):
            self._add(f"_inceptionA_{i}", V4BlockA())
        self._add("_reductionA", V4ReductionA())
        for i in range(1, 8):
            self._add(f"_inceptionB_{i}", V4BlockB())
        self._add("_reductionB", V4ReductionB())
        for i in range(1, 4):
            self._add(f"_inceptionC_{i}", V4BlockC())
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.head_drop = nn.Dropout(p=0.2, mode="downscale_in_infer")
        self.num_features = 1536
        self.out = linear(1536, num_classes)
        # as for InceptionV3, the stride-8 stage ('valid' convs: ~2px under input/8) is left out
        self.feature_info = [dict(num_chs=32, reduction=2, module="_inception_stem._conv_1"),
                             dict(num_chs=160, reduction=4, module="_inception_stem.stride4_out"),
                             dict(num_chs=1024, reduction=16, module="_inceptionB_7"),
                             dict(num_chs=1536, reduction=32, module="_inceptionC_3")]

    def _add(self, name, layer):
        setattr(self, name, layer)
        self._order.append(name)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        for name in self._order:
            x = getattr(self, name)(x)
        return x


# Paddle 1.x static names (PaddleClas release/static inception_v4.py), per block type:
# attribute of the conv -> its static suffix; blocks are ``inception_<a|b|c><n>`` /
# ``reduction_<a|b>``, BN ``<conv>_bn``, classifier ``final_fc``.
_V4_STEM = {"_conv_1": "conv1_3x3_s2", "_conv_2": "conv2_3x3_s1", "_conv_3": "conv3_3x3_s1",
            "_conv2": "inception_stem1_3x3_s2", "_conv1_1": "inception_stem2_3x3_reduce",
            "_conv1_2": "inception_stem2_3x3", "_conv2_1": "inception_stem2_1x7_reduce",
            "_conv2_2": "inception_stem2_1x7", "_conv2_3": "inception_stem2_7x1",
            "_conv2_4": "inception_stem2_3x3_2", "_conv3": "inception_stem3_3x3_s2"}
_V4_BLOCKS = {
    "inceptionA": {"_conv1": "1x1", "_conv2": "1x1_2", "_conv3_1": "3x3_reduce", "_conv3_2": "3x3",
                   "_conv4_1": "3x3_2_reduce", "_conv4_2": "3x3_2", "_conv4_3": "3x3_3"},
    "reductionA": {"_conv2": "3x3", "_conv3_1": "3x3_2_reduce", "_conv3_2": "3x3_2", "_conv3_3": "3x3_3"},
    "inceptionB": {"_conv1": "1x1", "_conv2": "1x1_2", "_conv3_1": "1x7_reduce", "_conv3_2": "1x7",
                   "_conv3_3": "7x1", "_conv4_1": "7x1_2_reduce", "_conv4_2": "1x7_2", "_conv4_3": "7x1_2",
                   "_conv4_4": "1x7_3", "_conv4_5": "7x1_3"},
    "reductionB": {"_conv2_1": "3x3_reduce", "_conv2_2": "3x3", "_conv3_1": "1x7_reduce", "_conv3_2": "1x7",
                   "_conv3_3": "7x1", "_conv3_4": "3x3_2"},
    "inceptionC": {"_conv1": "1x1", "_conv2": "1x1_2", "_conv3_0": "1x1_3", "_conv3_1": "1x3", "_conv3_2": "3x1",
                   "_conv4_0": "1x1_4", "_conv4_00": "1x3_2", "_conv4_000": "3x1_2", "_conv4_1": "1x3_3",
                   "_conv4_2": "3x1_3"},
}


def _v4_conv(m):
    block, n, conv = m[1], m[2], m[3]
    if block == "inception_stem":
        return _V4_STEM[conv]
    prefix = f"{block[:-1]}_{block[-1].lower()}{n or ''}"  # inceptionA_1 -> inception_a1
    return f"{prefix}_{_V4_BLOCKS[block][conv]}"


_STATIC_RULES = [
    *conv_bn_rules(r"_(inception_stem|inception[ABC]|reduction[AB])(?:_(\d+))?\.(\w+)", _v4_conv,
                   lambda m: _v4_conv(m) + "_bn"),
    *fc_rules(r"out", "final_fc"),
]
register_key_map("InceptionV4Model", static_map(_STATIC_RULES), scheme="static")


@register_model
def InceptionV4(**kwargs: Any) -> InceptionV4Model:
    """Inception-v4 (299x299 eval crop)."""
    return InceptionV4Model(**kwargs)


default_cfgs = [
    zoo_cfg("InceptionV4", **_EVAL),
]
register_pretrained(*default_cfgs)
