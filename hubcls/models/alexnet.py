"""AlexNet (Krizhevsky et al., 2012; the single-tower torchvision layout) with PaddleClas's names.

Release/2.0 dygraph names as in pip paddleclas's ``model_zoo`` (``_conv1`` ... ``_conv5``,
``_fc6``, ``_fc7``, ``_fc8``). The classifier takes the flattened 256x6x6 map, so the input must
be 224x224 (like PaddleClas, no adaptive pooling is inserted).
"""
from __future__ import annotations

import math
from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn
F = paddle.nn.functional


def _uniform(fan_in):
    stdv = 1.0 / math.sqrt(fan_in)
    return paddle.ParamAttr(initializer=nn.initializer.Uniform(-stdv, stdv))


def _conv(in_c, out_c, kernel, stride, padding):
    fan_in = in_c * kernel * kernel
    return nn.Conv2D(in_c, out_c, kernel, stride=stride, padding=padding,
                     weight_attr=_uniform(fan_in), bias_attr=_uniform(fan_in))


class ConvPoolLayer(nn.Layer):
    """conv -> ReLU -> 3x3/2 max-pool."""

    def __init__(self, in_c, out_c, kernel, stride, padding):
        super().__init__()
        self._conv = _conv(in_c, out_c, kernel, stride, padding)
        self.relu = nn.ReLU()
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._pool(self.relu(self._conv(x)))


class AlexNetModel(Backbone):
    classifier_name = "_fc8"
    fixed_input_size = 224   # the first Linear takes the flattened 224x224 feature map

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self._conv1 = ConvPoolLayer(3, 64, 11, 4, 2)
        self._conv2 = ConvPoolLayer(64, 192, 5, 1, 2)
        self._conv3 = _conv(192, 384, 3, 1, 1)
        self._relu3 = nn.ReLU()
        self._conv4 = _conv(384, 256, 3, 1, 1)
        self._relu4 = nn.ReLU()
        self._conv5 = ConvPoolLayer(256, 256, 3, 1, 1)
        self.feature_info = [dict(num_chs=64, reduction=8, module="_conv1"),
                             dict(num_chs=256, reduction=16, module="_relu4"),
                             dict(num_chs=256, reduction=32, module="_conv5")]
        # PaddleClas uses +-1/sqrt(256*6*6) for all three Linear layers
        fc_attr = lambda: _uniform(256 * 6 * 6)  # noqa: E731
        self._drop1 = nn.Dropout(p=dropout, mode="downscale_in_infer")
        self._fc6 = nn.Linear(256 * 6 * 6, 4096, weight_attr=fc_attr(), bias_attr=fc_attr())
        self._drop2 = nn.Dropout(p=dropout, mode="downscale_in_infer")
        self._fc7 = nn.Linear(4096, 4096, weight_attr=fc_attr(), bias_attr=fc_attr())
        # num_features: channels of forward_features' map; head_hidden_size: what the classifier sees
        self.num_features, self.head_hidden_size = 256, 4096
        self.num_classes = num_classes
        self._fc8 = nn.Linear(4096, num_classes, weight_attr=fc_attr(), bias_attr=fc_attr()) \
            if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        # the classifier takes the head's fc7 features (head_hidden_size), not num_features
        self.num_classes = num_classes
        self._fc8 = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._conv2(self._conv1(x))
        x = self._relu4(self._conv4(self._relu3(self._conv3(x))))
        return self._conv5(x)

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = paddle.flatten(x, start_axis=1)
        if x.shape[1] > 0 and x.shape[1] != 256 * 6 * 6:  # (-1: unknown while exporting)
            raise ValueError(f"AlexNet's classifier needs a 224x224 input (a 256x6x6 feature map); "
                             f"got {x.shape[1]} features")
        x = F.relu(self._fc6(self._drop1(x)))
        x = F.relu(self._fc7(self._drop2(x)))
        return x if pre_logits else self._fc8(x)


# Paddle 1.x static names (PaddleClas release/static alexnet.py): ``conv1`` .. ``conv5``, ``fc6`` ..
# ``fc8``, each ``_weights`` + ``_offset``.
_STATIC_RULES = [
    *fc_rules(r"_conv([125])\._conv", r"conv\1"),
    *fc_rules(r"_conv([34])", r"conv\1"),
    *fc_rules(r"_fc([678])", r"fc\1"),
]
register_key_map("AlexNetModel", static_map(_STATIC_RULES), scheme="static")


@register_model
def AlexNet(**kwargs: Any) -> AlexNetModel:
    """AlexNet (single-tower layout, 224x224 input)."""
    return AlexNetModel(**kwargs)


default_cfgs = [
    zoo_cfg("AlexNet", key_scheme="2.0"),
]
register_pretrained(*default_cfgs)
