"""GoogLeNet (Inception-v1), Inception-v3 and Inception-v4, PaddleClas layouts.

* GoogLeNet: release/2.0 ``googlenet.py`` names (convs without BN, two auxiliary heads that only
  run in training mode; PaddleClas's convs outside the Inception blocks have no activation, kept
  as is so its weights give its logits).
* InceptionV3: names of 2.6's ``legendary_models/inception_v3.py``; release/2.0 files are renamed by
  :func:`map_20_keys_v3` (registered as the "2.0" key map of the family).
* InceptionV4: release/2.0 ``inception_v4.py`` names.
"""
from __future__ import annotations

from .._paddle import import_paddle
from ._layers import ConvBNLayer
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from .densenet import PooledBackbone, linear

paddle = import_paddle()
nn = paddle.nn
F = nn.functional

# PaddleClas evaluates the 299-crop Inception family with a 320 short-side resize (the zoo table
# already says so); kept explicit here because it is the family's defining difference.
_EVAL = dict(input_size=299, resize_short=320)


def _cbr(in_ch, out_ch, k, stride=1, padding=0, style="zoo", act="relu"):
    # Inception convs state their padding explicitly (many are 'valid'); default 0 as in PaddleClas.
    return ConvBNLayer(in_ch, out_ch, k, stride=stride, padding=padding, act=act, style=style)


# --- GoogLeNet --------------------------------------------------------------------------------

class ConvLayer(nn.Layer):
    """Bias-free conv with 'same' padding; GoogLeNet's only parametrised unit (``_conv``)."""

    def __init__(self, in_ch, out_ch, k, stride=1):
        super().__init__()
        self._conv = nn.Conv2D(in_ch, out_ch, k, stride=stride, padding=(k - 1) // 2, bias_attr=False)

    def forward(self, x):
        return self._conv(x)


class InceptionV1Block(nn.Layer):
    def __init__(self, in_ch, f1, f3r, f3, f5r, f5, proj):
        super().__init__()
        self._conv1 = ConvLayer(in_ch, f1, 1)
        self._conv3r = ConvLayer(in_ch, f3r, 1)
        self._conv3 = ConvLayer(f3r, f3, 3)
        self._conv5r = ConvLayer(in_ch, f5r, 1)
        self._conv5 = ConvLayer(f5r, f5, 5)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=1, padding=1)
        self._convprj = ConvLayer(in_ch, proj, 1)

    def forward(self, x):
        y = paddle.concat([self._conv1(x), self._conv3(self._conv3r(x)), self._conv5(self._conv5r(x)),
                           self._convprj(self._pool(x))], axis=1)
        return F.relu(y)


_V1_BLOCKS = [  # name, in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj
    ("3a", 192, 64, 96, 128, 16, 32, 32), ("3b", 256, 128, 128, 192, 32, 96, 64),
    ("4a", 480, 192, 96, 208, 16, 48, 64), ("4b", 512, 160, 112, 224, 24, 64, 64),
    ("4c", 512, 128, 128, 256, 24, 64, 64), ("4d", 512, 112, 144, 288, 32, 64, 64),
    ("4e", 528, 256, 160, 320, 32, 128, 128), ("5a", 832, 256, 160, 320, 32, 128, 128),
    ("5b", 832, 384, 192, 384, 48, 128, 128),
]


