"""``hubcls distill -c CONFIG``: ``hubcls train`` for configs with a Distillation section (SSLD)."""
from __future__ import annotations

from . import train as _train


def register(sub):
    _train.register(sub, name="distill", help="distil a student from a frozen teacher (SSLD; config needs Distillation)")
    p = sub.choices["distill"]
    p.set_defaults(require_distillation=True)
