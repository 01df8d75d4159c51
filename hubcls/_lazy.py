"""Lazy re-exports for package ``__init__`` files: heavy submodules (Paddle, cv2) import on first
attribute access, so ``import hubcls.<pkg>`` and the CLI's start-up stay cheap."""
from __future__ import annotations

import importlib
from typing import Callable, Dict, Tuple


def lazy_exports(package: str, namespace: dict, exports: Dict[str, str]) -> Tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for ``package`` that resolve ``exports`` (public name ->
    defining module) on first access and cache the value in the package's ``namespace``."""

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(list(namespace) + list(exports))

    return __getattr__, __dir__
