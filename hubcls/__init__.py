"""hubcls: image classification on PaddlePaddle.

PaddleClas's model zoo with its official weights, a fused C++/CUDA preprocessing core, SSLD
distillation, PaddleHub-style modules, serving and a PaddleDetection backbone adapter.

The public API is re-exported here lazily, so that ``import hubcls`` (and ``hubcls --version``)
stays cheap and works before Paddle is imported.
"""
from __future__ import annotations

import importlib
from typing import Any, List

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "create_model": "hubcls.models",
    "list_models": "hubcls.models",
    "errors": "hubcls.errors",
    "ops": "hubcls.ops",
    "data": "hubcls.data",
    "models": "hubcls.models",
    "hub": "hubcls.hub",
}


def __getattr__(name: str) -> Any:
    """The lazily exported name (imports its module on first access)."""
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.endswith(name) and not hasattr(module, name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hubcls' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(list(globals()) + list(_LAZY))
