"""Inception-v3 (Szegedy et al., 2016) with the names of PaddleClas 2.6's
``legendary_models/inception_v3.py``; release/2.0 files are renamed by :func:`map_20_keys`
(registered as the "2.0" key map of the family).
"""
from __future__ import annotations

from typing import Any, Dict

from .._paddle import import_paddle
from ._layers import ConvBNLayer, PooledBackbone, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, register_static_fold, rename

paddle = import_paddle()
nn = paddle.nn

# PaddleClas evaluates the 299-crop Inception family with a 320 short-side resize (the zoo table
# already says so); kept explicit here because it is the family's defining difference.
_EVAL = dict(input_size=299, resize_short=320)


def _c3(in_ch, out_ch, k, stride=1, padding=0):
    # Inception convs state their padding explicitly (many are 'valid'); default 0 as in PaddleClas.
    return ConvBNLayer(in_ch, out_ch, k, stride=stride, padding=padding, act="relu", style="legendary")


class V3Stem(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv_1a_3x3 = _c3(3, 32, 3, stride=2)
        self.conv_2a_3x3 = _c3(32, 32, 3)
        self.conv_2b_3x3 = _c3(32, 64, 3, padding=1)
        self.max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)
        self.conv_3b_1x1 = _c3(64, 80, 1)
        self.conv_4a_3x3 = _c3(80, 192, 3)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.max_pool(self.conv_2b_3x3(self.conv_2a_3x3(self.conv_1a_3x3(x))))
        return self.max_pool(self.conv_4a_3x3(self.conv_3b_1x1(x)))


def _avg3():
    return nn.AvgPool2D(kernel_size=3, stride=1, padding=1, exclusive=False)


