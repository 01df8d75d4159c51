"""VGG 11/13/16/19 (Simonyan & Zisserman, 2014) with PaddleClas's parameter names.

Names follow pip paddleclas 2.6's *legendary* implementation (``conv_block_N.convM``,
``fc1``..``fc3``); ``map_20_keys`` renames release/2.0 dygraph files (``_conv_block_N._conv_M``,
``_fc1``, ``_fc2``, ``_out``). Like PaddleClas: convolutions have no bias, no batch norm, and the
classifier takes the flattened 512x7x7 map, so the input must be 224x224.
"""
from __future__ import annotations

import re
from typing import Any

from .._paddle import import_paddle
from ._features import Backbone
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn

# depth -> number of 3x3 convs in each of the 5 blocks
CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


class ConvBlock(nn.Layer):
    """``n`` 3x3 convs (``conv1`` ... ``convN``) with ReLU, then a 2x2/2 max-pool."""

    def __init__(self, in_c, out_c, n):
        super().__init__()
        self.n = n
        for i in range(n):
            setattr(self, f"conv{i + 1}", nn.Conv2D(in_c if i == 0 else out_c, out_c, 3, padding=1, bias_attr=False))
        self.max_pool = nn.MaxPool2D(kernel_size=2, stride=2, padding=0)
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for i in range(self.n):
            x = self.relu(getattr(self, f"conv{i + 1}")(x))
        return self.max_pool(x)


class VGG(Backbone):
    classifier_name = "fc3"
    fixed_input_size = 224   # the first Linear takes the flattened 224x224 feature map
    key_family = "VGG"

    def __init__(self, depth: int = 16, num_classes: int = 1000, stop_grad_layers: int = 0, dropout: float = 0.5):
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(CONFIGS)}, got {depth!r}")
        in_c = 3
        self.feature_info = []
        for i, (n, width) in enumerate(zip(CONFIGS[depth], WIDTHS)):
            block = ConvBlock(in_c, width, n)
            setattr(self, f"conv_block_{i + 1}", block)
            if i < stop_grad_layers:  # PaddleClas option: freeze the first blocks
                for p in block.parameters():
                    p.trainable = False
            self.feature_info.append(dict(num_chs=width, reduction=2 ** (i + 1), module=f"conv_block_{i + 1}"))
            in_c = width
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.drop = nn.Dropout(p=dropout, mode="downscale_in_infer")
        self.fc1 = nn.Linear(7 * 7 * 512, 4096)
        self.fc2 = nn.Linear(4096, 4096)
        # num_features: channels of forward_features' map; head_hidden_size: what the classifier sees
        self.num_features, self.head_hidden_size = 512, 4096
        self.num_classes = num_classes
        self.fc3 = nn.Linear(4096, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        # the classifier takes the head's fc2 features (head_hidden_size), not num_features
        self.num_classes = num_classes
        self.fc3 = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        for i in range(1, 6):
            x = getattr(self, f"conv_block_{i}")(x)
        return x

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:
        x = self.flatten(x)
        if x.shape[1] > 0 and x.shape[1] != 7 * 7 * 512:  # (-1: unknown while exporting)
            raise ValueError(f"VGG's classifier needs a 224x224 input (a 512x7x7 feature map); "
                             f"got {x.shape[1]} features")
        x = self.drop(self.relu(self.fc1(x)))
        x = self.drop(self.relu(self.fc2(x)))
        return x if pre_logits else self.fc3(x)


def map_20_keys(state_dict: dict) -> dict:
    """release/2.0 dygraph keys -> legendary keys: ``_conv_block_N._conv_M.weight`` ->
    ``conv_block_N.convM.weight``, ``_fc1``/``_fc2`` -> ``fc1``/``fc2``, ``_out`` -> ``fc3``."""
    out = {}
    for key, value in state_dict.items():
        new = re.sub(r"^_conv_block_(\d)\._conv_(\d)\.", r"conv_block_\1.conv\2.", key)
        new = re.sub(r"^_fc([12])\.", r"fc\1.", new)
        new = re.sub(r"^_out\.", "fc3.", new)
        out[new] = value
    return out


def key_to_20(key: str) -> str:
    """legendary key -> release/2.0 key (the inverse of ``map_20_keys``)."""
    key = re.sub(r"^conv_block_(\d)\.conv(\d)\.", r"_conv_block_\1._conv_\2.", key)
    key = re.sub(r"^fc([12])\.", r"_fc\1.", key)
    return re.sub(r"^fc3\.", "_out.", key)


# the weight loader's hook: {model key: release/2.0 file key}
register_key_map("VGG", lambda model: {k: key_to_20(k) for k in model.state_dict()}, scheme="2.0")


# Paddle 1.x static names (PaddleClas release/static vgg.py): bias-free convs ``conv<block>_<n>``,
# classifier layers ``fc6`` .. ``fc8``.
_STATIC_RULES = [
    (r"conv_block_(\d)\.conv(\d)\.weight", r"conv\1_\2_weights"),
    *fc_rules(r"fc([123])", lambda m: f"fc{int(m[1]) + 5}"),
]
register_key_map("VGG", static_map(_STATIC_RULES), scheme="static")


@register_model
def VGG11(**kwargs: Any) -> VGG:
    """VGG-11."""
    return VGG(depth=11, **kwargs)


@register_model
def VGG13(**kwargs: Any) -> VGG:
    """VGG-13."""
    return VGG(depth=13, **kwargs)


@register_model
def VGG16(**kwargs: Any) -> VGG:
    """VGG-16."""
    return VGG(depth=16, **kwargs)


@register_model
def VGG19(**kwargs: Any) -> VGG:
    """VGG-19."""
    return VGG(depth=19, **kwargs)


default_cfgs = [
    zoo_cfg("VGG11", key_scheme="2.0"),
    zoo_cfg("VGG13", key_scheme="2.0"),
    zoo_cfg("VGG16", key_scheme="2.0"),
    zoo_cfg("VGG19", key_scheme="2.0"),
]
register_pretrained(*default_cfgs)
