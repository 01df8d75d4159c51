"""Entry-point plugins: third-party packages that add backbones, augmenters and the other registries' entries.

A plugin is an ordinary pip package that declares entry points in its ``pyproject.toml``::

    [project.entry-points."hubcls.backbones"]
    PPLCNet_x1_0 = "hubcls_plugin_pplcnet.model:PPLCNet_x1_0"

    [project.entry-points."hubcls.augmenters"]
    TrivialAugment = "hubcls_plugin_pplcnet.augment:TrivialAugment"

The entry-point *name* is the registered name; the object it points to is what gets registered (a
model builder ``fn(**kwargs) -> paddle.nn.Layer`` or an augmenter class). The module that holds the
object may declare ``HUBCLS_PLUGIN_API = <int>``; a plugin built for another major API version is
skipped with a warning.

Rules (see docs/plugins.md):

* Every registry made with ``Registry(kind, group=...)`` reads its group here, lazily, on its first
  lookup (:meth:`hubcls.registry.Registry.load`), never at ``import hubcls``. :data:`GROUPS` lists
  the groups and the registry each one fills.
* Names are compared after the registry's own normalisation (for backbones: the spelling rules of
  ``create_model``, so ``resnet_50`` is ``ResNet50``). Two distributions that declare the same name
  in one group is an error that names both; a plugin name that reaches a built-in (or an earlier
  plugin) is an error that names the distribution and where the first came from.
* A plugin that fails to import - any exception, ``SystemExit`` included (only ``KeyboardInterrupt``
  goes through) - or has an incompatible API version is a warning; everything else keeps working.
  ``hubcls plugins`` shows what is installed, from where, and what failed.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .errors import RegistryError

if TYPE_CHECKING:
    from .registry import Registry

#: The plugin API version this hubcls implements. Bumped on incompatible changes to what
#: registered objects must look like (builder signature, augmenter call protocol).
PLUGIN_API_VERSION = 1

#: entry-point group -> the registry it fills ("module:attribute"; imported only by plugin_report).
GROUPS: Dict[str, str] = {
    "hubcls.backbones": "hubcls.models._registry:ARCHS",
    "hubcls.augmenters": "hubcls.data.transforms:AUGMENTERS",
    "hubcls.batch_augmenters": "hubcls.data.transforms:BATCH_OPS",
    "hubcls.datasets": "hubcls.data.datasets:DATASETS",
    "hubcls.losses": "hubcls.engine.losses:LOSSES",
    "hubcls.distill_losses": "hubcls.engine.losses:DISTILL_LOSSES",
    "hubcls.metrics": "hubcls.engine.metrics:METRICS",
    "hubcls.optimizers": "hubcls.engine.optim:OPTIMIZERS",
    "hubcls.lr_schedules": "hubcls.engine.optim:LR_SCHEDULES",
    "hubcls.backends": "hubcls.deploy.backends:BACKENDS",
}


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the rest of hubcls keeps working."""


@dataclass
class PluginRecord:
    """One entry point of one distribution, and what became of it."""
    group: str
    name: str
    value: str                 # "module:attr"
    dist: str                  # distribution name (or "<unknown>")
    dist_version: str
    location: str              # where the distribution is installed
    status: str = "not loaded"  # "loaded" | "not loaded" | "failed" | "incompatible" | "duplicate"
    error: str = ""


# group -> records of the last load (what `hubcls plugins` reports)
_RECORDS: Dict[str, List[PluginRecord]] = {}


