"""create_model: name -> architecture (+ weights), the one entry point every caller uses."""
from __future__ import annotations

import logging
import os
import types
from pathlib import Path
from typing import Optional, Sequence, Union

from ..errors import WeightsError
from ._pretrained import PretrainedCfg
from ._registry import get_arch, resolve

log = logging.getLogger("hubcls.models")


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://", "file://"))


def _build(builder, num_classes, kwargs, lazy: bool):
    """Build the model. When weights will be loaded right away, parameters are created lazily
    (paddle.LazyGuard) so their random initialisation - seconds for big models - is skipped;
    whatever the file does not set (a fine-tuning classifier) is initialised afterwards."""
    if lazy:
        from .._paddle import import_paddle

        paddle = import_paddle()
        guard = getattr(paddle, "LazyGuard", None)
        if guard is not None:
            try:
                with guard():
                    return builder(num_classes=num_classes, **kwargs)
            except Exception:  # noqa: BLE001 - a family that reads its parameters while building
                log.debug("lazy build failed; building eagerly", exc_info=True)
    return builder(num_classes=num_classes, **kwargs)


def _initialize_lazy(model):
    for p in list(model.parameters()) + list(model.buffers()):
        is_init = getattr(p, "_is_initialized", None)
        if is_init is not None and not is_init() and hasattr(p, "initialize"):
            p.initialize()


def create_model(
    name: str,
    pretrained: Union[bool, str, os.PathLike] = False,
    num_classes: Optional[int] = None,
    features_only: bool = False,
    out_indices: Optional[Sequence[int]] = None,
    **kwargs,
):
    """Build a registered model.

    name: PaddleClas spelling (``ResNet50_vd_ssld``), snake case, or a PaddleHub module name
        (``resnet50_vd_imagenet_ssld``); weight variants resolve to their architecture + weights.
    pretrained: False (random init); True (the official weights, downloaded into the cache);
        a local file (.pdparams in either PaddleClas key scheme, .safetensors, a static .tar or
        directory of per-parameter files); a directory written by ``save_pretrained``; or a URL.
    num_classes: classifier size (default: the weights' class count, 1000 for ImageNet-1k). A
        different size keeps every pretrained weight except the classifier (fine-tuning).
    features_only / out_indices: return a multi-scale feature extractor (see _features.py).
    kwargs: passed to the architecture builder.
    """
    cfg: Optional[PretrainedCfg] = None
    source = None
    if isinstance(pretrained, (str, os.PathLike)) and not isinstance(pretrained, bool):
        source = str(pretrained)
        p = Path(source).expanduser()
        if not _is_url(source) and p.is_dir() and (p / "config.json").is_file():
            from ._weights import read_saved_config

            cfg = read_saved_config(p)
    if cfg is None:
        cfg = resolve(name)
    # locate (download) the weights before building, so a missing file fails fast
    path = None
    if pretrained is True:
        if not cfg.has_weights:
            raise WeightsError(f"{cfg.name} has no official pretrained weights; "
                               f"models with weights: hubcls.list_models(pretrained=True)")
        from ._download import fetch_weights

        path = fetch_weights(cfg)
    elif source is not None:
        if _is_url(source):
            from ._download import download

            path = download(source)
        else:
            path = Path(source).expanduser()
            if not path.exists():
                raise WeightsError(f"pretrained={source!r}: no such file or directory")
    elif pretrained not in (False, None):
        raise TypeError(f"pretrained must be bool, a path or a URL, got {type(pretrained).__name__}")

    builder = get_arch(cfg.arch)
    n_cls = cfg.num_classes if num_classes is None else int(num_classes)
    model = _build(builder, n_cls, kwargs, lazy=path is not None)
    if n_cls != cfg.num_classes:
        cfg = cfg.with_(num_classes=n_cls)
    model.pretrained_cfg = cfg
    model.num_classes = n_cls
    if not hasattr(model, "save_pretrained"):
        from ._weights import save_pretrained

        model.save_pretrained = types.MethodType(save_pretrained, model)
    if path is not None:
        from ._weights import load_pretrained

        try:
            load_pretrained(model, path)
        finally:
            _initialize_lazy(model)

    if features_only:
        from ._features import FeatureExtractor

        return FeatureExtractor(model, out_indices)
    return model
