"""Dual Path Networks DPN-68/92/98/107/131 (Chen et al., 2017), PaddleClas release/2.0 layout.

Each block carries two paths: a residual path of fixed width ``bw`` (added) and a densely
connected path that grows by ``inc`` channels per block (concatenated). Parameter names follow
PaddleClas's ``model_zoo/dpn.py`` (blocks are numbered ``dpn1 .. dpnN`` across all stages).
"""
from __future__ import annotations

from typing import Any, List, Union

from .._paddle import import_paddle
from ._layers import BNActConv, ConvBN, PooledBackbone, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import bn_rules, conv_bn_rules, fc_rules, static_map

paddle = import_paddle()
nn = paddle.nn


class DualPathBlock(nn.Layer):
    """kind: "proj" (first block of stage 1), "down" (first block of stages 2-4, stride 2), "normal"."""

    def __init__(self, in_ch, num_1x1_a, num_3x3_b, num_1x1_c, inc, groups, kind="normal"):
        super().__init__()
        self.num_1x1_c, self.inc = num_1x1_c, inc
        stride = 2 if kind == "down" else 1
        self.has_proj = kind in ("proj", "down")
        if self.has_proj:
            self.c1x1_w_func = BNActConv(in_ch, num_1x1_c + 2 * inc, 1, stride=stride)
        self.c1x1_a_func = BNActConv(in_ch, num_1x1_a, 1)
        self.c3x3_b_func = BNActConv(num_1x1_a, num_3x3_b, 3, stride=stride, padding=1, groups=groups)
        self.c1x1_c_func = BNActConv(num_3x3_b, num_1x1_c + inc, 1)

    def forward(self, x: Union[paddle.Tensor, List[paddle.Tensor]]) -> List[paddle.Tensor]:
        data_in = paddle.concat(x, axis=1) if isinstance(x, (list, tuple)) else x
        if self.has_proj:
            res, dense = paddle.split(self.c1x1_w_func(data_in), [self.num_1x1_c, 2 * self.inc], axis=1)
        else:
            res, dense = x
        y = self.c1x1_c_func(self.c3x3_b_func(self.c1x1_a_func(data_in)))
        y_res, y_dense = paddle.split(y, [self.num_1x1_c, self.inc], axis=1)
        return [res + y_res, paddle.concat([dense, y_dense], axis=1)]


class _Concat(nn.Layer):
    """Joins the two paths; a named layer so the stage outputs can be hooked for features_only."""

    def forward(self, x: List[paddle.Tensor]) -> paddle.Tensor:
        return paddle.concat(x, axis=1)


DPN_SPEC = {
    # k_r, groups, blocks per stage, dense increments, residual widths, stem (ch, kernel, pad)
    68: (128, 32, (3, 4, 12, 3), (16, 32, 32, 64), (64, 128, 256, 512), (10, 3, 1)),
    92: (96, 32, (3, 4, 20, 3), (16, 32, 24, 128), (256, 512, 1024, 2048), (64, 7, 3)),
    98: (160, 40, (3, 6, 20, 3), (16, 32, 32, 128), (256, 512, 1024, 2048), (96, 7, 3)),
    107: (200, 50, (4, 8, 20, 3), (20, 64, 64, 128), (256, 512, 1024, 2048), (128, 7, 3)),
    131: (160, 40, (4, 8, 28, 3), (16, 32, 32, 128), (256, 512, 1024, 2048), (128, 7, 3)),
}