def _dist_info(ep: Any) -> Tuple[str, str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "<unknown>", "", ""
    name = dist.metadata["Name"] or "<unknown>"
    try:
        location = str(dist.locate_file(""))  # the sys.path entry the distribution lives in
    except Exception:  # noqa: BLE001 - location is informational only
        location = ""
    return name, dist.version or "", location


def discover(group: str) -> List[PluginRecord]:
    """Entry points declared in ``group`` (deduplicated), without importing them."""
    seen = set()
    records = []
    for ep in metadata.entry_points(group=group):
        dist, version, location = _dist_info(ep)
        key = (dist.lower(), ep.name.lower(), ep.value)
        if key in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(key)
        records.append(PluginRecord(group, ep.name, ep.value, dist, version, location))
    return records


def _check_api(obj: Any, record: PluginRecord) -> Optional[str]:
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    declared = getattr(obj, "HUBCLS_PLUGIN_API", None)
    if declared is None and module is not None:
        declared = getattr(module, "HUBCLS_PLUGIN_API", None)
    if declared is None:
        return None  # undeclared: assume the current API
    try:
        major = int(str(declared).split(".")[0])
    except ValueError:
        return f"declares HUBCLS_PLUGIN_API={declared!r}, which is not a version number"
    if major != PLUGIN_API_VERSION:
        return (f"declares HUBCLS_PLUGIN_API={declared!r} but this hubcls implements API "
                f"{PLUGIN_API_VERSION}; upgrade {record.dist} or hubcls")
    return None


def _load_object(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    obj = importlib.import_module(module_name.strip())
    for part in attr.strip().split(".") if attr.strip() else []:
        obj = getattr(obj, part)
    return obj


def load_entry_points(group: str, registry: "Registry") -> List[PluginRecord]:
    """Import every entry point of ``group`` and register it in ``registry``.

    Raises RegistryError when two distributions declare the same name (naming both) or a plugin
    name reaches an entry already registered (a built-in, or an earlier plugin). Import failures
    (SystemExit included) and API mismatches only warn.
    """
    records = discover(group)
    _RECORDS[group] = records
    by_key: Dict[str, PluginRecord] = {}
    for rec in records:
        key = registry.key(rec.name)
        if key in by_key and by_key[key].dist.lower() != rec.dist.lower():
            first = by_key[key]
            first.status = rec.status = "duplicate"
            raise RegistryError(
                f"plugin name {rec.name!r} in entry-point group {group!r} is declared by two "
                f"distributions: {first.dist} {first.dist_version} ({first.name} = {first.value}) and "
                f"{rec.dist} {rec.dist_version} ({rec.name} = {rec.value}); uninstall one of them"
            )
        by_key[key] = rec

    for rec in records:
        origin = f"distribution {rec.dist} {rec.dist_version} (entry point {rec.name} = {rec.value})"
        try:
            obj = _load_object(rec.value)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a plugin's bug (even sys.exit()) must not end hubcls
            rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"hubcls plugin {rec.name!r} ({group}) from {rec.dist} {rec.dist_version} failed to "
                f"import and is skipped: {rec.error}",
                PluginWarning,
                stacklevel=2,
            )
            continue
        problem = _check_api(obj, rec)
        if problem:
            rec.status, rec.error = "incompatible", problem
            warnings.warn(f"hubcls plugin {rec.name!r} ({group}) from {rec.dist} is skipped: {problem}",
                          PluginWarning, stacklevel=2)
            continue
        existing = registry.find(rec.name)
        if existing is not None:
            rec.status = "duplicate"
            rec.error = (f"the name {rec.name!r} already means {registry.kind} {existing!r} "
                         f"(registered by {registry.origin(existing)})")
            raise RegistryError(f"plugin {rec.name!r} ({group}) from {origin} clashes: {rec.error}; "
                                f"rename the entry point")
        registry.register(obj, name=rec.name, origin=origin)
        rec.status = "loaded"
    return records


def registry_for(group: str) -> "Registry":
    """The registry an entry-point group fills (imports its module)."""
    module_name, _, attr = GROUPS[group].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def plugin_report(load: bool = True) -> List[PluginRecord]:
    """Every plugin of every group; with ``load`` the registries are loaded so statuses are real."""
    if load:
        for group in GROUPS:
            try:
                registry_for(group).load()
            except RegistryError as exc:
                for rec in _RECORDS.get(group, []):
                    if rec.status == "not loaded":
                        rec.error = str(exc)
    out = []
    for group in GROUPS:
        out.extend(_RECORDS.get(group) or discover(group))
    return out