class GoogLeNetModel(PooledBackbone):
    """GoogLeNet with PaddleClas's two auxiliary heads.

    The aux heads always exist (PaddleClas's weight files and parameter count include them), but
    they only run when ``aux_logits=True`` *and* the model is in training mode: forward then returns
    ``[logits, aux1, aux2]`` for PaddleClas's GoogLeNetLoss (logits + 0.3 * each aux). With the
    default ``aux_logits=False`` the model is a plain classifier and the aux parameters are frozen
    (``stop_gradient``) since nothing uses them. The aux heads flatten a 3x3 map: 224x224 input only.
    """

    classifier_name = "_fc_out"
    min_input_size = 224  # the aux heads (and PaddleClas's model, which always runs them) need 224

    def __init__(self, num_classes=1000, aux_logits=False, class_num=None):
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self._conv = ConvLayer(3, 64, 7, 2)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2)
        self._conv_1 = ConvLayer(64, 64, 1)
        self._conv_2 = ConvLayer(64, 192, 3)
        for name, *cfg in _V1_BLOCKS:
            setattr(self, f"_ince{name}", InceptionV1Block(*cfg))
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.head_drop = nn.Dropout(p=0.4, mode="downscale_in_infer")
        self.num_features = 1024
        self._fc_out = linear(1024, num_classes, stdv=(3.0 / 1024) ** 0.5)
        for i, in_ch in ((1, 512), (2, 528)):
            setattr(self, f"_pool_o{i}", nn.AvgPool2D(kernel_size=5, stride=3))
            setattr(self, f"_conv_o{i}", ConvLayer(in_ch, 128, 1))
            setattr(self, f"_fc_o{i}", linear(1152, 1024, stdv=(3.0 / 2048) ** 0.5))
            setattr(self, f"_drop_o{i}", nn.Dropout(p=0.7, mode="downscale_in_infer"))
            setattr(self, f"_out{i}", linear(1024, num_classes, stdv=(3.0 / 1024) ** 0.5))
        self.set_aux_logits(aux_logits)
        self.feature_info = [dict(num_chs=64, reduction=2, module="_conv"),
                             dict(num_chs=192, reduction=4, module="_conv_2"),
                             dict(num_chs=480, reduction=8, module="_ince3b"),
                             dict(num_chs=832, reduction=16, module="_ince4e"),
                             dict(num_chs=1024, reduction=32, module="_ince5b")]
        self._taps = None

    def forward_features(self, x):
        x = self._pool(self._conv(x))
        x = self._pool(self._conv_2(self._conv_1(x)))
        x = self._pool(self._ince3b(self._ince3a(x)))
        ince4a = self._ince4a(x)
        ince4d = self._ince4d(self._ince4c(self._ince4b(ince4a)))
        x = self._pool(self._ince4e(ince4d))
        self._taps = (ince4a, ince4d) if (self.training and self.aux_logits) else None
        return self._ince5b(self._ince5a(x))

    def forward(self, x):
        out = self.forward_head(self.forward_features(x))
        if self._taps is None:
            return out
        ince4a, ince4d = self._taps
        self._taps = None
        a1 = paddle.flatten(self._conv_o1(self._pool_o1(ince4a)), start_axis=1)
        a1 = self._out1(self._drop_o1(F.relu(self._fc_o1(a1))))
        # PaddleClas's second aux head has no ReLU after its hidden fc; kept for weight parity
        a2 = paddle.flatten(self._conv_o2(self._pool_o2(ince4d)), start_axis=1)
        a2 = self._out2(self._drop_o2(self._fc_o2(a2)))
        return [out, a1, a2]

    def _aux_params(self):
        for i in (1, 2):
            for part in ("_conv_o", "_fc_o", "_out"):
                yield from getattr(self, f"{part}{i}").parameters()

    def set_aux_logits(self, enabled: bool):
        """Turn the auxiliary heads on (training returns 3 outputs) or off (frozen, unused)."""
        self.aux_logits = bool(enabled)
        for p in self._aux_params():
            p.stop_gradient = not self.aux_logits

    def reset_classifier(self, num_classes: int):
        super().reset_classifier(num_classes)
        for i in (1, 2):  # the aux classifiers follow the main one
            setattr(self, f"_out{i}", linear(1024, num_classes) if num_classes else nn.Identity())
        self.set_aux_logits(self.aux_logits)


# --- Inception-v3 (legendary names) ------------------------------------------------------------

def _c3(in_ch, out_ch, k, stride=1, padding=0):
    return _cbr(in_ch, out_ch, k, stride, padding, style="legendary")


class V3Stem(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv_1a_3x3 = _c3(3, 32, 3, stride=2)
        self.conv_2a_3x3 = _c3(32, 32, 3)
        self.conv_2b_3x3 = _c3(32, 64, 3, padding=1)
        self.max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)
        self.conv_3b_1x1 = _c3(64, 80, 1)
        self.conv_4a_3x3 = _c3(80, 192, 3)

    def forward(self, x):
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

    def forward(self, x):
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

    def forward(self, x):
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

    def forward(self, x):
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

    def forward(self, x):
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

    def forward(self, x):
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

    def __init__(self, num_classes=1000, class_num=None):
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
        self.feature_info = [dict(num_chs=32, reduction=2, module="inception_stem.conv_1a_3x3"),
                             dict(num_chs=80, reduction=4, module="inception_stem.conv_3b_1x1"),
                             dict(num_chs=768, reduction=16, module="inception_block_list.7"),
                             dict(num_chs=2048, reduction=32, module="inception_block_list.10")]

    def forward_features(self, x):
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


def map_20_keys_v3(state_dict: dict) -> dict:
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
def key_map_20_v3(model) -> dict:
    return {k: _v3_to_20(k) for k in model.state_dict()}


# --- Inception-v4 (release/2.0 names) ----------------------------------------------------------

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

    def forward(self, x):
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

    def forward(self, x):
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

    def forward(self, x):
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

    def forward(self, x):
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

    def forward(self, x):
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

    def forward(self, x):
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

    def forward_features(self, x):
        for name in self._order:
            x = getattr(self, name)(x)
        return x


# --- registry -----------------------------------------------------------------------------------

@register_model
def GoogLeNet(**kwargs):
    return GoogLeNetModel(**kwargs)


@register_model
def InceptionV3(**kwargs):
    return InceptionV3Model(**kwargs)


@register_model
def InceptionV4(**kwargs):
    return InceptionV4Model(**kwargs)


register_pretrained(zoo_cfg("GoogLeNet"))
register_pretrained(zoo_cfg("InceptionV3", key_scheme="2.0", **_EVAL))
register_pretrained(zoo_cfg("InceptionV4", **_EVAL))
