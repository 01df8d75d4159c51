"""Xception-41/65/71 (Chollet, 2017) and the DeepLabv3+ Xception-41/65 variants, PaddleClas layouts.

* ``Xception41/65/71``: release/2.0 ``xception.py`` names. Its separable conv runs the 1x1
  pointwise conv *before* the 3x3 depthwise one (PaddleClas's order, kept for its weights).
* ``Xception41_deeplab/65_deeplab``: release/2.0 ``xception_deeplab.py``, the DeepLab backbone:
  every block is three separable convs (depthwise first, BN eps 1e-3 as in the TF checkpoints),
  strided in the last one; the exit flow's second block is dilated (rate 2) with ReLU inside the
  separable convs. Sub-layer names contain '/' (``xception_65/entry_flow/block1``) because
  PaddleClas registers them that way; they are kept so its weight files load.
"""
from __future__ import annotations

from typing import Any

from .._paddle import import_paddle
from ._layers import ConvBN, PooledBackbone, get_act, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn
F = nn.functional

_EVAL = dict(input_size=299, resize_short=320)


# --- Xception (release/2.0 xception.py) --------------------------------------------------------

class SeparableConv(nn.Layer):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self._pointwise_conv = ConvBN(in_ch, out_ch, 1)
        self._depthwise_conv = ConvBN(out_ch, out_ch, 3, stride=stride, groups=out_ch)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._depthwise_conv(self._pointwise_conv(x))


class EntryBlock(nn.Layer):
    def __init__(self, in_ch, out_ch, stride=2, relu_first=False):
        super().__init__()
        self.relu_first = relu_first
        self._short = nn.Conv2D(in_ch, out_ch, 1, stride=stride, bias_attr=False)
        self._conv1 = SeparableConv(in_ch, out_ch)
        self._conv2 = SeparableConv(out_ch, out_ch)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=stride, padding=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = F.relu(x) if self.relu_first else x
        y = self._pool(self._conv2(F.relu(self._conv1(y))))
        return self._short(x) + y


class EntryFlow(nn.Layer):
    # (out channels, stride) of the bottleneck blocks for 3- and 5-block entry flows
    SPECS = {3: [(128, 2), (256, 2), (728, 2)],
             5: [(128, 2), (256, 1), (256, 2), (728, 1), (728, 2)]}

    def __init__(self, block_num=3):
        super().__init__()
        if block_num not in self.SPECS:
            raise ValueError(f"entry flow block_num must be 3 or 5, got {block_num}")
        self._conv1 = ConvBN(3, 32, 3, stride=2, act="relu")
        self._conv2 = ConvBN(32, 64, 3, act="relu")
        self.block_names = []
        in_ch = 64
        for i, (out_ch, stride) in enumerate(self.SPECS[block_num]):
            setattr(self, f"_conv_{i}", EntryBlock(in_ch, out_ch, stride, relu_first=i > 0))
            self.block_names.append(f"_conv_{i}")
            in_ch = out_ch

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._conv2(self._conv1(x))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return x


class MiddleBlock(nn.Layer):
    def __init__(self, ch=728):
        super().__init__()
        self._conv_0 = SeparableConv(ch, ch)
        self._conv_1 = SeparableConv(ch, ch)
        self._conv_2 = SeparableConv(ch, ch)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self._conv_0(F.relu(x))
        y = self._conv_1(F.relu(y))
        y = self._conv_2(F.relu(y))
        return x + y


class MiddleFlow(nn.Layer):
    def __init__(self, block_num=8):
        super().__init__()
        self.block_num = block_num
        for i in range(block_num):
            setattr(self, f"_conv_{i}", MiddleBlock())

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for i in range(self.block_num):
            x = getattr(self, f"_conv_{i}")(x)
        return x


class ExitBlock(nn.Layer):
    def __init__(self, in_ch, mid_ch, out_ch):
        super().__init__()
        self._short = nn.Conv2D(in_ch, out_ch, 1, stride=2, bias_attr=False)
        self._conv_1 = SeparableConv(in_ch, mid_ch)
        self._conv_2 = SeparableConv(mid_ch, out_ch)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self._pool(self._conv_2(F.relu(self._conv_1(F.relu(x)))))
        return self._short(x) + y


