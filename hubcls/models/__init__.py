"""hubcls.models: PaddleClas's ImageNet zoo (one file per family) + registry and weight loading.

    import hubcls
    m = hubcls.create_model("ResNet50_vd_ssld", pretrained=True)
    hubcls.list_models("resnet*", pretrained=True)

Family files (every non-underscore module here) are imported on first lookup; see _features.py for
the backbone contract and _registry.py for names, pretrained configs and key maps.
"""
from __future__ import annotations

from ._pretrained import PretrainedCfg  # noqa: F401
from ._pretrained import zoo_cfg, zoo_table  # noqa: F401
from ._registry import (  # noqa: F401
    get_arch,
    key_maps_for,
    list_models,
    pretrained_cfgs,
    register_key_map,
    register_model,
    register_pretrained,
    resolve,
)
from ._builder import create_model  # noqa: F401
from ._package import ModelPackage, read_package, save_package  # noqa: F401
from ._resolve import ACCEPTED_FORMS, ModelSource, inference_labels, resolve_model  # noqa: F401
from ._safe_pickle import safe_load, safe_loads  # noqa: F401


def profile(name_or_model, input_size=None):
    """dict(params, macs, flops=2*macs) at the model's eval size (see _profile.py)."""
    from ._profile import profile as _profile

    return _profile(name_or_model, input_size=input_size)


def load_pretrained(model, path, **kwargs):
    """Load a weight file/directory into ``model`` (key scheme detected; see _weights.py)."""
    from ._weights import load_pretrained as _load

    return _load(model, path, **kwargs)


def load_state_dict(path):
    """{key: ndarray} from any weights file or directory hubcls reads (.pdparams and .pdckpt through
    the restricted unpickler, .safetensors, Paddle 1.x static weights); never runs code from it."""
    from ._weights import read_state

    return read_state(path)
