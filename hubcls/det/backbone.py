"""hubcls zoo models as PaddleDetection backbones, with PSS-DET's backbone settings.

``HubclsResNet`` is the ResNet / ResNet-vd family with the options PaddleDetection's own ResNet
takes (``depth``, ``variant``, ``freeze_at``, ``norm_type``, ``freeze_norm``, ``dcn_v2_stages``,
``lr_mult_list``, ``return_idx``); ``HubclsBackbone`` is any zoo model by name through
``features_only``. Both follow PaddleDetection's backbone interface: ``forward(inputs)`` reads
``inputs['image']`` and returns the list of feature maps, ``out_shape`` lists their ShapeSpecs.

The classes are plain ``paddle.nn.Layer`` s; ``hubcls.det.register_with_ppdet()`` registers them in
PaddleDetection's workspace (``@register @serializable``) so its YAML configs can name them.

Stage indices follow PaddleDetection: 0 is res2 (stride 4) ... 3 is res5 (stride 32).
``freeze_at=k`` freezes the stem and stages 0..k (``-1``: nothing frozen).
"""
from __future__ import annotations

import re
from typing import List, Optional, Sequence

from .._paddle import import_paddle
from ..errors import ConfigError

paddle = import_paddle()
nn = paddle.nn

NORM_TYPES = ("bn", "sync_bn", "frozen_bn")


class DeformableConvV2(nn.Layer):
    """Modulated deformable 3x3 conv (DCNv2) that takes over a ``nn.Conv2D``'s weight.

    The weight keeps the parameter name of the conv it replaces (``<path>.weight``), so
    classification weights load into a DCN backbone unchanged. The offset/modulation predictor
    (``conv_offset``) starts at zero as in DCNv2 (and PaddleDetection): zero offsets and a
    modulation of sigmoid(0) = 0.5 at initialisation.
    """

    def __init__(self, conv: "nn.Conv2D", lr_mult: float = 1.0):
        super().__init__()
        k = conv._kernel_size
        k = k if isinstance(k, (list, tuple)) else (k, k)
        self._stride, self._padding = conv._stride, conv._padding
        self._dilation, self._groups = conv._dilation, conv._groups
        self.weight = conv.weight
        self.conv_offset = nn.Conv2D(
            conv._in_channels, 3 * k[0] * k[1], k, stride=conv._stride, padding=conv._padding,
            dilation=conv._dilation,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0), learning_rate=lr_mult),
            bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0), learning_rate=lr_mult),
        )
        self._n_offset = 2 * k[0] * k[1]

    def forward(self, x):
        om = self.conv_offset(x)
        offset, mask = om[:, : self._n_offset], nn.functional.sigmoid(om[:, self._n_offset:])
        return paddle.vision.ops.deform_conv2d(
            x, offset, self.weight, bias=None, stride=self._stride, padding=self._padding,
            dilation=self._dilation, groups=self._groups, mask=mask)


class _ShapeSpec(tuple):
    """Stand-in for ppdet.modeling.shape_spec.ShapeSpec when PaddleDetection is not installed."""

    def __new__(cls, channels, stride):
        obj = super().__new__(cls, (channels, None, None, stride))
        obj.channels, obj.height, obj.width, obj.stride = channels, None, None, stride
        return obj


def _shape_spec(channels, stride):
    try:
        from ppdet.modeling.shape_spec import ShapeSpec
    except ImportError:
        return _ShapeSpec(channels, stride)
    return ShapeSpec(channels=channels, stride=stride)


def _multi_gpu() -> bool:
    """PaddleDetection's condition for SyncBatchNorm: GPUs and more than one process."""
    try:
        return paddle.device.get_device().startswith("gpu") and paddle.distributed.get_world_size() > 1
    except Exception:  # noqa: BLE001 - no distributed runtime: a single process
        return False


def _as_list(value, name) -> List:
    if isinstance(value, int):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be an int or a list of ints, got {value!r}")
    return list(value)


