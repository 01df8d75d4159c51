"""The optional extras of ``pip install 'hubcls[...]'`` and the one-line fix when one is missing.

A command that needs an extra calls :func:`require` before it loads any model, so a user without
it learns in a second what to install instead of reading an ImportError after a long start-up::

    hubcls serve: error: hubcls serve needs the 'serve' extra (missing: uvicorn): pip install 'hubcls[serve]'

Checks use ``importlib.util.find_spec`` (nothing is imported). README's "Extras" list mirrors EXTRAS.
"""
from __future__ import annotations

import importlib.util
from typing import Dict, List, Optional, Tuple

from .errors import HubclsError

# extra -> (what it is for, the import names it provides)
EXTRAS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "cpu": ("PaddlePaddle (CPU build)", ("paddle",)),
    "gpu": ("PaddlePaddle (CUDA build)", ("paddle",)),
    "serve": ("hubcls serve (HTTP serving, API pages, metrics)",
              ("fastapi", "uvicorn", "multipart", "prometheus_client", "fastapi_offline")),
    "onnx": ("ONNX export and the onnxruntime / int8 backends", ("paddle2onnx", "onnxruntime", "onnx")),
    "visualdl": ("VisualDL logging during training (Global.use_visualdl)", ("visualdl",)),
    "det": ("the PaddleDetection backbone adapter (hubcls.det)",
            ("typeguard", "shapely", "scipy", "terminaltables", "pycocotools")),
    "report": ("the training report's charts", ("matplotlib",)),
}


class ExtraMissingError(HubclsError):
    """A feature's optional dependencies are not installed."""


def missing(extra: str) -> List[str]:
    """The import names of ``extra`` that are not installed."""
    return [name for name in EXTRAS[extra][1] if importlib.util.find_spec(name) is None]


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra``."""
    return f"pip install 'hubcls[{extra}]'"


def require(extra: str, what: Optional[str] = None) -> None:
    """Raise :class:`ExtraMissingError` with the one-line fix when ``extra`` is not fully installed."""
    gone = missing(extra)
    if gone:
        raise ExtraMissingError(f"{what or EXTRAS[extra][0]} needs the '{extra}' extra (missing: {', '.join(gone)}): "
                                f"{install_hint(extra)}")