class ExitFlow(nn.Layer):
    """Exit flow up to the final ReLU; the classifier ``_out`` lives here as in PaddleClas."""

    def __init__(self, num_classes):
        super().__init__()
        self._conv_0 = ExitBlock(728, 728, 1024)
        self._conv_1 = SeparableConv(1024, 1536)
        self._conv_2 = SeparableConv(1536, 2048)
        self._out = linear(2048, num_classes)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = F.relu(self._conv_1(self._conv_0(x)))
        return F.relu(self._conv_2(x))


class Xception(PooledBackbone):
    classifier_name = "_exit_flow._out"

    def __init__(self, entry_flow_block_num=3, middle_flow_block_num=8, num_classes=1000, class_num=None):
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self._entry_flow = EntryFlow(entry_flow_block_num)
        self._middle_flow = MiddleFlow(middle_flow_block_num)
        self._exit_flow = ExitFlow(num_classes)
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_features = 2048
        info = [dict(num_chs=64, reduction=2, module="_entry_flow._conv2")]
        stride = 2
        for i, (ch, s) in enumerate(EntryFlow.SPECS[entry_flow_block_num]):
            stride *= s
            nxt = EntryFlow.SPECS[entry_flow_block_num][i + 1] if i + 1 < entry_flow_block_num else None
            # a stage ends where the next block strides (the entry flow's last stage is the middle flow)
            if nxt is not None and nxt[1] == 2:
                info.append(dict(num_chs=ch, reduction=stride, module=f"_entry_flow._conv_{i}"))
        info.append(dict(num_chs=728, reduction=16, module="_middle_flow"))
        info.append(dict(num_chs=2048, reduction=32, module="_exit_flow"))
        self.feature_info = info

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._exit_flow(self._middle_flow(self._entry_flow(x)))


# --- Xception DeepLab (release/2.0 xception_deeplab.py) ----------------------------------------

class ConvBNTF(nn.Layer):
    """Conv (no bias) -> BN with TF's eps 1e-3 (the deeplab weights come from TF); keys _conv/_bn."""

    def __init__(self, in_ch, out_ch, k, stride=1, padding=0, act=None):
        super().__init__()
        self._conv = nn.Conv2D(in_ch, out_ch, k, stride=stride, padding=padding, bias_attr=False)
        self._bn = nn.BatchNorm2D(out_ch, momentum=0.99, epsilon=1e-3)
        self.act = get_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._bn(self._conv(x))
        return self.act(x) if self.act is not None else x


class SeparateConvTF(nn.Layer):
    """Depthwise kxk (dilated) -> BN(+act) -> pointwise 1x1 -> BN(+act)."""

    def __init__(self, in_ch, out_ch, stride, k=3, dilation=1, act=None):
        super().__init__()
        self._conv1 = nn.Conv2D(in_ch, in_ch, k, stride=stride, groups=in_ch, padding=k // 2 * dilation,
                                dilation=dilation, bias_attr=False)
        self._bn1 = nn.BatchNorm2D(in_ch, momentum=0.99, epsilon=1e-3)
        self._conv2 = nn.Conv2D(in_ch, out_ch, 1, bias_attr=False)
        self._bn2 = nn.BatchNorm2D(out_ch, momentum=0.99, epsilon=1e-3)
        self.act = get_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._bn1(self._conv1(x))
        if self.act is not None:
            x = self.act(x)
        x = self._bn2(self._conv2(x))
        return self.act(x) if self.act is not None else x


class XceptionBlockTF(nn.Layer):
    def __init__(self, in_ch, out_chs, strides, dilation=1, skip_conv=True, has_skip=True, act_inside=False):
        super().__init__()
        out_chs = [out_chs] * 3 if isinstance(out_chs, int) else list(out_chs)
        act = "relu" if act_inside else None
        self.has_skip, self.skip_conv, self.act_inside = has_skip, skip_conv, act_inside
        chans = [in_ch] + out_chs
        for i in range(3):
            setattr(self, f"_conv{i + 1}", SeparateConvTF(chans[i], chans[i + 1], strides[i],
                                                         dilation=dilation, act=act))
        if has_skip and skip_conv:
            self._short = ConvBNTF(in_ch, out_chs[-1], 1, stride=strides[-1])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.act_inside:
            y = self._conv3(self._conv2(self._conv1(x)))
        else:
            y = self._conv1(F.relu(x))
            y = self._conv2(F.relu(y))
            y = self._conv3(F.relu(y))
        if not self.has_skip:
            return y
        return y + (self._short(x) if self.skip_conv else x)


