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
        format ``hubcls.create_model`` loads, in either PaddleClas key scheme.
    return_idx: stages whose feature maps are returned (indices into the model's feature_info).
    freeze_at: freeze the stem and stages 0..freeze_at (-1: train everything).
    norm_type: 'bn' (BatchNorm, frozen when ``freeze_norm``), 'sync_bn' (cross-device BN for
        multi-GPU training), 'frozen_bn' (= 'bn' with freeze_norm=True).
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
                 num_stages: Optional[int] = None):
        super().__init__()
        from ..models import create_model

        if norm_type not in NORM_TYPES:
            raise ConfigError(f"norm_type: {norm_type!r} is not one of {', '.join(NORM_TYPES)}")
        if norm_type == "frozen_bn":
            norm_type, freeze_norm = "bn", True
        model = create_model(name, pretrained=pretrained)
        model.reset_classifier(0)  # detection uses features only; drop the ImageNet classifier
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
        if len(lr_mult_list) != n_stages:
            raise ConfigError(f"lr_mult_list must have {n_stages} entries (one per stage), got {len(lr_mult_list)}")

        self.name, self.return_idx, self.freeze_at = name, return_idx, int(freeze_at)
        self.norm_type, self.freeze_norm = norm_type, bool(freeze_norm)
        self.dcn_v2_stages, self.lr_mult_list = dcn_v2_stages, lr_mult_list
        self.model = model
        self._info = info[:n_stages]
        self._stage_of = self._partition_parameters()

        for stage in dcn_v2_stages:
            self._use_dcn_v2(stage, lr_mult_list[stage])
        self._apply_lr_mult_and_freeze()
        if norm_type == "sync_bn":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self._hooks, self._outs = [], {}
        from ..models._features import _get_sublayer

        for stage in return_idx:
            layer = _get_sublayer(self.model, self._info[stage]["module"])
            self._hooks.append(layer.register_forward_post_hook(self._hook(stage)))
        self._last_stage_module = _get_sublayer(self.model, self._info[n_stages - 1]["module"])

    # -- stage bookkeeping ---------------------------------------------------------------------
    def _partition_parameters(self) -> dict:
        """Parameter name -> stage index (-1: stem; None: after the last used stage)."""
        names = [n for n, _ in self.model.named_parameters()]
        ends = []
        for stage in self._info:
            prefix = stage["module"] + "."
            last = max((i for i, n in enumerate(names) if n.startswith(prefix)), default=None)
            if last is None:
                raise ConfigError(f"{self.name}: stage module {stage['module']} has no parameters")
            ends.append(last)
        first_stage_prefix = self._info[0]["module"].rsplit(".", 1)[0] + "."
        stage_of, s = {}, 0
        for i, n in enumerate(names):
            while s < len(ends) and i > ends[s]:
                s += 1
            if s >= len(ends):
                stage_of[n] = None
            elif s == 0 and not n.startswith(first_stage_prefix):
                stage_of[n] = -1  # stem: parameters before the first stage's container
            else:
                stage_of[n] = s
        return stage_of

    def _stage_layers(self, stage: int):
        """Blocks of ``stage`` (children of the stage container between two feature modules)."""
        from ..models._features import _get_sublayer

        path = self._info[stage]["module"]
        parent, _, idx = path.rpartition(".")
        if not idx.isdigit():
            return [_get_sublayer(self.model, path)]
        start = int(self._info[stage - 1]["module"].rpartition(".")[2]) + 1 if stage > 0 and \
            self._info[stage - 1]["module"].rpartition(".")[0] == parent else 0
        container = _get_sublayer(self.model, parent)
        return [container[i] for i in range(start, int(idx) + 1)]

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
            if stage is None and ".conv_offset." in name:  # DCN offsets added after partitioning
                stage = self._stage_of.get(name.split(".conv_offset.")[0] + ".weight")
            if stage is None:
                continue
            if stage in frozen_stages:
                p.stop_gradient = True
            elif stage >= 0:
                p.optimize_attr["learning_rate"] = self.lr_mult_list[stage]
        if self.freeze_norm:
            for layer in self.model.sublayers():
                if isinstance(layer, nn.layer.norm._BatchNormBase):
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


class HubclsResNet(HubclsBackbone):
    """ResNet / ResNet-vd backbone with PaddleDetection's ResNet arguments (PSS-DET uses
    ``depth=50, variant='d', freeze_at=0, dcn_v2_stages=[1, 2, 3], lr_mult_list=[0.05, 0.05, 0.1, 0.15]``
    with ResNet50_vd_ssld weights)."""

    def __init__(self, depth: int = 50, variant: str = "d", pretrained=False, weights: Optional[str] = None,
                 return_idx: Sequence[int] = (0, 1, 2, 3), freeze_at: int = 0, norm_type: str = "bn",
                 freeze_norm: bool = True, lr_mult_list: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                 dcn_v2_stages: Sequence[int] = (-1,), num_stages: int = 4):
        if variant not in ("b", "d"):
            raise ConfigError(f"variant: {variant!r} is not one of 'b' (ResNet), 'd' (ResNet-vd)")
        if depth not in (18, 34, 50, 101, 152, 200):
            raise ConfigError(f"depth: {depth} is not one of 18, 34, 50, 101, 152, 200")
        name = f"ResNet{depth}" + ("_vd" if variant == "d" else "")
        if weights:  # weight variant such as ResNet50_vd_ssld: same architecture, other weights
            name = weights
        super().__init__(name, pretrained=pretrained, return_idx=return_idx, freeze_at=freeze_at,
                         norm_type=norm_type, freeze_norm=freeze_norm, lr_mult_list=lr_mult_list,
                         dcn_v2_stages=dcn_v2_stages, num_stages=num_stages)
