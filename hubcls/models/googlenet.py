"""GoogLeNet (Inception-v1, Szegedy et al., 2015), PaddleClas release/2.0 ``googlenet.py`` names.

Convs without BN, two auxiliary heads that only run in training mode; PaddleClas's convs outside the
Inception blocks have no activation, kept as is so its weights give its logits.
"""
from __future__ import annotations

from typing import Any, List, Union

from .._paddle import import_paddle
from ._layers import PooledBackbone, check_data_format, linear, to_channels_first, to_channels_last
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn
F = nn.functional


class ConvLayer(nn.Layer):
    """Bias-free conv with 'same' padding; GoogLeNet's only parametrised unit (``_conv``)."""

    def __init__(self, in_ch, out_ch, k, stride=1, data_format="NCHW"):
        super().__init__()
        self._conv = nn.Conv2D(in_ch, out_ch, k, stride=stride, padding=(k - 1) // 2, bias_attr=False,
                               data_format=data_format)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._conv(x)


class InceptionV1Block(nn.Layer):
    def __init__(self, in_ch, f1, f3r, f3, f5r, f5, proj, data_format="NCHW"):
        super().__init__()
        df = dict(data_format=data_format)
        self._conv1 = ConvLayer(in_ch, f1, 1, **df)
        self._conv3r = ConvLayer(in_ch, f3r, 1, **df)
        self._conv3 = ConvLayer(f3r, f3, 3, **df)
        self._conv5r = ConvLayer(in_ch, f5r, 1, **df)
        self._conv5 = ConvLayer(f5r, f5, 5, **df)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=1, padding=1, **df)
        self._convprj = ConvLayer(in_ch, proj, 1, **df)
        self._axis = 1 if data_format == "NCHW" else 3

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = paddle.concat([self._conv1(x), self._conv3(self._conv3r(x)), self._conv5(self._conv5r(x)),
                           self._convprj(self._pool(x))], axis=self._axis)
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

    def __init__(self, num_classes=1000, aux_logits=False, class_num=None, data_format="NCHW"):
        """data_format: PaddleClas's argument; 'NHWC' runs the trunk channels-last (the model still
        takes NCHW images and gives the same logits; the aux heads see NCHW maps)."""
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self.data_format = df = check_data_format(data_format)
        self._conv = ConvLayer(3, 64, 7, 2, data_format=df)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, data_format=df)
        self._conv_1 = ConvLayer(64, 64, 1, data_format=df)
        self._conv_2 = ConvLayer(64, 192, 3, data_format=df)
        for name, *cfg in _V1_BLOCKS:
            setattr(self, f"_ince{name}", InceptionV1Block(*cfg, data_format=df))
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

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        nhwc = self.data_format == "NHWC"
        if nhwc:
            x = to_channels_last(x)
        x = self._pool(self._conv(x))
        x = self._pool(self._conv_2(self._conv_1(x)))
        x = self._pool(self._ince3b(self._ince3a(x)))
        ince4a = self._ince4a(x)
        ince4d = self._ince4d(self._ince4c(self._ince4b(ince4a)))
        x = self._pool(self._ince4e(ince4d))
        self._taps = None
        if self.training and self.aux_logits:
            self._taps = (to_channels_first(ince4a), to_channels_first(ince4d)) if nhwc else (ince4a, ince4d)
        x = self._ince5b(self._ince5a(x))
        return to_channels_first(x) if nhwc else x

    def forward(self, x: paddle.Tensor) -> Union[paddle.Tensor, List[paddle.Tensor]]:
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

    def set_aux_logits(self, enabled: bool) -> None:
        """Turn the auxiliary heads on (training returns 3 outputs) or off (frozen, unused)."""
        self.aux_logits = bool(enabled)
        for p in self._aux_params():
            p.stop_gradient = not self.aux_logits

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        for i in (1, 2):  # the aux classifiers follow the main one
            setattr(self, f"_out{i}", linear(1024, num_classes) if num_classes else nn.Identity())
        self.set_aux_logits(self.aux_logits)


# Paddle 1.x static names (PaddleClas release/static googlenet.py); its convs have no BN.
_INCEPTION_CONVS = {"conv1": "1x1", "conv3r": "3x3_reduce", "conv3": "3x3", "conv5r": "5x5_reduce",
                    "conv5": "5x5", "convprj": "3x3_proj"}
_STATIC_RULES = [
    (r"_conv\._conv\.weight", "conv1_weights"),
    (r"_conv_1\._conv\.weight", "conv2_1x1_weights"),
    (r"_conv_2\._conv\.weight", "conv2_3x3_weights"),
    (r"_(ince\w+)\._(conv\w+)\._conv\.weight", lambda m: f"inception_{m[1]}_{_INCEPTION_CONVS[m[2]]}_weights"),
    (r"_(conv_o[12])\._conv\.weight", r"\1_weights"),
    *fc_rules(r"_fc_out", "out"),
    *fc_rules(r"_(fc_o[12]|out[12])", r"\1"),
]
register_key_map("GoogLeNetModel", static_map(_STATIC_RULES), scheme="static")


@register_model
def GoogLeNet(**kwargs: Any) -> GoogLeNetModel:
    """GoogLeNet with PaddleClas's two auxiliary heads (224x224 input)."""
    return GoogLeNetModel(**kwargs)


default_cfgs = [
    zoo_cfg("GoogLeNet"),
]
register_pretrained(*default_cfgs)
