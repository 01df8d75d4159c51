"""create_model: name -> architecture (+ weights), the one entry point every caller uses."""
from __future__ import annotations

import logging
import os
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from ..errors import WeightsError
from ._pretrained import PretrainedCfg
from ._registry import get_arch

if TYPE_CHECKING:
    import paddle

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
    **kwargs: Any,
) -> "paddle.nn.Layer":
    """Build a registered model.

    name: PaddleClas spelling (``ResNet50_vd_ssld``), snake case, or a PaddleHub module name
        (``resnet50_vd_imagenet_ssld``); weight variants resolve to their architecture + weights.
        Also any other form the model resolver accepts (a model package, a training run, an export
        directory with weights, a PaddleHub module directory; see _resolve.py): directories bring
        their own weights, class names and preprocessing.
    pretrained: False (random init); True (the official weights, downloaded into the cache);
        a local file (.pdparams in either PaddleClas key scheme, .safetensors, a static .tar or
        directory of per-parameter files); a model package / run directory; or a URL.
    num_classes: classifier size. Default: the weights' class count (a 6-class fine-tuned file
        gives a 6-class model), 1000 for ImageNet-1k. A size other than the file's keeps every
        pretrained weight except the classifier, which is freshly initialised (fine-tuning; one
        info line says so).
    features_only / out_indices: return a multi-scale feature extractor (see _features.py).
    kwargs: passed to the architecture builder.
    """
    from ._resolve import resolve_model

    is_path = isinstance(name, os.PathLike) or (isinstance(name, str) and _is_path(name))
    if pretrained is False or pretrained is None:
        weights = None if is_path else False  # a directory brings its own weights
    elif isinstance(pretrained, (str, os.PathLike)) and not isinstance(pretrained, bool):
        weights = os.fspath(pretrained)
        if not _is_url(weights) and not Path(weights).expanduser().exists():
            raise WeightsError(f"pretrained={weights!r}: no such file or directory")
    elif pretrained is True:
        weights = True
    else:
        raise TypeError(f"pretrained must be bool, a path or a URL, got {type(pretrained).__name__}")
    source = resolve_model(name, weights=weights)
    return source.create(num_classes=num_classes, features_only=features_only, out_indices=out_indices, **kwargs)


def _is_path(name: str) -> bool:
    from ._resolve import _looks_like_path

    return _looks_like_path(name)


def build_from_cfg(cfg: PretrainedCfg, weights: Union[bool, str, os.PathLike, None], *, num_classes: Optional[int] = None,
                   features_only: bool = False, out_indices: Optional[Sequence[int]] = None,
                   kwargs: Optional[dict] = None) -> "paddle.nn.Layer":
    """Build ``cfg``'s architecture and load ``weights`` (True: official; False: none; a path; a URL).

    The classifier gets the weights' class count unless ``num_classes`` says otherwise (then the
    file's classifier is skipped with one info line: fine-tuning)."""
    kwargs = dict(kwargs or {})
    # locate (download) the weights before building, so a missing file fails fast
    path = None
    if weights is True:
        if not cfg.has_weights:
            raise WeightsError(f"{cfg.name} has no official pretrained weights; "
                               f"models with weights: hubcls.list_models(pretrained=True)")
        from ._download import fetch_weights

        path = fetch_weights(cfg)
    elif isinstance(weights, (str, os.PathLike)) and not isinstance(weights, bool):
        source = os.fspath(weights)
        if _is_url(source):
            from ._download import download, validate_weights

            path = download(source, validate=validate_weights)
        else:
            path = Path(source).expanduser()
            if not path.exists():
                raise WeightsError(f"pretrained={source!r}: no such file or directory")
    elif weights not in (False, None):
        raise TypeError(f"weights must be bool, a path or a URL, got {type(weights).__name__}")

    builder = get_arch(cfg.arch)
    n_cls = cfg.num_classes if num_classes is None else int(num_classes)
    model = _build(builder, n_cls, kwargs, lazy=path is not None)
    state = None
    if path is not None:
        from ._weights import head_num_classes, read_state

        state = read_state(path)
        n_file = head_num_classes(model, state)
        if num_classes is None and n_file is not None and n_file != n_cls:
            # inference never runs an untrained head: the file's classifier decides the class count
            log.debug("%s: the weights' classifier has %d classes (the named model: %d)", path, n_file, n_cls)
            n_cls = n_file
            model = _build(builder, n_cls, kwargs, lazy=True)
    if n_cls != cfg.num_classes:
        # another head: the named model's class names no longer describe it
        cfg = cfg.with_(num_classes=n_cls, label_list="")
    model.pretrained_cfg = cfg
    model.num_classes = n_cls
    model.arch_kwargs = dict(kwargs)
    if not hasattr(model, "save_pretrained"):
        from ._package import save_pretrained

        model.save_pretrained = types.MethodType(save_pretrained, model)
    if path is not None:
        from ._weights import load_pretrained

        try:
            load_pretrained(model, path, state=state)
        finally:
            _initialize_lazy(model)

    if features_only:
        from ._features import FeatureExtractor

        return FeatureExtractor(model, out_indices)
    return model
