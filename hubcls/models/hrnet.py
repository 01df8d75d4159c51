"""HRNet-W{18,30,32,40,44,48,60,64}-C and SE-HRNet (Wang et al., 2019), classification variant.

Parameter names follow PaddleClas 2.6's ``legendary_models/hrnet.py`` (conv/bn naming, LayerLists);
the official release/2.0 weight files use the older 2.0 dygraph names, which :func:`map_20_keys`
renames. Four parallel branches at strides 4/8/16/32 exchange information in every
HighResolutionModule (FuseLayers: 1x1 conv + nearest upsampling from lower resolutions, chains of
strided 3x3 convs from higher ones); the classification head turns the four branches into one
2048-d vector through bottlenecks and strided convs.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from .._paddle import import_paddle
from ._layers import ConvBNLayer, PooledBackbone, linear
from ._pretrained import zoo_cfg
from ._registry import register_key_map, register_model, register_pretrained
from ._static import register_static_fold

paddle = import_paddle()
nn = paddle.nn
F = nn.functional


def ConvBNAct(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, act: Optional[str] = "relu") -> ConvBNLayer:
    """Legendary-scheme conv unit: ``conv`` (no bias, 'same' padding) -> ``bn`` -> act."""
    return ConvBNLayer(in_ch, out_ch, kernel_size, stride=stride, act=act, style="legendary")


class SELayer(nn.Layer):
    def __init__(self, channels, reduction=16):
        super().__init__()
        mid = int(channels / reduction)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.fc_squeeze = linear(channels, mid)
        self.fc_excitation = linear(mid, channels)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        s = paddle.flatten(self.avg_pool(x), start_axis=1)
        s = F.sigmoid(self.fc_excitation(F.relu(self.fc_squeeze(s))))
        return x * s.unsqueeze([2, 3])


class Bottleneck(nn.Layer):
    def __init__(self, in_ch, width, has_se=False, downsample=False):
        super().__init__()
        self.conv1 = ConvBNAct(in_ch, width, 1)
        self.conv2 = ConvBNAct(width, width, 3)
        self.conv3 = ConvBNAct(width, width * 4, 1, act=None)
        self.conv_down = ConvBNAct(in_ch, width * 4, 1, act=None) if downsample else None
        self.se = SELayer(width * 4) if has_se else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv3(self.conv2(self.conv1(x)))
        if self.se is not None:
            y = self.se(y)
        return F.relu(y + (self.conv_down(x) if self.conv_down is not None else x))


class BasicBlock(nn.Layer):
    def __init__(self, ch, has_se=False):
        super().__init__()
        self.conv1 = ConvBNAct(ch, ch, 3)
        self.conv2 = ConvBNAct(ch, ch, 3, act=None)
        self.se = SELayer(ch) if has_se else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv2(self.conv1(x))
        if self.se is not None:
            y = self.se(y)
        return F.relu(x + y)


def upsample_nearest(x: paddle.Tensor, scale: int, align_corners: bool = False) -> paddle.Tensor:
    """Nearest-neighbour upsampling by an integer ``scale``. ``align_corners=True`` is fluid's
    ``resize_nearest`` (the 2020 static programs): output k reads input int(k * (in-1)/(out-1) + 0.5),
    which differs from the plain rule (k // scale) for scales above 2."""
    if not align_corners or scale == 1:
        return F.interpolate(x, scale_factor=scale, mode="nearest")
    idx = []
    for size in (x.shape[2], x.shape[3]):
        out = size * scale
        ratio = (size - 1) / (out - 1) if out > 1 else 0.0
        idx.append(paddle.floor(paddle.arange(out, dtype="float32") * ratio + 0.5).astype("int64"))
    return paddle.index_select(paddle.index_select(x, idx[0], axis=2), idx[1], axis=3)


class FuseLayers(nn.Layer):
    """Every output branch i sums all input branches j, resampled to branch i's resolution."""

    align_corners = False  # fluid's resize_nearest numerics (HRNet(upsample_align_corners=True))

    def __init__(self, channels):
        super().__init__()
        self.channels = list(channels)
        self.residual_func_list = nn.LayerList()
        n = len(channels)
        for i in range(n):
            for j in range(n):
                if j > i:  # lower resolution: 1x1 conv, then nearest upsampling in forward
                    self.residual_func_list.append(ConvBNAct(channels[j], channels[i], 1, act=None))
                elif j < i:  # higher resolution: (i - j) strided 3x3 convs, ReLU between them
                    for k in range(i - j):
                        last = k == i - j - 1
                        self.residual_func_list.append(ConvBNAct(
                            channels[j], channels[i] if last else channels[j], 3, stride=2,
                            act=None if last else "relu"))

    def forward(self, xs: List[paddle.Tensor]) -> List[paddle.Tensor]:
        outs, idx = [], 0
        n = len(self.channels)
        for i in range(n):
            acc = xs[i]
            for j in range(n):
                if j > i:
                    y = self.residual_func_list[idx](xs[j])
                    idx += 1
                    acc = acc + upsample_nearest(y, 2 ** (j - i), self.align_corners)
                elif j < i:
                    y = xs[j]
                    for _ in range(i - j):
                        y = self.residual_func_list[idx](y)
                        idx += 1
                    acc = acc + y
            outs.append(F.relu(acc))
        return outs


class HighResolutionModule(nn.Layer):
    def __init__(self, channels, has_se=False, blocks=4):
        super().__init__()
        self.basic_block_list = nn.LayerList(
            [nn.Sequential(*[BasicBlock(c, has_se) for _ in range(blocks)]) for c in channels])
        self.fuse_func = FuseLayers(channels)

    def forward(self, xs: List[paddle.Tensor]) -> List[paddle.Tensor]:
        return self.fuse_func([branch(x) for branch, x in zip(self.basic_block_list, xs)])


class Stage(nn.Layer):
    def __init__(self, num_modules, channels, has_se=False):
        super().__init__()
        self.stage_func_list = nn.LayerList([HighResolutionModule(channels, has_se) for _ in range(num_modules)])

    def forward(self, xs: List[paddle.Tensor]) -> List[paddle.Tensor]:
        for m in self.stage_func_list:
            xs = m(xs)
        return xs


class LastClsOut(nn.Layer):
    def __init__(self, channels, has_se, widths=(32, 64, 128, 256)):
        super().__init__()
        self.func_list = nn.LayerList(
            [Bottleneck(c, w, has_se, downsample=True) for c, w in zip(channels, widths)])

    def forward(self, xs: List[paddle.Tensor]) -> List[paddle.Tensor]:
        return [f(x) for f, x in zip(self.func_list, xs)]


class HRNet(PooledBackbone):
    classifier_name = "fc"
    key_family = "HRNet"

    def __init__(self, width=18, has_se=False, num_classes=1000, class_num=None, upsample_align_corners=False):
        """upsample_align_corners: upsample in the fuse layers as the 2020 static programs did
        (fluid's resize_nearest); set when Paddle 1.x static weights load, so they give the
        logits they gave then."""
        super().__init__()
        num_classes = class_num if class_num is not None else num_classes
        w = int(width)
        self.width, self.has_se = w, has_se
        self.conv_layer1_1 = ConvBNAct(3, 64, 3, stride=2)
        self.conv_layer1_2 = ConvBNAct(64, 64, 3, stride=2)
        self.layer1 = nn.Sequential(*[Bottleneck(64 if i == 0 else 256, 64, has_se, downsample=i == 0)
                                      for i in range(4)])
        self.conv_tr1_1 = ConvBNAct(256, w, 3)
        self.conv_tr1_2 = ConvBNAct(256, w * 2, 3, stride=2)
        self.st2 = Stage(1, [w, w * 2], has_se)
        self.conv_tr2 = ConvBNAct(w * 2, w * 4, 3, stride=2)
        self.st3 = Stage(4, [w, w * 2, w * 4], has_se)
        self.conv_tr3 = ConvBNAct(w * 4, w * 8, 3, stride=2)
        self.st4 = Stage(3, [w, w * 2, w * 4, w * 8], has_se)
        # parameter-free taps on the four final branches (features_only hooks them)
        self.branch_out = nn.LayerList([nn.Identity() for _ in range(4)])
        widths = [32, 64, 128, 256]
        self.last_cls = LastClsOut([w, w * 2, w * 4, w * 8], has_se, widths)
        self.cls_head_conv_list = nn.LayerList(
            [ConvBNAct(widths[i] * 4, out, 3, stride=2) for i, out in enumerate([256, 512, 1024])])
        self.conv_last = ConvBNAct(1024, 2048, 1)
        self.feature_info = [dict(num_chs=w * 2 ** i, reduction=4 * 2 ** i, module=f"branch_out.{i}")
                             for i in range(4)]
        self.num_features = 2048
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.num_classes = num_classes
        self.fc = linear(2048, num_classes)
        self.set_upsample_align_corners(upsample_align_corners)

    def set_upsample_align_corners(self, align_corners: bool) -> None:
        """Switch every fuse layer's upsampling rule (see ``upsample_nearest``)."""
        self.upsample_align_corners = bool(align_corners)
        for layer in self.sublayers():
            if isinstance(layer, FuseLayers):
                layer.align_corners = self.upsample_align_corners

    def forward_branches(self, x: paddle.Tensor) -> List[paddle.Tensor]:
        """The four high-resolution branches after stage 4 (strides 4, 8, 16, 32)."""
        x = self.layer1(self.conv_layer1_2(self.conv_layer1_1(x)))
        xs = self.st2([self.conv_tr1_1(x), self.conv_tr1_2(x)])
        xs = self.st3(xs + [self.conv_tr2(xs[-1])])
        xs = self.st4(xs + [self.conv_tr3(xs[-1])])
        return [tap(t) for tap, t in zip(self.branch_out, xs)]

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        xs = self.last_cls(self.forward_branches(x))
        y = xs[0]
        for i in range(3):
            y = xs[i + 1] + self.cls_head_conv_list[i](y)
        return self.conv_last(y)


# --- release/2.0 weight files -> legendary names ----------------------------------------------

def _fuse_index(n_branches: int) -> Dict[str, int]:
    """2.0 FuseLayers sub-layer suffix ("1_2" or "3_1_2") -> position in residual_func_list."""
    table, idx = {}, 0
    for i in range(n_branches):
        for j in range(n_branches):
            if j > i:
                table[f"{i + 1}_{j + 1}"] = idx
                idx += 1
            elif j < i:
                for k in range(i - j):
                    table[f"{i + 1}_{j + 1}_{k + 1}"] = idx
                    idx += 1
    return table


_STAGE_BRANCHES = {"st2": 2, "st3": 3, "st4": 4}
_TR_NAMES = {"tr1.transition_tr1_layer_1": "conv_tr1_1", "tr1.transition_tr1_layer_2": "conv_tr1_2",
             "tr2.transition_tr2_layer_3": "conv_tr2", "tr3.transition_tr3_layer_4": "conv_tr3"}
_LEAF = {"_conv": "conv", "_batch_norm": "bn", "squeeze": "fc_squeeze", "excitation": "fc_excitation"}


def _rename_20(key: str) -> str:
    head, leaf = key.rsplit(".", 1)  # leaf: weight | bias | _mean | _variance
    parts = head.split(".")
    parts = [_LEAF.get(p, p) for p in parts]
    head = ".".join(parts)
    m = re.match(r"^la1\.bb_layer2_(\d+)\.(.*)$", head)
    if m:
        head = f"layer1.{int(m.group(1)) - 1}.{m.group(2)}"
    for old, new in _TR_NAMES.items():
        if head.startswith(old + "."):
            head = new + head[len(old):]
    m = re.match(r"^(st\d)\.stage_st\d_(\d+)\.(branches_func|fuse_func)\.(.*)$", head)
    if m:
        st, mod, kind, rest = m.group(1), int(m.group(2)) - 1, m.group(3), m.group(4)
        prefix = f"{st}.stage_func_list.{mod}"
        if kind == "branches_func":
            b = re.match(r"^bb_st\d_\d+_branch_layer_(\d+)_(\d+)\.(.*)$", rest)
            head = f"{prefix}.basic_block_list.{int(b.group(1)) - 1}.{int(b.group(2)) - 1}.{b.group(3)}"
        else:
            r = re.match(r"^residual_st\d_\d+_layer_([\d_]+)\.(.*)$", rest)
            idx = _fuse_index(_STAGE_BRANCHES[st])[r.group(1)]
            head = f"{prefix}.fuse_func.residual_func_list.{idx}.{r.group(2)}"
    m = re.match(r"^last_cls\.conv_cls_head_conv_(\d+)\.(.*)$", head)
    if m:
        head = f"last_cls.func_list.{int(m.group(1)) - 1}.{m.group(2)}"
    m = re.match(r"^cls_head_add(\d+)\.(.*)$", head)
    if m:
        head = f"cls_head_conv_list.{int(m.group(1)) - 1}.{m.group(2)}"
    if head == "out":
        head = "fc"
    return f"{head}.{leaf}"


def map_20_keys(state_dict: dict) -> dict:
    """Rename a PaddleClas release/2.0 HRNet state dict (``st2.stage_st2_1.branches_func.
    bb_st2_1_branch_layer_1_1.conv1._conv.weight``) to this module's legendary names
    (``st2.stage_func_list.0.basic_block_list.0.0.conv1.conv.weight``)."""
    return {_rename_20(k): v for k, v in state_dict.items()}


_LEAF_INV = {v: k for k, v in _LEAF.items()}
_TR_INV = {v: k for k, v in _TR_NAMES.items()}


def _to_20(key: str) -> str:
    """Inverse of the 2.0 rename: a legendary key of this module -> its release/2.0 name."""
    head, leaf = key.rsplit(".", 1)
    parts = head.split(".")
    if parts[0] == "layer1":
        parts[:2] = ["la1", f"bb_layer2_{int(parts[1]) + 1}"]
    elif parts[0] in _TR_INV:
        parts[:1] = _TR_INV[parts[0]].split(".")
    elif parts[0] in _STAGE_BRANCHES:
        st, mod = parts[0], int(parts[2]) + 1
        if parts[3] == "basic_block_list":
            sub = ["branches_func", f"bb_{st}_{mod}_branch_layer_{int(parts[4]) + 1}_{int(parts[5]) + 1}"]
            rest = parts[6:]
        else:  # fuse_func.residual_func_list.<idx>
            suffix = {v: k for k, v in _fuse_index(_STAGE_BRANCHES[st]).items()}[int(parts[5])]
            sub = ["fuse_func", f"residual_{st}_{mod}_layer_{suffix}"]
            rest = parts[6:]
        parts = [st, f"stage_{st}_{mod}"] + sub + rest
    elif parts[0] == "last_cls":
        parts[1:3] = [f"conv_cls_head_conv_{int(parts[2]) + 1}"]
    elif parts[0] == "cls_head_conv_list":
        parts[:2] = [f"cls_head_add{int(parts[1]) + 1}"]
    elif parts == ["fc"]:
        parts = ["out"]
    parts = [_LEAF_INV.get(p, p) for p in parts]
    return ".".join(parts + [leaf])


@register_key_map("HRNet", scheme="2.0")
def key_map_20(model: "HRNet") -> Dict[str, str]:
    """{legendary key of ``model``: release/2.0 file key} for the weight loader."""
    return {k: _to_20(k) for k in model.state_dict()}


# --- Paddle 1.x static names (PaddleClas release/static hrnet.py) ---------------------------------
_TR_STATIC = {"conv_tr1_1": "tr1_layer_1", "conv_tr1_2": "tr1_layer_2", "conv_tr2": "tr2_layer_3",
              "conv_tr3": "tr3_layer_4", "conv_layer1_1": "layer1_1", "conv_layer1_2": "layer1_2",
              "conv_last": "cls_head_last_conv"}
_BN_STATIC = {"weight": "bn_scale", "bias": "bn_offset", "_mean": "bn_mean", "_variance": "bn_variance"}


def _static_unit(parts: List[str]) -> str:
    """The static base name of the unit at ``parts`` (a conv unit or an SE block's owner)."""
    conv = lambda c: "downsample" if c == "conv_down" else c  # noqa: E731
    if parts[0] in _TR_STATIC:
        return _TR_STATIC[parts[0]]
    if parts[0] == "layer1":
        return f"layer2_{int(parts[1]) + 1}" + (f"_{conv(parts[2])}" if len(parts) > 2 else "")
    if parts[0] in _STAGE_BRANCHES:
        st, mod = parts[0], int(parts[2]) + 1
        if parts[3] == "basic_block_list":
            base = f"{st}_{mod}_branch_layer_{int(parts[4]) + 1}_{int(parts[5]) + 1}"
            return base + (f"_{parts[6]}" if len(parts) > 6 else "")
        suffix = {v: k for k, v in _fuse_index(_STAGE_BRANCHES[st]).items()}[int(parts[5])]
        return f"{st}_{mod}_layer_{suffix}"
    if parts[0] == "last_cls":
        return f"cls_headconv_{int(parts[2]) + 1}" + (f"_{conv(parts[3])}" if len(parts) > 3 else "")
    if parts[0] == "cls_head_conv_list":
        return f"cls_head_add{int(parts[1]) + 1}"
    raise KeyError(".".join(parts))


@register_key_map("HRNet", scheme="static")
def key_map_static(model: "HRNet") -> Dict[str, str]:
    """{legendary key: Paddle 1.x static name}: unit names as in the 2020 program
    (``st2_1_branch_layer_1_1_conv1``, ``st3_2_layer_3_1_2``, ``cls_headconv_1_downsample``), conv
    ``<unit>_weights``, BN ``<unit>_bn_scale`` ..., SE ``fc<block>_sqz`` / ``_exc``, classifier ``fc``."""
    out = {}
    for key in model.state_dict():
        head, leaf = key.rsplit(".", 1)
        parts = head.split(".")
        if parts == ["fc"]:
            out[key] = f"fc_{'weights' if leaf == 'weight' else 'offset'}"
        elif parts[-1] in ("fc_squeeze", "fc_excitation"):
            kind = "sqz" if parts[-1] == "fc_squeeze" else "exc"
            out[key] = f"fc{_static_unit(parts[:-2])}_{kind}_{'weights' if leaf == 'weight' else 'offset'}"
        elif parts[-1] == "conv":
            out[key] = f"{_static_unit(parts[:-1])}_weights"
        elif parts[-1] == "bn":
            out[key] = f"{_static_unit(parts[:-1])}_{_BN_STATIC[leaf]}"
    return out


def _static_numerics(model: "HRNet") -> Dict[str, Any]:
    model.set_upsample_align_corners(True)
    return {"upsample_align_corners": True}


register_static_fold("HRNet", numerics=_static_numerics)


# --- registry -----------------------------------------------------------------------------------
# Registered: the architectures with official weights (HRNet(width=60) / other SE widths, which
# PaddleClas also defines, build from the class; registering them would only lengthen the generic
# per-model test suites).


@register_model
def HRNet_W18_C(**kwargs: Any) -> HRNet:
    """HRNet-W18-C."""
    return HRNet(width=18, **kwargs)


@register_model
def HRNet_W30_C(**kwargs: Any) -> HRNet:
    """HRNet-W30-C."""
    return HRNet(width=30, **kwargs)


@register_model
def HRNet_W32_C(**kwargs: Any) -> HRNet:
    """HRNet-W32-C."""
    return HRNet(width=32, **kwargs)


@register_model
def HRNet_W40_C(**kwargs: Any) -> HRNet:
    """HRNet-W40-C."""
    return HRNet(width=40, **kwargs)


@register_model
def HRNet_W44_C(**kwargs: Any) -> HRNet:
    """HRNet-W44-C."""
    return HRNet(width=44, **kwargs)


@register_model
def HRNet_W48_C(**kwargs: Any) -> HRNet:
    """HRNet-W48-C."""
    return HRNet(width=48, **kwargs)


@register_model
def HRNet_W64_C(**kwargs: Any) -> HRNet:
    """HRNet-W64-C."""
    return HRNet(width=64, **kwargs)


@register_model
def SE_HRNet_W64_C(**kwargs: Any) -> HRNet:
    """SE-HRNet-W64-C (squeeze-excite in every bottleneck)."""
    return HRNet(width=64, has_se=True, **kwargs)


# `url` holds the release/2.0 file (2.0 names, renamed by map_20_keys); `url_legendary` the later
# re-export in this module's own names.
default_cfgs = [
    zoo_cfg("HRNet_W18_C", key_scheme="2.0"),
    zoo_cfg("HRNet_W18_C_ssld", arch="HRNet_W18_C", key_scheme="2.0"),
    zoo_cfg("HRNet_W30_C", key_scheme="2.0"),
    zoo_cfg("HRNet_W32_C", key_scheme="2.0"),
    zoo_cfg("HRNet_W40_C", key_scheme="2.0"),
    zoo_cfg("HRNet_W44_C", key_scheme="2.0"),
    zoo_cfg("HRNet_W48_C", key_scheme="2.0"),
    zoo_cfg("HRNet_W48_C_ssld", arch="HRNet_W48_C", key_scheme="2.0"),
    zoo_cfg("HRNet_W64_C", key_scheme="2.0"),
    zoo_cfg("SE_HRNet_W64_C_ssld", arch="SE_HRNet_W64_C", key_scheme="2.0"),
]
register_pretrained(*default_cfgs)