class XceptionDeeplab(PooledBackbone):
    classifier_name = "_fc"
    MIDDLE = {"xception_41": 8, "xception_65": 16}

    def __init__(self, backbone="xception_65", num_classes=1000, class_num=None):
        super().__init__()
        if backbone not in self.MIDDLE:
            raise ValueError(f"backbone must be one of {sorted(self.MIDDLE)}, got {backbone!r}")
        num_classes = class_num if class_num is not None else num_classes
        self.num_classes = num_classes
        self.backbone = backbone
        self._conv1 = ConvBNTF(3, 32, 3, stride=2, padding=1, act="relu")
        self._conv2 = ConvBNTF(32, 64, 3, padding=1, act="relu")
        # PaddleClas strides every entry block by 2 (output stride 16 after the entry flow)
        self.entry_flow, self.middle_flow = [], []
        in_ch = 64
        for i, ch in enumerate((128, 256, 728)):
            self.entry_flow.append(self.add_sublayer(
                f"{backbone}/entry_flow/block{i + 1}", XceptionBlockTF(in_ch, ch, [1, 1, 2])))
            in_ch = ch
        n_mid = self.MIDDLE[backbone]
        for i in range(n_mid):
            self.middle_flow.append(self.add_sublayer(
                f"{backbone}/middle_flow/block{i + 1}", XceptionBlockTF(728, 728, [1, 1, 1], skip_conv=False)))
        self._exit_flow_1 = XceptionBlockTF(728, [728, 1024, 1024], [1, 1, 2])
        self._exit_flow_2 = XceptionBlockTF(1024, [1536, 1536, 2048], [1, 1, 1], dilation=2,
                                            has_skip=False, act_inside=True)
        self.head_drop = nn.Dropout(p=0.5, mode="downscale_in_infer")
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_features = 2048
        self._fc = linear(2048, num_classes, stdv=None)
        self.feature_info = [dict(num_chs=64, reduction=2, module="_conv2"),
                             dict(num_chs=128, reduction=4, module=f"{backbone}/entry_flow/block1"),
                             dict(num_chs=256, reduction=8, module=f"{backbone}/entry_flow/block2"),
                             dict(num_chs=728, reduction=16, module=f"{backbone}/middle_flow/block{n_mid}"),
                             dict(num_chs=2048, reduction=32, module="_exit_flow_2")]

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._conv2(self._conv1(x))
        for block in self.entry_flow + self.middle_flow:
            x = block(x)
        return self._exit_flow_2(self._exit_flow_1(x))

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        # PaddleClas drops out on the feature map, before pooling
        x = paddle.flatten(self.global_pool(self.head_drop(x)), start_axis=1)
        return x if pre_logits else self._fc(x)


# --- Paddle 1.x static names (PaddleClas release/static xception.py, xception_deeplab.py) ---------
def _bn_prefixed(base):
    return lambda m: "bn_" + (base(m) if callable(base) else m.expand(base))


def _sep_rules(unit, base):
    """A SeparableConv at ``unit``: ``<base>_sep`` (pointwise) and ``<base>_dw``, BN ``bn_<conv>``."""
    rules = []
    for attr, kind in (("_pointwise_conv", "sep"), ("_depthwise_conv", "dw")):
        conv = (lambda m, kind=kind: f"{base(m)}_{kind}") if callable(base) else f"{base}_{kind}"
        rules += conv_bn_rules(rf"{unit}\.{attr}", conv, _bn_prefixed(conv))
    return rules


