"""hubcls.hub: PaddleHub-style modules, serving, and the download cache.

    import hubcls.hub as hub
    m = hub.Module(name="resnet50_vd_imagenet_ssld")
    m.predict(["cat.jpg"], top_k=5)

``hubcls.hub.serving.create_app`` builds the HTTP server behind ``hubcls serve``.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "Module": "hubcls.hub.module",
    "PredictionError": "hubcls.hub.module",
    "WeightsUnavailableError": "hubcls.hub.module",
    "create_app": "hubcls.hub.serving",
    "module_names": "hubcls.hub.make_modules",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
