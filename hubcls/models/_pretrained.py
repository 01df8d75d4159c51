"""Pretrained configs: one record per named weight set (a model name users can ask for).

A family file declares its configs next to its architectures (``default_cfgs``) and registers them
with ``register_pretrained``. Everything downstream (weight loading, hub modules, serving, export,
detection) reads these records; nothing repeats them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DYGRAPH_BASE = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/"


@dataclass(frozen=True)
class PretrainedCfg:
    name: str                                  # PaddleClas spelling, e.g. "ResNet50_vd_ssld"
    arch: str                                  # registered architecture, e.g. "ResNet50_vd"
    url: Optional[str] = None                  # release/2.0 dygraph weights (2.0 key scheme)
    url_legendary: Optional[str] = None        # legendary_models weights (legendary key scheme)
    sha256: Optional[str] = None               # checksum when known (official files: unknown offline)
    file_size: Optional[int] = None
    key_scheme: str = "2.0"                    # scheme of `url`: "2.0" | "legendary"
    num_classes: int = 1000
    input_size: int = 224                      # eval crop
    resize_short: Optional[int] = 256          # eval resize of the short side
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    label_list: str = "imagenet1k"             # name of a label file shipped in hubcls/data/labels/
    top1: Optional[float] = None
    top5: Optional[float] = None
    params_m: Optional[float] = None           # params_m_today from the zoo table
    macs_g: Optional[float] = None             # macs_g_today from the zoo table
    in_2020_readme: bool = True
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def has_weights(self) -> bool:
        return bool(self.url or self.url_legendary)

    def with_(self, **changes) -> "PretrainedCfg":
        return replace(self, **changes)


def dygraph_url(name: str) -> str:
    return f"{DYGRAPH_BASE}{name}_pretrained.pdparams"


def legendary_url(name: str) -> str:
    """Legendary URL; `X_ssld` uses the base name with `_ssld_pretrained` (PaddleClas save_load)."""
    if name.endswith("_ssld"):
        return f"{DYGRAPH_BASE}legendary_models/{name[:-5]}_ssld_pretrained.pdparams"
    return f"{DYGRAPH_BASE}legendary_models/{name}_pretrained.pdparams"
