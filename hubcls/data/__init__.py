"""hubcls.data: datasets, robust decoding, config-driven transform pipelines and the batch loader.

Public API::

    read_image(src, *, max_pixels=None, reduce_to=None)  -> uint8 HxWx3 RGB
    to_rgb(image, channel_order="BGR")                     -> uint8 HxWx3 RGB from a path, bytes, file,
                                                              PIL image or array (prediction inputs)
    read_labels(path)                                      -> class names of a label file
    build_transforms(ops_config_list)                      -> Pipeline (callable on one RGB image)
    eval_transforms_for(pretrained_cfg)                    -> Pipeline (PaddleClas eval preprocessing)
    build_dataset(dataset_config)                          -> Dataset
    build_dataloader(config, mode, *, seed=0, rank=0, world_size=1) -> DataLoader
    make_demo_dataset(root, ...)                           -> dict of written paths
    download_flowers102(root, ...)                         -> dict of list/label paths
    AUGMENTERS                                             -> Registry of transform ops by PaddleClas name

Heavy submodules import on first attribute access so ``import hubcls.data`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any, List

from .decode import DEFAULT_MAX_PIXELS, image_size, read_image

_LAZY = {
    "to_rgb": "hubcls.data.inputs",
    "read_labels": "hubcls.data.label_lists",
    "AUGMENTERS": "hubcls.data.transforms",
    "Pipeline": "hubcls.data.transforms",
    "build_transforms": "hubcls.data.transforms",
    "build_batch_transforms": "hubcls.data.transforms",
    "eval_transforms_for": "hubcls.data.transforms",
    "DATASETS": "hubcls.data.datasets",
    "build_dataset": "hubcls.data.datasets",
    "ImageNetDataset": "hubcls.data.datasets",
    "MultiLabelDataset": "hubcls.data.datasets",
    "ImageFolder": "hubcls.data.datasets",
    "Flowers102": "hubcls.data.datasets",
    "DemoDataset": "hubcls.data.datasets",
    "make_demo_dataset": "hubcls.data.demo",
    "download_flowers102": "hubcls.data.flowers",
    "build_dataloader": "hubcls.data.loader",
    "DataLoader": "hubcls.data.loader",
    "BatchSampler": "hubcls.data.loader",
    "sample_rng": "hubcls.data.rng",
}

__all__ = ["read_image", "image_size", "DEFAULT_MAX_PIXELS", *_LAZY]


def __getattr__(name: str) -> Any:
    """The lazily exported name (imports its module on first access)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hubcls.data' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(list(globals()) + list(_LAZY))
