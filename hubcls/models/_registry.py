"""Model registry: architectures (builder functions) and the pretrained configs that name them.

Family files use::

    @register_model
    def ResNet50_vd(**kwargs):          # PaddleClas spelling; kwargs: num_classes, ...
        return ResNet(layers=50, variant="d", **kwargs)

    register_pretrained(PretrainedCfg(name="ResNet50_vd_ssld", arch="ResNet50_vd", ...))

Names resolve case-insensitively, in PaddleClas spelling (``ResNet50_vd_ssld``), snake case
(``resnet50_vd_ssld``) and PaddleHub's module names (``resnet50_vd_imagenet_ssld``).
"""
from __future__ import annotations

import re
from typing import Dict, Optional

from ..errors import RegistryError
from ..registry import Registry
from ._pretrained import PretrainedCfg


def _load_plugins(registry: Registry) -> None:
    # Entry-point plugins (group "hubcls.backbones") fill this registry on first lookup.
    try:
        from ..plugins import load_entry_points
    except ImportError:
        return
    load_entry_points("hubcls.backbones", registry)


ARCHS = Registry("backbone", on_first_lookup=_load_plugins)
_PRETRAINED: Dict[str, PretrainedCfg] = {}


def _canonical(name: str) -> str:
    """Lower-case key that makes PaddleClas, snake-case and PaddleHub spellings agree."""
    key = str(name).strip().lower().replace("-", "_")
    key = key.replace("_imagenet", "")  # PaddleHub: resnet50_vd_imagenet_ssld -> resnet50_vd_ssld
    return re.sub(r"_+", "_", key)


def register_model(fn=None, *, name: Optional[str] = None, origin: Optional[str] = None):
    """Register an architecture builder ``fn(**kwargs) -> paddle.nn.Layer``."""

    def _do(f):
        ARCHS.register(f, name=_canonical(name or f.__name__), origin=origin)
        # keep the display spelling for list_models
        ARCHS._names[_canonical(name or f.__name__)] = name or f.__name__
        return f

    return _do(fn) if fn is not None else _do


def register_pretrained(cfg: PretrainedCfg) -> PretrainedCfg:
    key = _canonical(cfg.name)
    if key in _PRETRAINED and _PRETRAINED[key] != cfg:
        raise RegistryError(f"duplicate pretrained config {cfg.name!r}")
    _PRETRAINED[key] = cfg
    return cfg


def resolve(name: str) -> PretrainedCfg:
    """Name (any spelling) -> its pretrained config; an architecture without weights gets a bare one."""
    key = _canonical(name)
    if key in _PRETRAINED:
        return _PRETRAINED[key]
    if key in ARCHS:
        return PretrainedCfg(name=ARCHS._names[key], arch=ARCHS._names[key])
    import difflib

    pool = sorted(set(_PRETRAINED) | set(ARCHS._items))
    close = difflib.get_close_matches(key, pool, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise RegistryError(f"unknown model {name!r}{hint} (see `hubcls models`)")


def get_arch(name: str):
    return ARCHS.get(_canonical(name))


def pretrained_cfgs() -> Dict[str, PretrainedCfg]:
    ARCHS._ensure_loaded()
    return dict(_PRETRAINED)