class HubclsBackbone(nn.Layer):
    """Any hubcls zoo model as a detection backbone (multi-scale features via features_only).

    name: zoo model name (``ResNet50_vd``, ``MobileNetV3_large_x1_0``, ...).
    pretrained: False, True (official classification weights), a weight file/dir or URL — any
        format ``hubcls.create_model`` loads (either PaddleClas key scheme, Paddle 1.x static,
        PaddleDetection's backbone names); a file without the classifier (a detector's backbone)
        loads too, and deformable-conv offsets missing from it start at zero.
    return_idx: stages whose feature maps are returned (indices into the model's feature_info).
    freeze_at: freeze the stem and stages 0..freeze_at (-1: train everything).
    norm_type: 'bn' (BatchNorm, frozen when ``freeze_norm``), 'sync_bn' (cross-device BN; as in
        PaddleDetection it becomes SyncBatchNorm only on GPUs with more than one process, plain
        BatchNorm otherwise), 'frozen_bn' (= 'bn' with freeze_norm=True).
    norm_decay: L2 weight decay of the norm layers' scale and shift (PaddleDetection's meaning:
        it replaces the optimizer's decay for them; 0 = none).
    freeze_norm: BN layers use their running statistics and get no gradient (PaddleDetection's
        default for ResNet backbones).
    lr_mult_list: per-stage learning-rate multipliers (one per stage of feature_info, or 4 for
        ResNets as in PaddleDetection); the stem keeps 1.0 unless it is frozen.
    dcn_v2_stages: stages whose blocks use deformable conv v2 for their 3x3 conv (ResNet family).
    """

    __shared__ = ["norm_type"]  # PaddleDetection: a top-level `norm_type` in the config applies here

    def __init__(self, name: str = "ResNet50_vd", pretrained=False, return_idx: Sequence[int] = (0, 1, 2, 3),
                 freeze_at: int = 0, norm_type: str = "bn", freeze_norm: bool = True,
                 lr_mult_list: Optional[Sequence[float]] = None, dcn_v2_stages: Sequence[int] = (-1,),
                 num_stages: Optional[int] = None, norm_decay: Optional[float] = None, _model=None):
        super().__init__()
        from ..models import create_model

        if norm_type not in NORM_TYPES:
            raise ConfigError(f"norm_type: {norm_type!r} is not one of {', '.join(NORM_TYPES)}")
        if norm_type == "frozen_bn":
            norm_type, freeze_norm = "bn", True
        model = create_model(name) if _model is None else _model  # weights load after the DCN swap
        info = list(getattr(model, "feature_info", None) or [])
        if not info:
            raise ConfigError(f"{name} does not describe its stages (feature_info); it cannot be a backbone")
        n_stages = len(info) if num_stages is None else int(num_stages)
        if not 1 <= n_stages <= len(info):
            raise ConfigError(f"num_stages must be in 1..{len(info)} for {name}, got {num_stages}")
        return_idx = _as_list(return_idx, "return_idx")
        bad = [i for i in return_idx if not 0 <= i < n_stages]
        if bad:
            raise ConfigError(f"return_idx {return_idx}: stages {bad} do not exist ({name} has {n_stages}: 0..{n_stages - 1})")
        dcn_v2_stages = [s for s in _as_list(dcn_v2_stages, "dcn_v2_stages") if s >= 0]
        if dcn_v2_stages and max(dcn_v2_stages) >= n_stages:
            raise ConfigError(f"dcn_v2_stages {dcn_v2_stages}: {name} has stages 0..{n_stages - 1}")
        if lr_mult_list is None:
            lr_mult_list = [1.0] * n_stages
        lr_mult_list = [float(v) for v in lr_mult_list]
        if len(lr_mult_list) == len(info) > n_stages:
            lr_mult_list = lr_mult_list[:n_stages]  # PaddleDetection: always 4 entries, num_stages or not
        if len(lr_mult_list) != n_stages:
            raise ConfigError(f"lr_mult_list must have {n_stages} entries (one per stage), got {len(lr_mult_list)}")

        self.name, self.return_idx, self.freeze_at = name, return_idx, int(freeze_at)
        self.norm_type, self.freeze_norm = norm_type, bool(freeze_norm)
        self.norm_decay = None if norm_decay is None else float(norm_decay)
        self.dcn_v2_stages, self.lr_mult_list = dcn_v2_stages, lr_mult_list
        self.model = model
        self._info = info
        unused = self._drop_stages(n_stages)
        self._info = info[:n_stages]

        for stage in dcn_v2_stages:
            self._use_dcn_v2(stage, lr_mult_list[stage])
        self._load(pretrained, unused)
        model.reset_classifier(0)  # detection uses features only; drop the ImageNet classifier
        self._stage_of = self._partition_parameters()
        self._apply_lr_mult_and_freeze()
        if norm_type == "sync_bn" and _multi_gpu():
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self._hooks, self._outs = [], {}
        from ..models._features import _get_sublayer

        for stage in return_idx:
            layer = _get_sublayer(self.model, self._info[stage]["module"])
            self._hooks.append(layer.register_forward_post_hook(self._hook(stage)))
        self._last_stage_module = _get_sublayer(self.model, self._info[n_stages - 1]["module"])

    def _drop_stages(self, n_stages: int) -> set:
        """Remove the blocks of stages >= n_stages from the ResNet families' models (PaddleDetection
        builds only num_stages stages: no compute, no parameters for the rest). Returns the keys of
        unused stages left in other models (weights for them may be absent)."""
        if n_stages >= len(self._info):
            return set()
        drop = {id(layer) for stage in range(n_stages, len(self._info)) for layer in self._stage_layers(stage)}
        m = self.model
        if isinstance(getattr(m, "blocks", None), nn.Sequential):  # ResNet: blocks.<i>
            m.blocks = nn.Sequential(*[b for b in m.blocks if id(b) not in drop])
            return set()
        if isinstance(getattr(m, "block_list", None), list):  # ResNeXt & co.: bb_<stage>_<i>
            for name, layer in list(m.named_children()):
                if id(layer) in drop:
                    delattr(m, name)
            m.block_list = [b for b in m.block_list if id(b) not in drop]
            return set()
        return {f"{n}.{k}" for n, layer in m.named_sublayers() if id(layer) in drop for k in layer.state_dict()}

    def _load(self, pretrained, unused=frozenset()) -> None:
        if pretrained in (False, None):
            return
        from ..models._builder import locate_weights
        from ..models._weights import classifier_keys, load_pretrained

        cfg = getattr(self.model, "pretrained_cfg", None)
        if pretrained is True and cfg is None:
            raise ConfigError(f"{self.name}: no official weights for this backbone configuration; "
                              f"pretrained= takes a weights file")
        path = locate_weights(cfg, pretrained)
        offsets = {k for k in self.model.state_dict() if ".conv_offset." in k}
        load_pretrained(self.model, path, missing_ok=classifier_keys(self.model) | offsets | set(unused))

    # -- stage bookkeeping ---------------------------------------------------------------------
    def _partition_parameters(self) -> dict:
        """Parameter name -> stage index (-1: stem, before the first stage; None: after the last
        used stage)."""
        owner = {}
        for stage in range(len(self._info)):
            params = [p for layer in self._stage_layers(stage) for p in layer.parameters()]
            if not params:
                raise ConfigError(f"{self.name}: stage module {self._info[stage]['module']} has no parameters")
            owner.update({id(p): stage for p in params})
        stage_of, after_stem = {}, False
        for n, p in self.model.named_parameters():
            stage = owner.get(id(p))
            after_stem = after_stem or stage is not None
            stage_of[n] = stage if stage is not None else (None if after_stem else -1)
        return stage_of

    def _stage_layers(self, stage: int):
        """Blocks of ``stage``: the siblings of its feature module from the previous stage's end on
        (``blocks.5`` -> ``blocks.3 .. blocks.5``; ``bb_1_3`` -> ``bb_1_0 .. bb_1_3``)."""
        from ..models._features import _get_sublayer

        path = self._info[stage]["module"]
        parent, _, leaf = path.rpartition(".")
        container = _get_sublayer(self.model, parent) if parent else self.model
        if leaf.isdigit():
            prev = self._info[stage - 1]["module"].rpartition(".") if stage > 0 else None
            start = int(prev[2]) + 1 if prev is not None and prev[0] == parent and prev[2].isdigit() else 0
            return [container[i] for i in range(start, int(leaf) + 1)]
        m = re.fullmatch(r"(.*?)(\d+)", leaf)
        if m is None:
            return [_get_sublayer(self.model, path)]
        return [getattr(container, f"{m[1]}{i}") for i in range(int(m[2]) + 1) if hasattr(container, f"{m[1]}{i}")]

    def _use_dcn_v2(self, stage: int, lr_mult: float):
        swapped = 0
        for block in self._stage_layers(stage):
            convbn = getattr(block, "conv1", None)  # ResNet blocks: conv1 is the 3x3 conv (branch2b)
            conv = getattr(convbn, "conv", None) or getattr(convbn, "_conv", None)
            if conv is None or conv._kernel_size not in ([3, 3], (3, 3), 3):
                continue
            attr = "conv" if getattr(convbn, "conv", None) is conv else "_conv"
            setattr(convbn, attr, DeformableConvV2(conv, lr_mult))
            swapped += 1
        if not swapped:
            raise ConfigError(f"dcn_v2_stages: {self.name} has no ResNet-style 3x3 block convs in stage {stage}")

    def _apply_lr_mult_and_freeze(self):
        frozen_stages = set(range(-1, min(self.freeze_at, len(self._info) - 1) + 1)) if self.freeze_at >= 0 else set()
        params = dict(self.model.named_parameters())
        for name, p in params.items():
            stage = self._stage_of.get(name)
            if stage is None:
                continue
            if stage >= 0:  # frozen parameters keep their multiplier too, as in PaddleDetection
                p.optimize_attr["learning_rate"] = self.lr_mult_list[stage]
            if stage in frozen_stages:
                p.stop_gradient = True
        for layer in self.model.sublayers():
            if not isinstance(layer, nn.layer.norm._BatchNormBase):
                continue
            if self.norm_decay is not None:
                for p in (layer.weight, layer.bias):
                    p.regularizer = paddle.regularizer.L2Decay(self.norm_decay)
            if self.freeze_norm:
                layer._use_global_stats = True
                for p in layer.parameters():
                    p.stop_gradient = True
                    p.optimize_attr["learning_rate"] = 0.0

    # -- PaddleDetection interface ---------------------------------------------------------------
    def _hook(self, stage):
        def hook(layer, inputs, output):
            self._outs[stage] = output
        return hook

    @property
    def out_shape(self):
        return [_shape_spec(self._info[i]["num_chs"], self._info[i]["reduction"]) for i in self.return_idx]

    def forward(self, inputs):
        x = inputs["image"] if isinstance(inputs, dict) else inputs
        self._outs = {}
        self.model.forward_features(x)
        outs, self._outs = self._outs, {}
        return [outs[i] for i in self.return_idx]


