"""hubcls.engine: training, evaluation, losses, optimizers, LR schedules, metrics, EMA, checkpoints,
distillation (SSLD).

    from hubcls.engine import load_config, Trainer
    cfg = load_config("quickstart", ["Global.epochs=3"])
    Trainer(cfg).train()

Heavy submodules import on first attribute access.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "load_config": "hubcls.engine.config",
    "apply_override": "hubcls.engine.config",
    "shipped_configs": "hubcls.engine.config",
    "Trainer": "hubcls.engine.trainer",
    "build_model": "hubcls.engine.trainer",
    "DistillTrainer": "hubcls.engine.distill",
    "DISTILL_LOSSES": "hubcls.engine.losses",
    "OPTIMIZERS": "hubcls.engine.optim",
    "LR_SCHEDULES": "hubcls.engine.optim",
    "LOSSES": "hubcls.engine.losses",
    "METRICS": "hubcls.engine.metrics",
    "Classifier": "hubcls.engine.infer",
    "run_quickstart": "hubcls.engine.quickstart",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
