"""PP-LCNet (Cui et al. 2021, arXiv:2109.15099): a CPU-friendly MobileNetV1-style network.

Stem conv 3x3/2 -> five stages of depthwise-separable blocks (dw kxk + BN + h-swish [+ SE] ->
pw 1x1 + BN + h-swish); 5x5 depthwise kernels in the last two stages, SE only in the last stage;
then global pooling -> a 1x1 "last conv" to 1280 channels (no BN) + h-swish + dropout -> fc.

Parameter names follow PaddleClas's ``ppcls/arch/backbone/legendary_models/pp_lcnet.py``
(conv1, blocks2..blocks6 with dw_conv/se/pw_conv, last_conv, fc), so its
``PPLCNet_*_pretrained.pdparams`` files load without a key map.
"""
from __future__ import annotations

from hubcls._paddle import import_paddle
from hubcls.models import register_pretrained
from hubcls.models._features import Backbone
from hubcls.models._pretrained import PretrainedCfg

from . import HUBCLS_PLUGIN_API  # noqa: F401  (hubcls.plugins checks the module's API version)

paddle = import_paddle()
nn = paddle.nn

# per stage: (kernel, in channels, out channels, stride, use SE) at scale 1.0
STAGES = {
    "blocks2": [(3, 16, 32, 1, False)],
    "blocks3": [(3, 32, 64, 2, False), (3, 64, 64, 1, False)],
    "blocks4": [(3, 64, 128, 2, False), (3, 128, 128, 1, False)],
    "blocks5": [(3, 128, 256, 2, False)] + [(5, 256, 256, 1, False)] * 5,
    "blocks6": [(5, 256, 512, 2, True), (5, 512, 512, 1, True)],
}
LAST_CONV_CHANNELS = 1280
WEIGHTS_BASE = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/legendary_models/"
# ImageNet-1k top-1 of PaddleClas's released weights (PaddleClas docs, PP-LCNet model table)
TOP1 = {"0_25": 0.5186, "0_35": 0.5809, "0_5": 0.6314, "0_75": 0.6818, "1_0": 0.7132,
        "1_5": 0.7371, "2_0": 0.7518, "2_5": 0.7660}


def make_divisible(v, divisor=8, min_value=None):
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBN(nn.Layer):
    def __init__(self, in_c, out_c, k, stride, groups=1):
        super().__init__()
        self.conv = nn.Conv2D(in_c, out_c, k, stride=stride, padding=(k - 1) // 2, groups=groups,
                              weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingNormal()),
                              bias_attr=False)
        self.bn = nn.BatchNorm2D(out_c)
        self.act = nn.Hardswish()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SE(nn.Layer):
    """Squeeze-excitation with reduction 4, ReLU, and Paddle's default hard-sigmoid (x/6 + 0.5)."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv1 = nn.Conv2D(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2D(channels // reduction, channels, 1)
        self.hardsigmoid = nn.Hardsigmoid()

    def forward(self, x):
        w = self.hardsigmoid(self.conv2(self.relu(self.conv1(self.avg_pool(x)))))
        return x * w


class DepthwiseSeparable(nn.Layer):
    def __init__(self, in_c, out_c, stride, k, use_se):
        super().__init__()
        self.use_se = use_se
        self.dw_conv = ConvBN(in_c, in_c, k, stride, groups=in_c)
        if use_se:
            self.se = SE(in_c)
        self.pw_conv = ConvBN(in_c, out_c, 1, 1)

    def forward(self, x):
        x = self.dw_conv(x)
        if self.use_se:
            x = self.se(x)
        return self.pw_conv(x)


class PPLCNet(Backbone):
    classifier_name = "fc"

    def __init__(self, scale=1.0, num_classes=1000, dropout_prob=0.2, class_expand=LAST_CONV_CHANNELS, **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError(f"PPLCNet got unexpected arguments: {', '.join(sorted(kwargs))}")
        self.scale = scale
        self.conv1 = ConvBN(3, make_divisible(16 * scale), 3, 2)
        self.feature_info = []
        reduction = 2
        for name, blocks in STAGES.items():
            layers = []
            for k, in_c, out_c, s, se in blocks:
                layers.append(DepthwiseSeparable(make_divisible(in_c * scale), make_divisible(out_c * scale), s, k, se))
                reduction *= s
            setattr(self, name, nn.Sequential(*layers))
            self.feature_info.append(dict(num_chs=make_divisible(blocks[-1][2] * scale), reduction=reduction,
                                          module=name))
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.last_conv = nn.Conv2D(make_divisible(512 * scale), class_expand, 1, bias_attr=False)
        self.act = nn.Hardswish()
        self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        # the classifier's input (the backbone contract); head_hidden_size says the same for code
        # that follows MobileNetV3's convention (num_features = the last map's channels)
        self.num_features = self.head_hidden_size = class_expand
        self.num_classes = num_classes
        self.fc = nn.Linear(class_expand, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x):
        x = self.conv1(x)
        for name in STAGES:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x, pre_logits: bool = False):
        x = self.flatten(self.dropout(self.act(self.last_conv(self.avg_pool(x)))))
        return x if pre_logits else self.fc(x)


def _make(tag: str, scale: float):
    name = f"PPLCNet_x{tag}"

    def builder(num_classes: int = 1000, **kwargs):
        return PPLCNet(scale=scale, num_classes=num_classes, **kwargs)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"PP-LCNet, width x{scale}"
    register_pretrained(PretrainedCfg(
        name=name, arch=name, url_legendary=f"{WEIGHTS_BASE}{name}_pretrained.pdparams", key_scheme="legendary",
        input_size=224, resize_short=256, top1=TOP1[tag], in_2020_readme=False,
        extra={"plugin": "hubcls-plugin-pplcnet"}))
    return builder


PPLCNet_x0_25 = _make("0_25", 0.25)
PPLCNet_x0_35 = _make("0_35", 0.35)
PPLCNet_x0_5 = _make("0_5", 0.5)
PPLCNet_x0_75 = _make("0_75", 0.75)
PPLCNet_x1_0 = _make("1_0", 1.0)
PPLCNet_x1_5 = _make("1_5", 1.5)
PPLCNet_x2_0 = _make("2_0", 2.0)
PPLCNet_x2_5 = _make("2_5", 2.5)