VARIANTS = ("a", "b", "c", "d")
_STAGE_WIDTHS = (64, 128, 256, 512)  # PaddleDetection's ch_out per stage


def _zoo_name(depth, ch_in, variant, groups, base_width, std_senet) -> Optional[str]:
    """The zoo architecture that is exactly this PaddleDetection ResNet, if there is one (its
    official classification weights then load with pretrained=True)."""
    vd = "_vd" if variant == "d" else ""
    if variant not in ("b", "d"):
        return None
    if not std_senet and ch_in == 64:
        if groups == 1 and base_width == 64:
            return f"ResNet{depth}{vd}"
        if (groups, base_width) in ((32, 4), (64, 4)) and depth in (50, 101, 152):
            return f"ResNeXt{depth}{vd}_{groups}x{base_width}d"
        return None
    if std_senet:
        table = {(18, 64, "d", 1, 64): "SE_ResNet18_vd", (34, 64, "d", 1, 64): "SE_ResNet34_vd",
                 (50, 64, "d", 1, 64): "SE_ResNet50_vd", (50, 64, "b", 32, 4): "SE_ResNeXt50_32x4d",
                 (101, 64, "b", 32, 4): "SE_ResNeXt101_32x4d", (50, 128, "d", 32, 4): "SE_ResNeXt50_vd_32x4d",
                 (152, 128, "d", 64, 4): "SENet154_vd"}
        return table.get((depth, ch_in, variant, groups, base_width))
    return None


