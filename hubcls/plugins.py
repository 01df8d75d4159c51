"""Entry-point plugins: third-party packages that add backbones and augmenters.

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

* Entry points are read lazily, on the first lookup in a registry (the registries call
  :func:`load_entry_points` through their ``on_first_lookup`` hook), never at ``import hubcls``.
* Two distributions that declare the same name in one group is an error that names both.
  A plugin name that collides with a built-in is an error that names the distribution and the
  built-in's origin (the registry raises it).
* A plugin that fails to import (or has an incompatible API version) is a warning; everything else
  keeps working. ``hubcls plugins`` shows what is installed, from where, and what failed.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Dict, List, Optional

from .errors import RegistryError

#: The plugin API version this hubcls implements. Bumped on incompatible changes to what
#: registered objects must look like (builder signature, augmenter call protocol).
PLUGIN_API_VERSION = 1

GROUPS = ("hubcls.backbones", "hubcls.augmenters")


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the rest of hubcls keeps working."""


@dataclass
class PluginRecord:
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


def _dist_info(ep) -> tuple:
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


def _check_api(obj, record: PluginRecord) -> Optional[str]:
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


def _load_object(value: str):
    module_name, _, attr = value.partition(":")
    obj = importlib.import_module(module_name.strip())
    for part in attr.strip().split(".") if attr.strip() else []:
        obj = getattr(obj, part)
    return obj


def _register_fn(group: str, registry):
    if group == "hubcls.backbones":
        # the model registry canonicalises names (PaddleClas / snake case / PaddleHub spellings)
        from .models._registry import ARCHS, register_model

        if registry is ARCHS:
            return lambda obj, name, origin: register_model(obj, name=name, origin=origin)
    return lambda obj, name, origin: registry.register(obj, name=name, origin=origin)


def load_entry_points(group: str, registry) -> List[PluginRecord]:
    """Import every entry point of ``group`` and register it in ``registry``.

    Raises RegistryError when two distributions declare the same name (naming both) or a plugin
    name collides with a built-in. Import failures and API mismatches only warn.
    """
    records = discover(group)
    _RECORDS[group] = records
    by_name: Dict[str, PluginRecord] = {}
    for rec in records:
        key = rec.name.lower()
        if key in by_name and by_name[key].dist.lower() != rec.dist.lower():
            first = by_name[key]
            first.status = rec.status = "duplicate"
            raise RegistryError(
                f"plugin name {rec.name!r} in entry-point group {group!r} is declared by two "
                f"distributions: {first.dist} {first.dist_version} ({first.value}) and "
                f"{rec.dist} {rec.dist_version} ({rec.value}); uninstall one of them"
            )
        by_name[key] = rec

    register = _register_fn(group, registry)
    for rec in records:
        try:
            obj = _load_object(rec.value)
        except Exception as exc:  # noqa: BLE001 - any plugin bug must not break hubcls
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
        register(obj, rec.name, f"distribution {rec.dist} {rec.dist_version} (entry point {rec.value})")
        rec.status = "loaded"
    return records


def plugin_report(load: bool = True) -> List[PluginRecord]:
    """Every plugin of every group; with ``load`` the registries are touched so statuses are real."""
    if load:
        for group in GROUPS:
            try:
                _touch_registry(group)
            except RegistryError as exc:
                for rec in _RECORDS.get(group, []):
                    if rec.status == "not loaded":
                        rec.error = str(exc)
    out = []
    for group in GROUPS:
        out.extend(_RECORDS.get(group) or discover(group))
    return out


def _touch_registry(group: str) -> None:
    if group == "hubcls.backbones":
        from .models._registry import ARCHS

        ARCHS._ensure_loaded()
    elif group == "hubcls.augmenters":
        try:
            from .data import AUGMENTERS
        except ImportError:  # the data package has no augmenter registry yet
            return
        AUGMENTERS._ensure_loaded()
