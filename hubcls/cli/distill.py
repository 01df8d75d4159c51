"""``hubcls distill -c CONFIG``: ``hubcls train`` for configs with a Distillation section (SSLD)."""
from __future__ import annotations

from . import train as _train


def register(sub):
    _train.register(sub, name="distill", help="distil a student from a frozen teacher (SSLD; config needs Distillation)",
                    examples=["hubcls distill -c ssld_stage1_MobileNetV3_large_x1_0 "
                              "-o DataLoader.Unlabeled.dataset.cls_label_path=unlabeled.txt",
                              "hubcls distill -c my_distill.yaml -o Distillation.teacher.pretrained=teacher.pdparams",
                              "hubcls distill -c my_distill.yaml --resume"])
    p = sub.choices["distill"]
    p.set_defaults(require_distillation=True)