_BRANCH = {"_conv1": "2a", "_conv2": "2b", "_conv_0": "2a", "_conv_1": "2b", "_conv_2": "2c"}
_XCEPTION_RULES = [
    *conv_bn_rules(r"_entry_flow\._(conv[12])", r"entry_flow_\1", r"bn_entry_flow_\1"),
    (r"_(entry|middle)_flow\._conv_(\d+)\._short\.weight", r"\1_flow_\2_branch1_weights"),
    *_sep_rules(r"_(entry|middle)_flow\._conv_(\d+)\.(_conv_?\d)",
                lambda m: f"{m[1]}_flow_{m[2]}_branch{_BRANCH[m[3]]}_weights"),
    (r"_exit_flow\._conv_0\._short\.weight", "exit_flow_1_branch1_weights"),
    *_sep_rules(r"_exit_flow\._conv_0\._conv_([12])", lambda m: f"exit_flow_1_branch2{'ab'[int(m[1]) - 1]}_weights"),
    *_sep_rules(r"_exit_flow\._conv_([12])", lambda m: f"exit_flow_{int(m[1]) + 1}"),
    *fc_rules(r"_exit_flow\._out", "fc"),
]
register_key_map("Xception", static_map(_XCEPTION_RULES), scheme="static")

# DeepLab variant: TensorFlow-style names (``xception_65/entry_flow/block1/separable_conv1/depthwise/
# weights``, BN ``.../BatchNorm/gamma|beta|moving_mean|moving_variance``); a '/' is a sub-folder in a
# per-parameter folder.
_TF_BN = ("/BatchNorm/gamma", "/BatchNorm/beta", "/BatchNorm/moving_mean", "/BatchNorm/moving_variance")


@register_key_map("XceptionDeeplab", scheme="static")
def _xception_deeplab_static(model: "XceptionDeeplab") -> dict:
    net = model.backbone
    tf = dict(conv_suffix="/weights", bn_suffixes=_TF_BN)
    block = rf"(?:({net}/\w+_flow/block\d+)|_exit_flow_(\d))"

    def where(m):
        return m[1] or f"{net}/exit_flow/block{m[2]}"

    rules = [
        *conv_bn_rules(r"_(conv[12])", rf"{net}/entry_flow/\1", rf"{net}/entry_flow/\1", bn_attr="_bn", **tf),
        *conv_bn_rules(rf"{block}\._short", lambda m: f"{where(m)}/shortcut", lambda m: f"{where(m)}/shortcut",
                       bn_attr="_bn", **tf),
    ]
    for i, part in ((1, "depthwise"), (2, "pointwise")):
        unit = lambda m, part=part: f"{where(m)}/separable_conv{m[3]}/{part}"  # noqa: E731
        rules += conv_bn_rules(rf"{block}\._conv(\d)", unit, unit, conv_attr=f"_conv{i}", bn_attr=f"_bn{i}", **tf)
    rules += fc_rules(r"_fc", "fc", bias="_bias")
    return static_map(rules)(model)


# --- registry -----------------------------------------------------------------------------------


@register_model
def Xception41(**kwargs: Any) -> Xception:
    """Xception-41 (3 entry blocks, 8 middle blocks)."""
    return Xception(3, 8, **kwargs)


@register_model
def Xception65(**kwargs: Any) -> Xception:
    """Xception-65 (3 entry blocks, 16 middle blocks)."""
    return Xception(3, 16, **kwargs)


@register_model
def Xception71(**kwargs: Any) -> Xception:
    """Xception-71 (5 entry blocks, 16 middle blocks)."""
    return Xception(5, 16, **kwargs)


@register_model
def Xception41_deeplab(**kwargs: Any) -> XceptionDeeplab:
    """Xception-41, DeepLab variant."""
    return XceptionDeeplab("xception_41", **kwargs)


@register_model
def Xception65_deeplab(**kwargs: Any) -> XceptionDeeplab:
    """Xception-65, DeepLab variant."""
    return XceptionDeeplab("xception_65", **kwargs)


default_cfgs = [
    zoo_cfg("Xception41", **_EVAL),
    zoo_cfg("Xception65", **_EVAL),
    zoo_cfg("Xception71", **_EVAL),
    zoo_cfg("Xception41_deeplab", **_EVAL),
    zoo_cfg("Xception65_deeplab", **_EVAL),
]
register_pretrained(*default_cfgs)
