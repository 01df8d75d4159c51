"""Building a model from a resolved pretrained cfg: architecture + weights (``build_from_cfg``).

``create_model`` (_resolve.py) is the entry point every caller uses: it resolves any model form,
then builds through here."""
from __future__ import annotations

import logging
import os
import types
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

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


def locate_weights(cfg: PretrainedCfg, weights: Union[bool, str, os.PathLike, None]) -> Optional[Path]:
    """The local file behind ``weights`` (True: ``cfg``'s official file, downloaded into the cache;
    a URL: downloaded and verified; a path: checked to exist; False/None: None)."""
    if weights is True:
        if not cfg.has_weights:
            raise WeightsError(f"{cfg.name} has no official pretrained weights; "
                               f"models with weights: hubcls.list_models(pretrained=True)")
        from ._download import fetch_weights

        return fetch_weights(cfg)
    if isinstance(weights, (str, os.PathLike)) and not isinstance(weights, bool):
        source = os.fspath(weights)
        if _is_url(source):
            from ._download import download, validate_weights

            return download(source, validate=validate_weights)
        path = Path(source).expanduser()
        if not path.exists():
            raise WeightsError(f"pretrained={source!r}: no such file or directory")
        return path
    if weights not in (False, None):
        raise TypeError(f"weights must be bool, a path or a URL, got {type(weights).__name__}")
    return None


def build_from_cfg(cfg: PretrainedCfg, weights: Union[bool, str, os.PathLike, None], *, num_classes: Optional[int] = None,
                   features_only: bool = False, out_indices: Optional[Sequence[int]] = None,
                   kwargs: Optional[dict] = None) -> "paddle.nn.Layer":
    """Build ``cfg``'s architecture and load ``weights`` (True: official; False: none; a path; a URL).

    The classifier gets the weights' class count unless ``num_classes`` says otherwise (then the
    file's classifier is skipped with one info line: fine-tuning)."""
    kwargs = dict(kwargs or {})
    # locate (download) the weights before building, so a missing file fails fast
    path = locate_weights(cfg, weights)
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
        from ._package import labels_of

        # another head: names that do not fit it (the named model's ImageNet list) no longer describe it
        keep = labels_of(cfg, n_cls) is not None
        cfg = cfg.with_(num_classes=n_cls, **({} if keep else {"label_list": ""}))
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
