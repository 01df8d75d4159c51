"""Model registry: architectures (builder functions) and the pretrained configs that name them.

Every family file registers its names the same way, so ``grep -n "def <Name>" hubcls/models/`` or
``grep -n '"<Name>"' hubcls/models/`` finds any of them::

    @register_model
    def ResNet50_vd(**kwargs: Any) -> ResNet:  # PaddleClas spelling; kwargs: num_classes, ...
        '''ResNet-50-vd.'''
        return ResNet(layers=50, variant="d", **kwargs)

    default_cfgs = [                           # the weight sets, facts from zoo.tsv
        zoo_cfg("ResNet50_vd"),
        zoo_cfg("ResNet50_vd_ssld", arch="ResNet50_vd"),
    ]
    register_pretrained(*default_cfgs)

Names resolve case-insensitively, in PaddleClas spelling (``ResNet50_vd_ssld``), snake case
(``resnet50_vd_ssld``, ``resnet_50``) and PaddleHub's module names (``resnet50_vd_imagenet_ssld``).
A plugin name that one of these spellings already reaches is refused (``ModelRegistry.find``).
"""
from __future__ import annotations

import difflib
import fnmatch
import re
from typing import Callable, Dict, Iterable, List, Optional, TypeVar, Union

from ..errors import RegistryError
from ..registry import Registry
from ._pretrained import PretrainedCfg

Builder = TypeVar("Builder", bound=Callable)


def canonical_name(name: str) -> str:
    """Lower-case key that makes PaddleClas, snake-case and PaddleHub spellings agree."""
    key = str(name).strip().lower().replace("-", "_")
    key = key.replace("_imagenet", "")  # PaddleHub: resnet50_vd_imagenet_ssld -> resnet50_vd_ssld
    return re.sub(r"_+", "_", key)


_canonical = canonical_name  # the name hub/ and older code import


class ModelRegistry(Registry):
    """The backbone registry: keys are :func:`canonical_name`; :meth:`find` applies every spelling
    rule of :func:`resolve` (aliases, PaddleHub patterns, underscores, weight-variant names), so a
    plugin can never silently take a name that already reaches a built-in."""

    def find(self, name: str) -> Optional[str]:
        cfg = _lookup(name)
        if cfg is None or self.key(cfg.arch) not in self._items:
            # a weight set whose architecture is not registered reaches nothing yet: it is the
            # plugin's own (a backbone plugin registers its weights on import, before its builder)
            return None
        return cfg.name

    def origin(self, name: str) -> str:
        """Where an architecture was registered; for a weight-variant name, where its architecture was."""
        if self.key(name) not in self.keys() and self.key(name) in _PRETRAINED:
            cfg = _PRETRAINED[self.key(name)]
            return f"pretrained weights of {cfg.arch}, {super().origin(cfg.arch)}"
        return super().origin(name)


def _first_lookup(registry: Registry) -> None:
    # the family files register on import of hubcls.models._families (before the plugins are read,
    # so a clash names the plugin's distribution)
    from . import _families  # noqa: F401


ARCHS = ModelRegistry("backbone", _first_lookup, group="hubcls.backbones", key=canonical_name)
_PRETRAINED: Dict[str, PretrainedCfg] = {}


def register_model(fn: Optional[Builder] = None, *, name: Optional[str] = None,
                   origin: Optional[str] = None) -> Union[Builder, Callable[[Builder], Builder]]:
    """Register an architecture builder ``fn(**kwargs) -> paddle.nn.Layer`` under its function name
    (or ``name``); usable as ``@register_model`` or ``@register_model(name=...)``."""

    def _do(f: Builder) -> Builder:
        ARCHS.register(f, name=name or f.__name__, origin=origin)
        return f

    return _do(fn) if fn is not None else _do


def register_pretrained(*cfgs: PretrainedCfg) -> None:
    """Register named weight sets (a family's ``default_cfgs``); a name registered twice with other
    facts is an error."""
    for cfg in cfgs:
        key = canonical_name(cfg.name)
        if key in _PRETRAINED and _PRETRAINED[key] != cfg:
            raise RegistryError(f"duplicate pretrained config {cfg.name!r}")
        _PRETRAINED[key] = cfg


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


