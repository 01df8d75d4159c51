"""Imports every family file in hubcls/models (each registers its architectures and weights).

Any module here whose name does not start with ``_`` is a family file, so adding a family needs no
edit elsewhere. A family that fails to import is reported with a warning; the others keep working.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings
from pathlib import Path

FAILED = {}


def _load_all():
    pkg = __name__.rpartition(".")[0]
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{pkg}.{info.name}")
        except Exception as exc:  # noqa: BLE001 - one broken family must not hide the others
            FAILED[info.name] = exc
            warnings.warn(f"hubcls: model family {pkg}.{info.name} failed to import: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)


_load_all()
