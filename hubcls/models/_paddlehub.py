"""PaddleHub's image-classification module names, as data (``paddlehub_modules.tsv``).

One row per module of PaddleHub's ``modules/image/classification/`` (recorded from PaddleHub's
repository by ``tests/tools/make_paddlehub_names.py``): the hubcls model it is (empty when hubcls
has no such model, with the reason), the shape of its ``hub serving`` answer and the call its
README documents. The model resolver reads it (``resnet50_vd_imagenet_ssld`` -> ResNet50_vd_ssld),
and so do the PaddleHub module packages and ``hubcls serve`` (hubcls.hub): a model asked for by a
PaddleHub module name answers as that module does (see docs/serving.md).
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

TABLE = Path(__file__).with_name("paddlehub_modules.tsv")
SERVING_SHAPES = ("data", "list")   # {"data": [...]} (ImageClassifierModule) | a plain list
APIS = ("predict", "classification", "classification_v1", "other")


@dataclass(frozen=True)
class PaddleHubModule:
    """One PaddleHub classification module."""

    hub_name: str      # PaddleHub's module name, e.g. "resnet50_vd_imagenet_ssld"
    model: str         # the hubcls model (PaddleClas spelling), "" when hubcls has none
    serving: str       # "data": results are {"data": [...]}; "list": results are [...]
    api: str           # the call its README shows: predict / classification / classification_v1
    note: str = ""     # why ``model`` is empty

    @property
    def answers_data(self) -> bool:
        """Whether ``hub serving`` answers ``{"data": [...]}`` (ImageClassifierModule) for it."""
        return self.serving == "data"


@functools.lru_cache(maxsize=1)
def paddlehub_modules() -> Dict[str, PaddleHubModule]:
    """Every PaddleHub classification module, by its name (PaddleHub's spelling)."""
    rows: Dict[str, PaddleHubModule] = {}
    with TABLE.open(encoding="utf-8", newline="") as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    for row in csv.DictReader(lines, delimiter="\t"):
        mod = PaddleHubModule(row["hub_name"], row["model"] or "", row["serving"], row["api"], row.get("note") or "")
        if mod.serving not in SERVING_SHAPES or mod.api not in APIS:
            raise ValueError(f"{TABLE}: bad row {row}")
        rows[mod.hub_name] = mod
    return rows


@functools.lru_cache(maxsize=1)
def _by_lower() -> Dict[str, PaddleHubModule]:
    return {k.lower(): v for k, v in paddlehub_modules().items()}


def paddlehub_module(name: str) -> Optional[PaddleHubModule]:
    """The PaddleHub module called ``name`` (case-insensitive), or None."""
    return _by_lower().get(str(name).strip().lower())


def paddlehub_names_of(model: str) -> List[str]:
    """PaddleHub module names of the hubcls model ``model`` (PaddleClas spelling, exact)."""
    return [m.hub_name for m in paddlehub_modules().values() if m.model == model]