def _resnet_model(depth, ch_in, variant, groups, base_width, std_senet):
    """PaddleDetection's ResNet(depth, ch_in, variant, groups, base_width, std_senet) as a hubcls
    ResNeXt (the general model_zoo ResNet), classifier-free until weights load."""
    from ..models.resnext import ResNeXt

    bottleneck = depth >= 50
    expansion = 4 if bottleneck else 1
    # ResNeXt: each stage's grouped 3x3 conv is int(ch_out * base_width / 64) * groups wide
    widths = [int(c * base_width / 64.0) * groups for c in _STAGE_WIDTHS] if bottleneck else list(_STAGE_WIDTHS)
    return ResNeXt(layers=depth, cardinality=groups, widths=widths, out_mult=expansion * _STAGE_WIDTHS[0] / widths[0],
                   stem="vd" if variant in ("c", "d") else "vb", stem_width=ch_in, vd_shortcut=variant == "d",
                   se_reduction=16 if std_senet else None, stride_in_1x1=variant == "a")


class HubclsResNet(HubclsBackbone):
    """PaddleDetection's ResNet / ResNeXt / SE-ResNet(X) backbone, built from hubcls's models.

    Takes every argument of PaddleDetection 2.6's ``ResNet`` with its meaning and default
    (ppdet/modeling/backbones/resnet.py): ``depth`` (18/34/50/101/152), ``ch_in`` (stem width),
    ``variant`` ('a': stride on the 1x1 conv; 'b'; 'c': three-conv stem; 'd': + average-pool
    shortcuts), ``lr_mult_list``, ``groups`` / ``base_width`` (ResNeXt: the 3x3 conv of a stage is
    int(ch_out * base_width / 64) * groups wide), ``norm_type`` ('bn', 'sync_bn'), ``norm_decay``,
    ``freeze_norm``, ``freeze_at``, ``return_idx``, ``dcn_v2_stages``, ``num_stages``, ``std_senet``
    (squeeze-excitation after each block's last conv); so a PaddleDetection config swaps
    ``backbone: ResNet`` for ``backbone: HubclsResNet`` with its ``ResNet:`` section unchanged.

    hubcls's own: ``pretrained`` (True: the official classification weights of the zoo model this
    configuration is - ResNet50_vd, ResNeXt101_vd_64x4d, SE_ResNeXt50_vd_32x4d, ...; or a weights file
    in any format hubcls reads, PaddleDetection backbone weights included) and ``weights`` (a weight
    variant of that architecture, e.g. ``ResNet50_vd_ssld``). PSS-DET uses ``depth=50, variant='d',
    freeze_at=0, dcn_v2_stages=[1, 2, 3], lr_mult_list=[0.05, 0.05, 0.1, 0.15]`` with ResNet50_vd_ssld.
    """

    def __init__(self, depth: int = 50, ch_in: int = 64, variant: str = "b",
                 lr_mult_list: Sequence[float] = (1.0, 1.0, 1.0, 1.0), groups: int = 1, base_width: int = 64,
                 norm_type: str = "bn", norm_decay: float = 0.0, freeze_norm: bool = True, freeze_at: int = 0,
                 return_idx: Sequence[int] = (0, 1, 2, 3), dcn_v2_stages: Sequence[int] = (-1,),
                 num_stages: int = 4, std_senet: bool = False, pretrained=False, weights: Optional[str] = None):
        if variant not in VARIANTS:
            raise ConfigError(f"variant: {variant!r} is not one of 'a', 'b', 'c', 'd' (PaddleDetection's ResNet variants)")
        if depth not in (18, 34, 50, 101, 152, 200):
            raise ConfigError(f"depth: {depth} is not one of 18, 34, 50, 101, 152, 200")
        if depth < 50 and (groups != 1 or base_width != 64):
            raise ConfigError(f"groups={groups}, base_width={base_width}: depth {depth} uses basic blocks, "
                              f"which take groups=1 and base_width=64 only")
        if ch_in % 2 or ch_in <= 0:
            raise ConfigError(f"ch_in: {ch_in} must be a positive even number of channels")
        name = _zoo_name(depth, ch_in, variant, groups, base_width, std_senet)
        model = None
        if name is None:
            if weights or pretrained is True:
                raise ConfigError(f"no zoo model is a ResNet with depth={depth}, ch_in={ch_in}, variant={variant!r}, "
                                  f"groups={groups}, base_width={base_width}, std_senet={std_senet}, so there are no "
                                  f"official weights for it; pretrained= takes a weights file")
            model = _resnet_model(depth, ch_in, variant, groups, base_width, std_senet)
            name = f"ResNet(depth={depth}, variant={variant!r}, groups={groups}, base_width={base_width})"
        elif weights:  # weight variant such as ResNet50_vd_ssld: same architecture, other weights
            from ..models import resolve

            if resolve(weights).arch != resolve(name).arch:
                raise ConfigError(f"weights: {weights} are weights of {resolve(weights).arch}, "
                                  f"not of this backbone ({name})")
            name = weights
        super().__init__(name, pretrained=pretrained, return_idx=return_idx, freeze_at=freeze_at,
                         norm_type=norm_type, freeze_norm=freeze_norm, lr_mult_list=lr_mult_list,
                         dcn_v2_stages=dcn_v2_stages, num_stages=num_stages, norm_decay=norm_decay, _model=model)
        self.depth, self.ch_in, self.variant, self.groups = int(depth), int(ch_in), variant, int(groups)
        self.base_width, self.std_senet = int(base_width), bool(std_senet)


class HubclsSENet(HubclsResNet):
    """PaddleDetection's ``SENet`` backbone (ppdet/modeling/backbones/senet.py): its ResNet with a
    128-channel stem and squeeze-excitation, same arguments and defaults (``std_senet=True``)."""

    def __init__(self, depth: int = 50, variant: str = "b", lr_mult_list: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                 groups: int = 1, base_width: int = 64, norm_type: str = "bn", norm_decay: float = 0.0,
                 freeze_norm: bool = True, freeze_at: int = 0, return_idx: Sequence[int] = (0, 1, 2, 3),
                 dcn_v2_stages: Sequence[int] = (-1,), std_senet: bool = True, num_stages: int = 4,
                 pretrained=False, weights: Optional[str] = None):
        super().__init__(depth=depth, ch_in=128, variant=variant, lr_mult_list=lr_mult_list, groups=groups,
                         base_width=base_width, norm_type=norm_type, norm_decay=norm_decay, freeze_norm=freeze_norm,
                         freeze_at=freeze_at, return_idx=return_idx, dcn_v2_stages=dcn_v2_stages,
                         num_stages=num_stages, std_senet=std_senet, pretrained=pretrained, weights=weights)
