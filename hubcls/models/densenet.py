"""DenseNet-121/161/169/201/264 (Huang et al., 2017), PaddleClas release/2.0 layout.

Parameter names follow PaddleClas's ``model_zoo/densenet.py`` so its ``DenseNet*_pretrained.pdparams``
load unchanged.
"""
from __future__ import annotations

from typing import Any

from .._paddle import import_paddle
from ._layers import BNActConv, ConvBN, PooledBackbone, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import bn_rules, conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn
F = nn.functional


class DenseLayer(nn.Layer):
    def __init__(self, in_ch, growth_rate, bn_size, dropout):
        super().__init__()
        self.bn_ac_func1 = BNActConv(in_ch, bn_size * growth_rate, 1)
        self.bn_ac_func2 = BNActConv(bn_size * growth_rate, growth_rate, 3, padding=1)
        self.dropout_func = nn.Dropout(p=dropout, mode="downscale_in_infer") if dropout else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
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

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for layer in self.layers_:
            x = layer(x)
        return x


class Transition(nn.Layer):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv_ac_func = BNActConv(in_ch, out_ch, 1)
        self.pool2d_avg = nn.AvgPool2D(kernel_size=2, stride=2, padding=0)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
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

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.pool2d_max(self.conv1_func(x))
        for i, block in enumerate(self.blocks_):
            x = block(x)
            if i < len(self.transitions_):
                x = self.transitions_[i](x)
        return self.final_act(self.batch_norm(x))


# Paddle 1.x static names (PaddleClas release/static densenet.py): ``conv1``, dense layers
# ``conv<b>_<i>_x1`` / ``_x2``, transitions ``conv<b>_blk``, the final BN ``conv5_blk_bn``, ``fc``.
_STATIC_RULES = [
    *conv_bn_rules(r"conv1_func", "conv1", "conv1_bn"),
    *conv_bn_rules(r"db_conv_\d+\.(conv\d+_\d+)\.bn_ac_func([12])", r"\1_x\2", r"\1_x\2_bn"),
    *conv_bn_rules(r"tr_(conv\d+_blk)\.conv_ac_func", r"\1", r"\1_bn"),
    *bn_rules(r"batch_norm", "conv5_blk_bn"),
    *fc_rules(r"out", "fc"),
]
register_key_map("DenseNet", static_map(_STATIC_RULES), scheme="static")


@register_model
def DenseNet121(**kwargs: Any) -> DenseNet:
    """DenseNet-121 (growth 32, blocks 6-12-24-16)."""
    return DenseNet(layers=121, **kwargs)


@register_model
def DenseNet161(**kwargs: Any) -> DenseNet:
    """DenseNet-161 (growth 48, blocks 6-12-36-24)."""
    return DenseNet(layers=161, **kwargs)


@register_model
def DenseNet169(**kwargs: Any) -> DenseNet:
    """DenseNet-169 (growth 32, blocks 6-12-32-32)."""
    return DenseNet(layers=169, **kwargs)


@register_model
def DenseNet201(**kwargs: Any) -> DenseNet:
    """DenseNet-201 (growth 32, blocks 6-12-48-32)."""
    return DenseNet(layers=201, **kwargs)


@register_model
def DenseNet264(**kwargs: Any) -> DenseNet:
    """DenseNet-264 (growth 32, blocks 6-12-64-48)."""
    return DenseNet(layers=264, **kwargs)


default_cfgs = [
    zoo_cfg("DenseNet121"),
    zoo_cfg("DenseNet161"),
    zoo_cfg("DenseNet169"),
    zoo_cfg("DenseNet201"),
    zoo_cfg("DenseNet264"),
]
register_pretrained(*default_cfgs)
