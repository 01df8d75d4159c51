"""The backbone contract every family implements, and ``features_only`` multi-scale extraction.

Contract (subclass :class:`Backbone`, or provide the same attributes yourself):

* ``forward_features(x)`` -> the last feature map (N, C, H, W) *before* global pooling.
* ``forward_head(x, pre_logits=False)`` -> logits from that map (pool, flatten, dropout, classifier).
  ``forward(x) == forward_head(forward_features(x))``.
* ``num_features`` -> channels entering the classifier (after any head conv).
* ``classifier_name`` -> attribute path of the final ``nn.Linear`` (e.g. ``"fc"``, ``"out"``).
  The generic ``get_classifier`` / ``reset_classifier(num_classes)`` and the weight loader (which
  lets only this layer differ in shape when fine-tuning) use it. A family whose head is not a single
  Linear (e.g. a 1x1 conv) overrides ``reset_classifier`` and sets ``classifier_name`` to that layer.
* ``feature_info`` -> list of dicts, one per stage, shallow to deep::

      dict(num_chs=256, reduction=4, module="blocks.2")

  ``module`` is the attribute path (as in ``named_sublayers()``) of the layer whose *output* is the
  stage's feature map, ``reduction`` its stride relative to the input. features_only models hook
  these layers, run ``forward_features`` and return the hooked outputs, so a family only has to
  describe its stages - no second forward path to keep in sync.

* optional ``fixed_input_size`` (int): set when the classifier only accepts one input size (AlexNet,
  VGG, GoogLeNet: 224); ``min_input_size`` (int): smallest side the network accepts. The generic
  tests run every model at 64x64 unless one of these says otherwise.
* ``key_family`` (optional, default: the class name): the family name key maps are registered under.

``create_model(name, features_only=True, out_indices=(1, 2, 3))`` wraps the model in
:class:`FeatureExtractor`; the detection adapter (hubcls.det) builds on it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

from .._paddle import import_paddle

paddle = import_paddle()
nn = paddle.nn


def _get_sublayer(model, path: str):
    layer = model
    for part in path.split("."):
        if part.isdigit() and isinstance(layer, (nn.Sequential, nn.LayerList)):
            layer = layer[int(part)]
        else:
            layer = getattr(layer, part)
    return layer


def _set_sublayer(model, path: str, new):
    parent_path, _, leaf = path.rpartition(".")
    parent = _get_sublayer(model, parent_path) if parent_path else model
    if leaf.isdigit() and isinstance(parent, (nn.Sequential, nn.LayerList)):
        parent._sub_layers[leaf] = new
    else:
        setattr(parent, leaf, new)


class Backbone(nn.Layer):
    """Base class giving families the generic parts of the contract (see module docstring)."""

    classifier_name: str = "fc"
    feature_info: list = []
    num_features: int = 0

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:  # pragma: no cover - abstract
        """(N, 3, H, W) images -> the last feature map (N, C, h, w), before global pooling."""
        raise NotImplementedError

    def forward_head(self, x: paddle.Tensor, pre_logits: bool = False) -> paddle.Tensor:  # pragma: no cover
        """The last feature map -> logits (N, num_classes); ``pre_logits``: the pooled (N, num_features)
        vector that enters the classifier."""
        raise NotImplementedError

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """(N, 3, H, W) images -> logits (N, num_classes)."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Layer:
        """The final classifier layer (``self.<classifier_name>``)."""
        return _get_sublayer(self, self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one (``num_classes=0`` -> identity:
        forward then returns pooled features)."""
        reset_linear_classifier(self, num_classes)

    def save_pretrained(self, directory: Union[str, Path], **kwargs: Any) -> Path:
        """Write this model as a model package in ``directory`` (see hubcls.models._weights.save_pretrained)."""
        from ._weights import save_pretrained

        return save_pretrained(self, directory, **kwargs)


def reset_linear_classifier(model: nn.Layer, num_classes: int) -> None:
    """Replace ``model``'s Linear classifier (at ``classifier_name``) with a new one of ``num_classes``
    outputs, PaddleClas's initialisation; 0 -> identity (the model then returns pooled features)."""
    old = _get_sublayer(model, model.classifier_name)
    in_features = old.weight.shape[0] if isinstance(old, nn.Linear) else model.num_features
    if num_classes and num_classes > 0:
        new = linear(in_features, num_classes)
    else:
        new = nn.Identity()
    _set_sublayer(model, model.classifier_name, new)
    model.num_classes = num_classes


class FeatureExtractor(nn.Layer):
    """Returns the feature maps of the selected stages (``out_indices`` into ``feature_info``)."""

    def __init__(self, model, out_indices: Optional[Sequence[int]] = None):
        super().__init__()
        info = list(getattr(model, "feature_info", None) or [])
        if not info:
            raise ValueError(f"{type(model).__name__} does not describe its stages (feature_info); "
                             "features_only is not available for it")
        n = len(info)
        if out_indices is None:
            out_indices = tuple(range(n))
        idx = []
        for i in out_indices:
            j = i + n if i < 0 else i
            if not 0 <= j < n:
                raise ValueError(f"out_indices {tuple(out_indices)} out of range: "
                                 f"{type(model).__name__} has {n} stages (0..{n - 1})")
            idx.append(j)
        self.out_indices = tuple(idx)
        self.model = model
        self.feature_info = [dict(info[j]) for j in self.out_indices]
        self.pretrained_cfg = getattr(model, "pretrained_cfg", None)
        self._outs: dict = {}
        self._hooks = []
        for pos, j in enumerate(self.out_indices):
            layer = _get_sublayer(model, info[j]["module"])
            self._hooks.append(layer.register_forward_post_hook(self._make_hook(pos)))

    def _make_hook(self, pos):
        # a channels-last model (data_format='NHWC') hands its maps back in the common NCHW layout
        channels_last = getattr(self.model, "data_format", "NCHW") == "NHWC"

        def hook(layer, inputs, output):
            self._outs[pos] = paddle.transpose(output, [0, 3, 1, 2]) if channels_last else output
        return hook

    def remove_hooks(self) -> None:
        """Detach from the wrapped model (it keeps working as a classifier)."""
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def channels(self) -> List[int]:
        """Channels of each returned feature map."""
        return [f["num_chs"] for f in self.feature_info]

    def reduction(self) -> List[int]:
        """Stride of each returned feature map relative to the input."""
        return [f["reduction"] for f in self.feature_info]

    def forward(self, x: paddle.Tensor) -> List[paddle.Tensor]:
        self._outs = {}
        self.model.forward_features(x)
        outs, self._outs = self._outs, {}
        missing = [self.feature_info[p]["module"] for p in range(len(self.feature_info)) if p not in outs]
        if missing:
            raise RuntimeError(f"feature modules {missing} did not run in forward_features")
        return [outs[p] for p in range(len(self.feature_info))]


# the classifier constructor lives here, below _layers (which builds on Backbone), so that
# reset_classifier needs nothing from above
def linear(in_features: int, out_features: int, stdv: Optional[float] = None,
           static_names: Optional[Sequence[str]] = None) -> Union[nn.Linear, nn.Identity]:
    """Linear (classifier) with PaddleClas's init, uniform(-stdv, stdv), stdv = 1/sqrt(in) by default.
    ``out_features=0`` gives an identity (a headless model returns pooled features).
    ``static_names``: the Paddle 1.x (weight, bias) parameter names, recorded for the static loader."""
    if not out_features:
        return nn.Identity()
    stdv = 1.0 / math.sqrt(in_features) if stdv is None else stdv
    fc = nn.Linear(in_features, out_features,
                   weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-stdv, stdv)))
    if static_names is not None:
        fc._static_names = {"weight": static_names[0], "bias": static_names[1]}
    return fc