def _ensure_families() -> None:
    # family files, then entry-point plugins (a plugin's pretrained configs register on its import,
    # before resolve() looks them up)
    ARCHS.load()


def _squash(key: str) -> str:
    return key.replace("_", "")


def _arch_cfg(key: str) -> PretrainedCfg:
    """A bare config (no weights) for a registered architecture key."""
    display = ARCHS.display_name(key)
    return PretrainedCfg(name=display, arch=display)


def _lookup(name: str) -> Optional[PretrainedCfg]:
    """What ``name`` reaches among the names registered so far (no loading, no error): a PaddleHub
    module name through its row of paddlehub_modules.tsv, anything else by the spelling rules."""
    from ._paddlehub import paddlehub_module

    hub = paddlehub_module(name)
    return _lookup_by_rules(hub.model if hub is not None and hub.model else name)


def _lookup_by_rules(name: str) -> Optional[PretrainedCfg]:
    """What ``name`` reaches by the spelling rules alone (aliases, patterns, underscores)."""
    key = canonical_name(name)
    if key in HUB_ALIASES:
        key = canonical_name(HUB_ALIASES[key])
    for pattern, repl in HUB_PATTERNS:
        m = pattern.match(key)
        if m:
            key = canonical_name(repl(m))
    if key in _PRETRAINED:
        return _PRETRAINED[key]
    if key in ARCHS:
        return _arch_cfg(key)
    # snake-case spellings that split words PaddleClas writes together (mobilenet_v2 -> MobileNetV2)
    squashed = _squash(key)
    hits = {k for k in set(_PRETRAINED) | set(ARCHS.keys()) if _squash(k) == squashed}
    if len(hits) == 1:
        (hit,) = hits
        return _PRETRAINED[hit] if hit in _PRETRAINED else _arch_cfg(hit)
    return None


def resolve(name: str) -> PretrainedCfg:
    """Name (any spelling) -> its pretrained config; an architecture without weights gets a bare one."""
    _ensure_families()
    cfg = _lookup(name)
    if cfg is not None:
        return cfg
    from ._paddlehub import paddlehub_module

    hub = paddlehub_module(name)
    if hub is not None:  # a PaddleHub module hubcls does not have
        raise RegistryError(f"{name!r} is a PaddleHub module hubcls does not provide ({hub.note}); "
                            f"see `hubcls models` for the models it has")
    pool = sorted(set(_PRETRAINED) | set(ARCHS.keys()))
    close = difflib.get_close_matches(canonical_name(name), pool, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise RegistryError(f"unknown model {name!r}{hint} (see `hubcls models`)")


def get_arch(name: str) -> Callable:
    """The builder registered as architecture ``name`` (any spelling of the architecture itself)."""
    return ARCHS.get(name)


def pretrained_cfgs() -> Dict[str, PretrainedCfg]:
    """Every registered weight set, by canonical name."""
    _ensure_families()
    return dict(_PRETRAINED)


def list_models(pattern: Union[str, Iterable[str]] = "*", pretrained: Optional[bool] = None) -> List[str]:
    """Model names (PaddleClas spelling) matching a shell wildcard, case-insensitively.

    ``pretrained=True``: only names with official weights; ``False``: only names without; ``None``: all.
    Architectures and weight variants (``ResNet50_vd_ssld``) are both listed.
    """
    _ensure_families()
    names = {key: resolve(key) for key in ARCHS.keys()}
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
_KEY_MAPS: Dict[str, Dict[str, Callable]] = {}


def register_key_map(family: str, fn: Optional[Callable] = None, *, scheme: str = "2.0") -> Callable:
    """Register ``fn(model) -> {model_key: file_key}`` as the ``scheme`` names of ``family``'s
    parameters (usable as a decorator)."""

    def _do(f: Callable) -> Callable:
        maps = _KEY_MAPS.setdefault(family.lower(), {})
        if scheme in maps and maps[scheme] is not f:
            raise RegistryError(f"duplicate key map for family {family!r} scheme {scheme!r}")
        maps[scheme] = f
        return f

    return _do(fn) if fn is not None else _do


def key_maps_for(model: object) -> Dict[str, Callable]:
    """Every key map registered for ``model``'s family (``key_family`` or class name), by scheme."""
    family = getattr(model, "key_family", None) or type(model).__name__
    return dict(_KEY_MAPS.get(family.lower(), {}))
