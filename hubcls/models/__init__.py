"""hubcls.models: PaddleClas's ImageNet zoo (one file per family) + registry and weight loading.

    import hubcls
    m = hubcls.create_model("ResNet50_vd_ssld", pretrained=True)
    hubcls.list_models("resnet*", pretrained=True)

Family files (every non-underscore module here) are imported on first lookup; see _features.py for
the backbone contract and _registry.py for names, pretrained configs and key maps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union

from ._package import ModelPackage, read_package, save_package
from ._paddlehub import PaddleHubModule, paddlehub_module, paddlehub_modules, paddlehub_names_of
from ._pretrained import PretrainedCfg, zoo_cfg, zoo_table
from ._registry import (
    ARCHS,
    canonical_name,
    get_arch,
    key_maps_for,
    list_models,
    pretrained_cfgs,
    register_key_map,
    register_model,
    register_pretrained,
    resolve,
)
from ._resolve import ACCEPTED_FORMS, ModelSource, create_model, inference_labels, resolve_model
from ._safe_pickle import safe_load, safe_loads

__all__ = [
    "ACCEPTED_FORMS", "ARCHS", "ModelPackage", "ModelSource", "PaddleHubModule", "PretrainedCfg", "canonical_name",
    "create_model", "get_arch", "inference_labels", "key_maps_for", "list_models", "load_pretrained",
    "paddlehub_module", "paddlehub_modules", "paddlehub_names_of", "pretrained_cfgs", "profile",
    "read_package", "register_key_map", "register_model", "register_pretrained", "resolve", "resolve_model",
    "safe_load", "safe_loads", "save_package", "zoo_cfg", "zoo_table",
]


def profile(name_or_model: Any, input_size: Optional[int] = None) -> Dict[str, float]:
    """dict(params, macs, flops=2*macs) at the model's eval size (see _profile.py)."""
    from ._profile import profile as _profile

    return _profile(name_or_model, input_size=input_size)


def load_pretrained(model: Any, path: Union[str, Path], **kwargs: Any) -> str:
    """Load a weight file/directory into ``model``; returns the detected key scheme (see _weights.py)."""
    from ._weights import load_pretrained as _load

    return _load(model, path, **kwargs)


def load_state_dict(path: Union[str, Path]) -> Dict[str, Any]:
    """{key: ndarray} from any weights file or directory hubcls reads (.pdparams and .pdckpt through
    the restricted unpickler, .safetensors, Paddle 1.x static weights); never runs code from it."""
    from ._weights import read_state

    return read_state(path)
