"""DenseNet-121/161/169/201/264 (Huang et al., 2017), PaddleClas release/2.0 layout.

Parameter names follow PaddleClas's ``model_zoo/densenet.py`` so its ``DenseNet*_pretrained.pdparams``
load unchanged. This file also holds the two tiny conv building blocks the 2.0-scheme families of
this zoo share (``ConvBN`` = conv -> BN(+act), ``BNActConv`` = BN(+act) -> conv); both keep the
2.0 attribute names ``_conv`` / ``_batch_norm``.
"""
from __future__ import annotations

import math

from .._paddle import import_paddle
from ._features import Backbone
from ._layers import ConvBNLayer, get_act
from ._registry import register_zoo_member

paddle = import_paddle()
nn = paddle.nn
F = nn.functional


class BNActConv(nn.Layer):
    """Pre-activation unit: BatchNorm (+act) -> Conv2D (no bias), 2.0 names ``_batch_norm``/``_conv``."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, groups=1, act="relu"):
        super().__init__()
        self._batch_norm = nn.BatchNorm2D(in_ch)
        self.act = get_act(act)
        self._conv = nn.Conv2D(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                               groups=groups, bias_attr=False)

    def forward(self, x):
        x = self._batch_norm(x)
        if self.act is not None:
            x = self.act(x)
        return self._conv(x)


def ConvBN(in_ch, out_ch, kernel_size, stride=1, padding=None, groups=1, dilation=1, act=None):
    """2.0-scheme Conv2D (no bias) -> BatchNorm -> act (``_conv``/``_batch_norm``)."""
    return ConvBNLayer(in_ch, out_ch, kernel_size, stride=stride, groups=groups, act=act,
                       style="zoo", padding=padding, dilation=dilation)


class PooledBackbone(Backbone):
    """Backbone whose head is global average pool -> flatten -> (dropout) -> Linear at
    ``self.<classifier_name>``. Families set ``global_pool`` (and ``head_drop`` if any)."""

    def forward_head(self, x, pre_logits: bool = False):
        x = paddle.flatten(self.global_pool(x), start_axis=1)
        # sub-layers live in _sub_layers (a class attribute default would shadow them)
        drop = self._sub_layers.get("head_drop")
        if drop is not None:
            x = drop(x)
        return x if pre_logits else self.get_classifier()(x)


def linear(in_features, out_features, stdv=None):
    """Linear with PaddleClas's uniform(-stdv, stdv) init (stdv defaults to 1/sqrt(in))."""
    if not out_features:
        return nn.Identity()
    stdv = 1.0 / math.sqrt(in_features) if stdv is None else stdv
    return nn.Linear(in_features, out_features,
                     weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-stdv, stdv)))


# ---------------------------------------------------------------------------------------------


class DenseLayer(nn.Layer):
    def __init__(self, in_ch, growth_rate, bn_size, dropout):
        super().__init__()
        self.bn_ac_func1 = BNActConv(in_ch, bn_size * growth_rate, 1)
        self.bn_ac_func2 = BNActConv(bn_size * growth_rate, growth_rate, 3, padding=1)
        self.dropout_func = nn.Dropout(p=dropout, mode="downscale_in_infer") if dropout else None

    def forward(self, x):
        y = self.bn_ac_func2(self.bn_ac_func1(x))
        if self.dropout_func is not None:
            y = self.dropout_func(y)
        return paddle.concat([x, y], axis=1)


class DenseBlock(nn.Layer):
    def __init__(self, in_ch, num_layers, bn_size, growth_rate, dropout, name):
        super().__init__()
        self.layers_ = []
        for i in range(num_layers):
            # sub-layer names "conv2_1", "conv2_2", ... as in PaddleClas
            self.layers_.append(self.add_sublayer(
                f"{name}_{i + 1}", DenseLayer(in_ch + i * growth_rate, growth_rate, bn_size, dropout)))

    def forward(self, x):
        for layer in self.layers_:
            x = layer(x)
        return x


class Transition(nn.Layer):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv_ac_func = BNActConv(in_ch, out_ch, 1)
        self.pool2d_avg = nn.AvgPool2D(kernel_size=2, stride=2, padding=0)

    def forward(self, x):
        return self.pool2d_avg(self.conv_ac_func(x))


DENSENET_SPEC = {  # layers: (stem channels, growth rate, layers per block)
    121: (64, 32, (6, 12, 24, 16)),
    161: (96, 48, (6, 12, 36, 24)),
    169: (64, 32, (6, 12, 32, 32)),
    201: (64, 32, (6, 12, 48, 32)),
    264: (64, 32, (6, 12, 64, 48)),
}


class DenseNet(PooledBackbone):
    classifier_name = "out"

    def __init__(self, layers=121, bn_size=4, dropout=0.0, num_classes=1000, class_num=None):
        super().__init__()
        if layers not in DENSENET_SPEC:
            raise ValueError(f"DenseNet layers must be one of {sorted(DENSENET_SPEC)}, got {layers}")
        num_classes = class_num if class_num is not None else num_classes
        init_ch, growth, blocks = DENSENET_SPEC[layers]
        self.conv1_func = ConvBN(3, init_ch, 7, stride=2, padding=3, act="relu")
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.feature_info = [dict(num_chs=init_ch, reduction=2, module="conv1_func")]
        self.blocks_, self.transitions_ = [], []
        ch = init_ch
        for i, n in enumerate(blocks):
            self.blocks_.append(self.add_sublayer(
                f"db_conv_{i + 2}", DenseBlock(ch, n, bn_size, growth, dropout, name=f"conv{i + 2}")))
            ch += n * growth
            if i != len(blocks) - 1:
                # the pre-transition map is the stage output (stride 4, 8, 16)
                self.feature_info.append(dict(num_chs=ch, reduction=4 * 2 ** i, module=f"db_conv_{i + 2}"))
                self.transitions_.append(self.add_sublayer(f"tr_conv{i + 2}_blk", Transition(ch, ch // 2)))
                ch //= 2
        self.batch_norm = nn.BatchNorm2D(ch)
        self.feature_info.append(dict(num_chs=ch, reduction=32, module="final_act"))
        self.final_act = nn.ReLU()
        self.num_features = ch
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_classes = num_classes
        self.out = linear(ch, num_classes)

    def forward_features(self, x):
        x = self.pool2d_max(self.conv1_func(x))
        for i, block in enumerate(self.blocks_):
            x = block(x)
            if i < len(self.transitions_):
                x = self.transitions_[i](x)
        return self.final_act(self.batch_norm(x))


DenseNet121 = register_zoo_member("DenseNet121", DenseNet, layers=121)
DenseNet161 = register_zoo_member("DenseNet161", DenseNet, layers=161)
DenseNet169 = register_zoo_member("DenseNet169", DenseNet, layers=169)
DenseNet201 = register_zoo_member("DenseNet201", DenseNet, layers=201)
DenseNet264 = register_zoo_member("DenseNet264", DenseNet, layers=264)
