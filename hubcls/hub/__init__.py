"""hubcls.hub: PaddleHub-style modules, serving, and the download cache.

    import hubcls.hub as hub
    m = hub.Module(name="resnet50_vd_imagenet_ssld")
    m.predict(["cat.jpg"], top_k=5)

``hubcls.hub.serving.create_app`` builds the HTTP server behind ``hubcls serve``.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "Module": "hubcls.hub.module",
    "PredictionError": "hubcls.hub.module",
    "WeightsUnavailableError": "hubcls.hub.module",
    "create_app": "hubcls.hub.serving",
    "module_names": "hubcls.hub.make_modules",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hubcls.hub' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