class V3BlockA(nn.Layer):
    def __init__(self, in_ch, pool_features):
        super().__init__()
        self.branch1x1 = _c3(in_ch, 64, 1)
        self.branch5x5_1 = _c3(in_ch, 48, 1)
        self.branch5x5_2 = _c3(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _c3(in_ch, 64, 1)
        self.branch3x3dbl_2 = _c3(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _c3(96, 96, 3, padding=1)
        self.branch_pool = _avg3()
        self.branch_pool_conv = _c3(in_ch, pool_features, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.concat([
            self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool_conv(self.branch_pool(x))], axis=1)


class V3BlockB(nn.Layer):
    def __init__(self, in_ch):
        super().__init__()
        self.branch3x3 = _c3(in_ch, 384, 3, stride=2)
        self.branch3x3dbl_1 = _c3(in_ch, 64, 1)
        self.branch3x3dbl_2 = _c3(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _c3(96, 96, 3, stride=2)
        self.branch_pool = nn.MaxPool2D(kernel_size=3, stride=2)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.concat([self.branch3x3(x),
                              self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                              self.branch_pool(x)], axis=1)


class V3BlockC(nn.Layer):
    def __init__(self, in_ch, c7):
        super().__init__()
        self.branch1x1 = _c3(in_ch, 192, 1)
        self.branch7x7_1 = _c3(in_ch, c7, 1)
        self.branch7x7_2 = _c3(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _c3(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _c3(in_ch, c7, 1)
        self.branch7x7dbl_2 = _c3(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _c3(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _c3(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _c3(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _avg3()
        self.branch_pool_conv = _c3(in_ch, 192, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return paddle.concat([self.branch1x1(x), b7, bd, self.branch_pool_conv(self.branch_pool(x))], axis=1)


class V3BlockD(nn.Layer):
    def __init__(self, in_ch):
        super().__init__()
        self.branch3x3_1 = _c3(in_ch, 192, 1)
        self.branch3x3_2 = _c3(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _c3(in_ch, 192, 1)
        self.branch7x7x3_2 = _c3(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _c3(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _c3(192, 192, 3, stride=2)
        self.branch_pool = nn.MaxPool2D(kernel_size=3, stride=2)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return paddle.concat([self.branch3x3_2(self.branch3x3_1(x)), b7, self.branch_pool(x)], axis=1)


class V3BlockE(nn.Layer):
    def __init__(self, in_ch):
        super().__init__()
        self.branch1x1 = _c3(in_ch, 320, 1)
        self.branch3x3_1 = _c3(in_ch, 384, 1)
        self.branch3x3_2a = _c3(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _c3(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _c3(in_ch, 448, 1)
        self.branch3x3dbl_2 = _c3(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _c3(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _c3(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _avg3()
        self.branch_pool_conv = _c3(in_ch, 192, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b3 = self.branch3x3_1(x)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return paddle.concat([
            self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd),
            self.branch_pool_conv(self.branch_pool(x))], axis=1)


class InceptionV3Model(PooledBackbone):
    classifier_name = "fc"
    key_family = "InceptionV3"
    min_input_size = 75  # 'valid' convs and pools: smaller inputs run out of pixels

    def __init__(self, num_classes=1000, class_num=None, avg_pool_exclusive=False):
        """avg_pool_exclusive: the blocks' 3x3 average pools leave the padding out of the mean, as
        the 2020 static program did (fluid's default); set when Paddle 1.x static weights load."""
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self.inception_stem = V3Stem()
        blocks = [V3BlockA(192, 32), V3BlockA(256, 64), V3BlockA(288, 64), V3BlockB(288)]
        blocks += [V3BlockC(768, c7) for c7 in (128, 160, 160, 192)]
        blocks += [V3BlockD(768), V3BlockE(1280), V3BlockE(2048)]
        self.inception_block_list = nn.LayerList(blocks)
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.head_drop = nn.Dropout(p=0.2, mode="downscale_in_infer")
        self.num_features = 2048
        self.fc = linear(2048, num_classes)
        # Taps whose maps stay within a pixel of input/reduction. The stride-8 stage (35px at 299)
        # is left out: 'valid' convs make it ~2px smaller than 299/8, which the generic
        # features_only contract (floor/ceil +-1) does not allow.
        self.set_avg_pool_exclusive(avg_pool_exclusive)
        self.feature_info = [dict(num_chs=32, reduction=2, module="inception_stem.conv_1a_3x3"),
                             dict(num_chs=80, reduction=4, module="inception_stem.conv_3b_1x1"),
                             dict(num_chs=768, reduction=16, module="inception_block_list.7"),
                             dict(num_chs=2048, reduction=32, module="inception_block_list.10")]

    def set_avg_pool_exclusive(self, exclusive: bool) -> None:
        """Switch the blocks' average pools between PaddleClas 2.x (padding counted) and the 2020
        static program (padding left out)."""
        self.avg_pool_exclusive = bool(exclusive)
        for layer in self.inception_block_list.sublayers():
            if isinstance(layer, nn.AvgPool2D):
                layer.exclusive = self.avg_pool_exclusive

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.inception_stem(x)
        for block in self.inception_block_list:
            x = block(x)
        return x


# release/2.0 sub-layer names of the 11 blocks ("nception_b_1" is PaddleClas's own spelling)
_V3_20_BLOCKS = ["inception_a_1", "inception_a_2", "inception_a_3", "nception_b_1", "inception_c_1",
                 "inception_c_2", "inception_c_3", "inception_c_4", "inception_d_1", "inception_e_1",
                 "inception_e_2"]


def _v3_to_20(key: str) -> str:
    parts = key.split(".")
    if parts[0] == "inception_block_list":
        parts[:2] = [_V3_20_BLOCKS[int(parts[1])]]
    elif parts[0] == "fc":
        parts[0] = "out"
    return ".".join("batch_norm" if p == "bn" else p for p in parts)


def map_20_keys(state_dict: dict) -> dict:
    """Rename a release/2.0 InceptionV3 state dict (``inception_a_1.branch1x1.batch_norm._mean``)
    to the legendary names used here (``inception_block_list.0.branch1x1.bn._mean``)."""
    inv = {n: str(i) for i, n in enumerate(_V3_20_BLOCKS)}
    out = {}
    for k, v in state_dict.items():
        parts = k.split(".")
        if parts[0] in inv:
            parts[:1] = ["inception_block_list", inv[parts[0]]]
        elif parts[0] == "out":
            parts[0] = "fc"
        out[".".join("bn" if p == "batch_norm" else p for p in parts)] = v
    return out


@register_key_map("InceptionV3", scheme="2.0")
def key_map_20(model: "InceptionV3Model") -> Dict[str, str]:
    """{legendary key of ``model``: release/2.0 file key} for the weight loader."""
    return {k: _v3_to_20(k) for k in model.state_dict()}


@register_key_map("InceptionV3", scheme="static")
def key_map_static(model: "InceptionV3Model") -> Dict[str, str]:
    """Paddle 1.x static names (PaddleClas release/static inception_v3.py): stem convs by their own
    names (``conv_1a_3x3``), block convs ``inception_<type>_<branch>_<n>`` (n counts the blocks of a
    type; ``branch_pool_conv`` is ``branch_pool``), BN ``<conv>_bn``, classifier ``fc``."""
    rules = [*conv_bn_rules(r"inception_stem\.(\w+)", r"\1", r"\1_bn", conv_attr="conv", bn_attr="bn"),
             *fc_rules(r"fc", "fc")]
    counts: Dict[str, int] = {}
    for i, block in enumerate(model.inception_block_list):
        kind = type(block).__name__[-1].lower()  # V3BlockA .. V3BlockE
        counts[kind] = counts.get(kind, 0) + 1
        base = lambda m, kind=kind, n=counts[kind]: f"inception_{kind}_{m[1].replace('_conv', '')}_{n}"
        rules += conv_bn_rules(rf"inception_block_list\.{i}\.(\w+)", base, lambda m, b=base: b(m) + "_bn",
                               conv_attr="conv", bn_attr="bn")
    return rename(model.state_dict().keys(), rules)


def _static_numerics(model: "InceptionV3Model") -> Dict[str, Any]:
    model.set_avg_pool_exclusive(True)
    return {"avg_pool_exclusive": True}


register_static_fold("InceptionV3", numerics=_static_numerics)


@register_model
def InceptionV3(**kwargs: Any) -> InceptionV3Model:
    """Inception-v3 (299x299 eval crop)."""
    return InceptionV3Model(**kwargs)


default_cfgs = [
    zoo_cfg("InceptionV3", key_scheme="2.0", **_EVAL),
]
register_pretrained(*default_cfgs)
