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
from ._pretrained import PretrainedCfg, zoo_cfg


def _load_plugins(registry: Registry) -> None:
    # Entry-point plugins (group "hubcls.backbones") fill this registry on first lookup.
    try:
        from ..plugins import load_entry_points
    except ImportError:
        return
    load_entry_points("hubcls.backbones", registry)


def _first_lookup(registry: Registry) -> None:
    _ensure_families()
    _load_plugins(registry)


ARCHS = Registry("backbone", on_first_lookup=_first_lookup)
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


# PaddleHub module names that do not reduce to a PaddleClas name by spelling rules alone.
HUB_ALIASES = {
    "mobilenet_v3_large_ssld": "MobileNetV3_large_x1_0_ssld",
    "mobilenet_v3_small_ssld": "MobileNetV3_small_x1_0_ssld",
    "mobilenet_v3_large": "MobileNetV3_large_x1_0",
    "mobilenet_v3_small": "MobileNetV3_small_x1_0",
    "mobilenet_v1": "MobileNetV1",
    "mobilenet_v2": "MobileNetV2",
    "mobilenet_v2_ssld": "MobileNetV2_ssld",
    "mobilenet_v1_ssld": "MobileNetV1_ssld",
    "resnet50_vd_10w": "ResNet50_vd_10w",
    "shufflenet_v2": "ShuffleNetV2_x1_0",
}


# PaddleHub spellings with a number where PaddleClas has W<n>_C: hrnet18_imagenet_ssld -> HRNet_W18_C_ssld
HUB_PATTERNS = [
    (re.compile(r"^(se_)?hrnet(\d+)(_ssld)?$"), lambda m: f"{'SE_' if m.group(1) else ''}HRNet_W{m.group(2)}_C{m.group(3) or ''}"),
]


def _ensure_families():
    # the family files register on import of hubcls.models
    from . import _families  # noqa: F401

    # then entry-point plugins (after the built-ins, so a clash names the plugin's distribution);
    # a plugin's pretrained configs register on its import, before resolve() looks them up
    ARCHS._ensure_loaded()


def _squash(key: str) -> str:
    return key.replace("_", "")


def resolve(name: str) -> PretrainedCfg:
    """Name (any spelling) -> its pretrained config; an architecture without weights gets a bare one."""
    _ensure_families()
    key = _canonical(name)
    if key in HUB_ALIASES:
        key = _canonical(HUB_ALIASES[key])
    for pattern, repl in HUB_PATTERNS:
        m = pattern.match(key)
        if m:
            key = _canonical(repl(m))
    if key in _PRETRAINED:
        return _PRETRAINED[key]
    if key in ARCHS:
        return PretrainedCfg(name=ARCHS._names[key], arch=ARCHS._names[key])
    # snake-case spellings that split words PaddleClas writes together (mobilenet_v2 -> MobileNetV2)
    squashed = _squash(key)
    hits = {k for k in set(_PRETRAINED) | set(ARCHS._items) if _squash(k) == squashed}
    if len(hits) == 1:
        (hit,) = hits
        return _PRETRAINED[hit] if hit in _PRETRAINED else PretrainedCfg(name=ARCHS._names[hit], arch=ARCHS._names[hit])
    import difflib

    pool = sorted(set(_PRETRAINED) | set(ARCHS._items))
    close = difflib.get_close_matches(key, pool, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise RegistryError(f"unknown model {name!r}{hint} (see `hubcls models`)")


def get_arch(name: str):
    _ensure_families()
    return ARCHS.get(_canonical(name))


def pretrained_cfgs() -> Dict[str, PretrainedCfg]:
    _ensure_families()
    ARCHS._ensure_loaded()
    return dict(_PRETRAINED)


def list_models(pattern: str = "*", pretrained: Optional[bool] = None) -> list:
    """Model names (PaddleClas spelling) matching a shell wildcard, case-insensitively.

    ``pretrained=True``: only names with official weights; ``False``: only names without; ``None``: all.
    Architectures and weight variants (``ResNet50_vd_ssld``) are both listed.
    """
    import fnmatch

    _ensure_families()
    ARCHS._ensure_loaded()
    names = {}
    for key in ARCHS._items:
        names[key] = resolve(key)
    names.update(_PRETRAINED)
    pats = [pattern] if isinstance(pattern, str) else list(pattern)
    pats = [p.lower() for p in pats]
    out = []
    for key, cfg in names.items():
        if not any(fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(cfg.name.lower(), p) for p in pats):
            continue
        if pretrained is not None and bool(cfg.has_weights) != bool(pretrained):
            continue
        out.append(cfg.name)
    return sorted(set(out), key=lambda n: n.lower())


# ---------------------------------------------------------------------------------------------
# Key maps: how a family's parameters are named in *other* weight-file schemes.
#
#   register_key_map("ResNet", fn, scheme="2.0")
#
# ``fn(model) -> {model_state_key: file_key}`` for every key of ``model.state_dict()`` that the scheme
# names. The family is ``getattr(model, "key_family", type(model).__name__)``. The weight loader tries
# the model's own names plus every scheme registered for its family and keeps the one that covers
# the file's keys; static (Paddle 1.x) names are also gathered from layers' ``_static_names``.
_KEY_MAPS: Dict[str, Dict[str, object]] = {}


def register_key_map(family: str, fn=None, *, scheme: str = "2.0"):
    def _do(f):
        maps = _KEY_MAPS.setdefault(family.lower(), {})
        if scheme in maps and maps[scheme] is not f:
            raise RegistryError(f"duplicate key map for family {family!r} scheme {scheme!r}")
        maps[scheme] = f
        return f

    return _do(fn) if fn is not None else _do


def key_maps_for(model) -> Dict[str, object]:
    family = getattr(model, "key_family", None) or type(model).__name__
    return dict(_KEY_MAPS.get(family.lower(), {}))


def register_zoo_member(name: str, cls, **arch_kwargs):
    """Register architecture ``name`` = ``cls(**arch_kwargs, **kwargs)`` and its zoo-table weights;
    returns the builder (for the family files' many ``Family<N> = ...`` one-liners)."""

    def builder(**kwargs):
        return cls(**arch_kwargs, **kwargs)

    builder.__name__ = builder.__qualname__ = name
    register_model(builder)
    register_pretrained(zoo_cfg(name))
    return builder
