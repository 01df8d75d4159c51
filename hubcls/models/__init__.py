"""hubcls.models: PaddleClas's ImageNet zoo (one file per family) + registry and weight loading."""
from __future__ import annotations

from ._pretrained import PretrainedCfg  # noqa: F401
from ._pretrained import zoo_cfg, zoo_table  # noqa: F401
from ._registry import register_model, register_pretrained, resolve  # noqa: F401