class DPN(PooledBackbone):
    classifier_name = "out"

    def __init__(self, layers=68, num_classes=1000, class_num=None):
        super().__init__()
        if layers not in DPN_SPEC:
            raise ValueError(f"DPN layers must be one of {sorted(DPN_SPEC)}, got {layers}")
        num_classes = class_num if class_num is not None else num_classes
        k_r, groups, k_sec, inc_sec, bws, (stem_ch, stem_k, stem_pad) = DPN_SPEC[layers]
        r = 64 if layers == 68 else 256
        self.conv1_x_1_func = ConvBN(3, stem_ch, stem_k, stride=2, padding=stem_pad, act="relu")
        self.pool2d_max = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        self.feature_info = [dict(num_chs=stem_ch, reduction=2, module="conv1_x_1_func")]
        self.blocks_ = []
        self.stage_ends = []
        in_ch, idx = stem_ch, 0
        for s in range(4):
            bw, inc = bws[s], inc_sec[s]
            width = (k_r * bw) // r
            for j in range(k_sec[s]):
                kind = "normal" if j else ("proj" if s == 0 else "down")
                idx += 1
                self.blocks_.append(self.add_sublayer(
                    f"dpn{idx}", DualPathBlock(in_ch, width, width, bw, inc, groups, kind)))
                in_ch = bw + (3 * inc if j == 0 else in_ch - bw + inc)
            self.stage_ends.append(len(self.blocks_))
            if s < 3:
                self.add_sublayer(f"stage{s + 1}_out", _Concat())
                self.feature_info.append(dict(num_chs=in_ch, reduction=4 * 2 ** s, module=f"stage{s + 1}_out"))
        self.conv5_x_x_bn = nn.BatchNorm2D(in_ch)
        self.final_act = nn.ReLU()
        self.feature_info.append(dict(num_chs=in_ch, reduction=32, module="final_act"))
        self.num_features = in_ch
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_classes = num_classes
        self.out = linear(in_ch, num_classes, stdv=0.01)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.pool2d_max(self.conv1_x_1_func(x))
        for i, block in enumerate(self.blocks_):
            x = block(x)
            if i + 1 in self.stage_ends[:3]:
                # the joined map exists only for features_only hooks; skip the concat otherwise
                tap = getattr(self, f"stage{self.stage_ends.index(i + 1) + 1}_out")
                if tap._forward_post_hooks:
                    tap(x)
        return self.final_act(self.conv5_x_x_bn(paddle.concat(x, axis=1)))


# Paddle 1.x static names (PaddleClas release/static dpn.py): stem ``conv1``, blocks ``dpn<n>`` numbered
# through the network as here, their convs ``_match`` (projection), ``_conv1`` .. ``_conv3``, BN
# ``<conv>_bn_*``; final BN ``final_concat_bn``, classifier ``fc``.
_STATIC_RULES = [
    *conv_bn_rules(r"conv1_x_1_func", "conv1", "conv1_bn"),
    *[rule for attr, conv in (("c1x1_w", "match"), ("c1x1_a", "conv1"), ("c3x3_b", "conv2"), ("c1x1_c", "conv3"))
      for rule in conv_bn_rules(rf"(dpn\d+)\.{attr}_func", rf"\1_{conv}", rf"\1_{conv}_bn")],
    *bn_rules(r"conv5_x_x_bn", "final_concat_bn"),
    *fc_rules(r"out", "fc"),
]
register_key_map("DPN", static_map(_STATIC_RULES), scheme="static")


@register_model
def DPN68(**kwargs: Any) -> DPN:
    """DPN-68 (k_r 128, groups 32)."""
    return DPN(layers=68, **kwargs)


@register_model
def DPN92(**kwargs: Any) -> DPN:
    """DPN-92 (k_r 96, groups 32)."""
    return DPN(layers=92, **kwargs)


@register_model
def DPN98(**kwargs: Any) -> DPN:
    """DPN-98 (k_r 160, groups 40)."""
    return DPN(layers=98, **kwargs)


@register_model
def DPN107(**kwargs: Any) -> DPN:
    """DPN-107 (k_r 200, groups 50)."""
    return DPN(layers=107, **kwargs)


@register_model
def DPN131(**kwargs: Any) -> DPN:
    """DPN-131 (k_r 160, groups 40)."""
    return DPN(layers=131, **kwargs)


default_cfgs = [
    zoo_cfg("DPN68"),
    zoo_cfg("DPN92"),
    zoo_cfg("DPN98"),
    zoo_cfg("DPN107"),
    zoo_cfg("DPN131"),
]
register_pretrained(*default_cfgs)
