"""Knowledge distillation (SSLD): a frozen eval-mode teacher, a student trained on the teacher's soft
labels, optionally on extra unlabelled images.

Config (next to the usual sections; ``Arch`` is the student, checkpoints hold the student only)::

    Distillation:
      teacher: {name: ResNet50_vd_ssld, pretrained: True}   # any zoo model; or a checkpoint path
      loss: JSDiv            # JSDiv (SSLD) | KL | DML
      temperature: 1.0
      weight: 1.0            # distillation loss weight
      label_weight: 0.0      # CE on labelled samples (SSLD uses none: the teacher's labels only)
      cache: {dir: ./output/teacher_cache, topk: 10}   # optional, deterministic train transforms only
    DataLoader:
      Unlabeled:             # optional: images without labels feed only the distillation loss
        dataset: {name: UnlabeledList, image_root: ..., cls_label_path: unlabeled.txt, transform_ops: [...]}
        sampler: {batch_size: 32, shuffle: True}

SSLD's soft-label loss is the Jensen-Shannon divergence between student and teacher distributions;
label smoothing must be off (the teacher already provides soft targets), which is checked.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .._paddle import import_paddle
from ..errors import ConfigError
from .config import _get, named_items
from .losses import DISTILL_LOSSES, dml, js_div, kl_div  # noqa: F401 - re-exported
from .trainer import Trainer, load_state_tolerant


def _register_unlabeled_dataset():
    from ..data.datasets import DATASETS, Dataset

    if "UnlabeledList" in DATASETS:
        return

    @DATASETS.register(name="UnlabeledList")
    class UnlabeledList(Dataset):
        """A file list without labels (``relative/path.jpg`` per line; a trailing label is ignored).
        Labels read as 0; the distillation trainer uses these images for the teacher loss only."""

        def __init__(self, image_root, cls_label_path, class_num=None, **_ignored):
            if not os.path.isfile(cls_label_path):
                raise ConfigError(f"UnlabeledList: cls_label_path {cls_label_path!r} does not exist")
            images = []
            with open(cls_label_path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if line:
                        rel = line.split(" ")[0] if " " in line else line
                        images.append(os.path.join(str(image_root), rel))
            if not images:
                raise ConfigError(f"UnlabeledList: {cls_label_path} is empty")
            super().__init__(images, np.zeros(len(images), np.int64), None, class_num or 1)
            self.unlabeled = True


def build_teacher(dcfg: dict, log=print):
    from ..models import create_model

    t = dcfg.get("teacher")
    if not isinstance(t, dict) or not t.get("name"):
        raise ConfigError("Distillation.teacher.name is required (a zoo model name, e.g. ResNet50_vd_ssld)")
    kw = {k: v for k, v in t.items() if k not in ("name", "pretrained", "class_num", "checkpoint")}
    if t.get("class_num"):
        kw["num_classes"] = int(t["class_num"])
    pre = t.get("pretrained", False)
    model = create_model(t["name"], pretrained=pre if not t.get("checkpoint") else False, **kw)
    if t.get("checkpoint"):
        from . import checkpoint as ckpt

        load_state_tolerant(model, ckpt.load_weights(t["checkpoint"]), "Distillation.teacher.checkpoint", log)
    return model


def freeze(model):
    model.eval()
    for p in model.parameters():
        p.stop_gradient = True
    return model


class TeacherCache:
    """Teacher top-k logits per sample index, on disk (``.npz``). The file name hashes the teacher
    weights, the train transforms, the data list and k, so changing any of them starts a new cache."""

    def __init__(self, directory, teacher, transforms, data_id: str, topk: int, num_classes: int):
        h = hashlib.sha256()
        for k, v in sorted(teacher.state_dict().items()):
            h.update(k.encode())
            h.update(np.ascontiguousarray(v.numpy()).tobytes())
        h.update(json.dumps(transforms, sort_keys=True, default=str).encode())
        h.update(data_id.encode())
        h.update(str(topk).encode())
        self.key = h.hexdigest()[:16]
        self.path = Path(directory) / f"teacher_top{topk}_{self.key}.npz"
        self.topk = topk
        self.num_classes = num_classes
        self.values, self.ids, self.have = {}, {}, set()
        self.dirty = False
        if self.path.is_file():
            with np.load(self.path) as z:
                for i, v, c in zip(z["index"], z["values"], z["ids"]):
                    self.values[int(i)], self.ids[int(i)] = v, c
            self.have = set(self.values)

    def lookup(self, index: np.ndarray):
        if index is None or not all(int(i) in self.have for i in index):
            return None
        paddle = import_paddle()
        n = len(index)
        logits = np.zeros((n, self.num_classes), np.float32)
        mask = np.zeros((n, self.num_classes), np.float32)
        for r, i in enumerate(index):
            logits[r, self.ids[int(i)]] = self.values[int(i)]
            mask[r, self.ids[int(i)]] = 1.0
        return paddle.to_tensor(logits), paddle.to_tensor(mask)

    def store(self, index: np.ndarray, logits: np.ndarray):
        k = min(self.topk, logits.shape[1])
        ids = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        for r, i in enumerate(index):
            self.ids[int(i)] = ids[r]
            self.values[int(i)] = logits[r, ids[r]]
            self.have.add(int(i))
        self.dirty = True

    def save(self):
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        idx = np.array(sorted(self.values), np.int64)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, index=idx, values=np.stack([self.values[i] for i in idx]), ids=np.stack([self.ids[i] for i in idx]))
        os.replace(tmp, self.path)
        self.dirty = False


RANDOM_OPS = ("rand", "mixup", "cutmix", "autoaugment", "erasing", "hide", "grid", "augmix", "flip", "jitter")


class DistillTrainer(Trainer):
    """Trainer whose loss is ``weight * D(student, teacher) + label_weight * CE(student, labels)``."""

    def __init__(self, config, *, teacher=None, unlabeled_loader=None, **kw):
        super().__init__(config, **kw)
        d = config.get("Distillation")
        if not isinstance(d, dict):
            raise ConfigError("Distillation section is required for distillation (teacher, loss, ...)")
        self.dcfg = d
        name = d.get("loss", "JSDiv")
        if name not in DISTILL_LOSSES:
            raise ConfigError(f"Distillation.loss: {name!r} is not one of {', '.join(DISTILL_LOSSES.names())}")
        self.dloss = DISTILL_LOSSES.get(name)
        self.T = float(d.get("temperature", 1.0))
        if self.T <= 0:
            raise ConfigError(f"Distillation.temperature must be > 0, got {self.T}")
        self.w_distill = float(d.get("weight", 1.0))
        self.w_label = float(d.get("label_weight", 0.0 if name == "JSDiv" else 1.0))
        for i, (lname, kwargs) in enumerate(named_items(_get(config, "Loss.Train"), "Loss.Train")):
            if float(kwargs.get("epsilon", 0) or 0) > 0 and name == "JSDiv":
                raise ConfigError(
                    f"Loss.Train[{i}].{lname}.epsilon={kwargs['epsilon']}: label smoothing must be off for SSLD "
                    f"distillation (the teacher's soft labels replace it); set -o Loss.Train[{i}].{lname}.epsilon=0")
        self.teacher = freeze(teacher if teacher is not None else build_teacher(d, log=self.log))
        self.unlabeled_loader = unlabeled_loader
        self.cache = None
        self._unl_iter = None
        self._unl_cycle = 0

    def setup_train(self):
        super().setup_train()
        if self.unlabeled_loader is None and _get(self.cfg, "DataLoader.Unlabeled"):
            _register_unlabeled_dataset()
            from .. import data

            self.unlabeled_loader = data.build_dataloader(self.cfg, "Unlabeled", seed=self.seed + 1,
                                                          rank=self.rank, world_size=self.world)
        cache_cfg = self.dcfg.get("cache")
        if cache_cfg:
            ops = _get(self.cfg, "DataLoader.Train.dataset.transform_ops") or []
            rnd = [list(op)[0] for op in ops if isinstance(op, dict) and any(r in list(op)[0].lower() for r in RANDOM_OPS)]
            if rnd:
                raise ConfigError(f"Distillation.cache needs deterministic train transforms (the teacher's output is "
                                  f"stored per image), but DataLoader.Train.dataset.transform_ops has {rnd}; remove "
                                  f"the cache or the random ops")
            if self.unlabeled_loader is not None:
                raise ConfigError("Distillation.cache does not cover DataLoader.Unlabeled; remove one of them")
            ds = _get(self.cfg, "DataLoader.Train.dataset") or {}
            data_id = json.dumps({k: v for k, v in ds.items() if k != "transform_ops"}, sort_keys=True, default=str)
            if ds.get("cls_label_path") and Path(ds["cls_label_path"]).is_file():
                data_id += hashlib.sha256(Path(ds["cls_label_path"]).read_bytes()).hexdigest()
            self.cache = TeacherCache(cache_cfg.get("dir", self.output_dir / "teacher_cache"), self.teacher, ops, data_id,
                                      int(cache_cfg.get("topk", 10)), self.num_classes)

    def _next_unlabeled(self, epoch):
        if self._unl_iter is None:
            if hasattr(self.unlabeled_loader, "set_epoch"):
                self.unlabeled_loader.set_epoch(epoch * 1000 + self._unl_cycle)
            self._unl_iter = iter(self.unlabeled_loader)
        try:
            return next(self._unl_iter)
        except StopIteration:
            self._unl_cycle += 1
            self._unl_iter = None
            return self._next_unlabeled(epoch)

    def train_epoch(self, epoch):
        self._epoch = epoch
        self._unl_iter, self._unl_cycle = None, 0
        stats = super().train_epoch(epoch)
        if self.cache is not None and self.rank == 0:
            self.cache.save()
        return stats

    def teacher_logits(self, x, index=None):
        paddle = self.paddle
        if self.cache is not None and index is not None:
            hit = self.cache.lookup(index)
            if hit is not None:
                return hit
            with paddle.no_grad():
                t = self.teacher(x)
            t = t["logits"] if isinstance(t, dict) else t
            self.cache.store(index, t.astype("float32").numpy())
            return self.cache.lookup(index)
        with paddle.no_grad():
            t = self.teacher(x)
        return (t["logits"] if isinstance(t, dict) else t), None

    def compute_loss(self, model, b):
        paddle = self.paddle
        x = b["image"]
        n_lab = int(x.shape[0])
        index = b.get("index")
        if self.unlabeled_loader is not None:
            u = self._batch(self._next_unlabeled(getattr(self, "_epoch", 0)))
            x = paddle.concat([x, u["image"]], axis=0)
            index = None
        s_logits = self._forward(model, x)
        t_logits, mask = self.teacher_logits(x, index)
        loss = self.w_distill * self.dloss(s_logits, t_logits.astype(s_logits.dtype), self.T, mask)
        lab_logits = s_logits[:n_lab]
        if self.w_label > 0:
            loss = loss + self.w_label * self.loss_fn(lab_logits, b)[0]
        return loss, lab_logits
