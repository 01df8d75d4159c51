"""PaddleClas release/2.0 (2020) configs -> the 2.x schema hubcls runs.

A release/2.0 config is flat at the top (``mode``, ``classes_num``, ``epochs``, ``topk``, ``use_mix``,
``ls_epsilon``, ...) with upper-case sections ``ARCHITECTURE``, ``LEARNING_RATE``, ``OPTIMIZER``,
``TRAIN`` and ``VALID``. :func:`convert` maps every key to its 2.x place, or reports it as not used
and why; nothing is dropped silently. The meaning of each key is taken from release/2.0's own code
(tools/program.py, ppcls/data/reader.py, ppcls/optimizer/, ppcls/utils/save_load.py):

* ``TRAIN.batch_size`` is the *global* batch (release/2.0 divides it by the number of trainers);
  hubcls's ``sampler.batch_size`` is per process, so it becomes ``batch_size // world_size``.
* the train reader drops the last incomplete batch, the valid reader keeps it.
* ``ls_epsilon`` smooths labels when 0 <= eps <= 1 (``-1`` switches it off); ``use_mix`` turns on
  the ``TRAIN.mix`` batch operators and switches training metrics off.
* GoogLeNet always trains with its two auxiliary heads (logits + 0.3 * each aux);
  ``<teacher>_distill_<student>`` architectures are a frozen teacher and a student trained on the
  teacher's outputs with a symmetric KL divergence (release/2.0 calls it JSDivLoss).
* LR schedules: ``Cosine``/``CosineWarmup``/``Piecewise``/``ExponentialWarmup`` with ``params.lr``,
  stepped every iteration over ``epochs * steps per epoch``.
"""
from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..errors import ConfigError

#: upper-case sections that only release/2.0 configs have
SECTIONS = ("ARCHITECTURE", "TRAIN", "VALID", "LEARNING_RATE", "OPTIMIZER")
#: the 2.x sections (an override or a key under one of these is in the new key space)
NEW_SECTIONS = ("Global", "Arch", "Loss", "Optimizer", "DataLoader", "Metric", "AMP", "EMA", "Infer", "Distillation")

# top-level scalar keys with a direct 2.x spelling (used for conversion and for did-you-mean hints)
DIRECT = {
    "epochs": "Global.epochs",
    "save_interval": "Global.save_interval",
    "validate": "Global.eval_during_train",
    "valid_interval": "Global.eval_interval",
    "image_shape": "Global.image_shape",
    "model_save_dir": "Global.output_dir",
    "classes_num": "Arch.class_num",
    "pretrained_model": "Global.pretrained_model",
    "checkpoints": "Global.pretrained_model",
    "use_gpu": "Global.device",
    "ls_epsilon": "Loss.Train[0].CELoss.epsilon",
    "topk": "Metric.Eval[0].TopkAcc.topk",
    "use_mix": "DataLoader.Train.dataset.batch_transform_ops",
    "ema_decay": "EMA.decay",
    "use_amp": "AMP.use_amp",
    "scale_loss": "AMP.scale_loss",
    "use_dynamic_loss_scaling": "AMP.use_dynamic_loss_scaling",
    "use_pure_fp16": "AMP.level",
    "print_interval": "Global.print_batch_step",
}

#: release/2.0 keys hubcls does not use, and why
IGNORED = {
    "mode": "the command decides what runs (hubcls train / eval / infer / export)",
    "total_images": "release/2.0 derived the LR schedule's steps per epoch from it; hubcls counts the data list "
                    "(len(list) // batch_size), which is what total_images stood for",
    "use_dali": "NVIDIA DALI GPU reader; hubcls decodes and preprocesses with its own C++ core",
    "use_aa": "read only by release/2.0's DALI reader; AutoAugment is the AutoAugment op in TRAIN.transforms",
    "is_distributed": "hubcls reads the process layout from paddle.distributed.launch",
    "multi_precision": "fp32 master weights for pure fp16; Paddle keeps them itself under AMP O2",
    "VALID.shuffle_seed": "the valid list is not shuffled",
}

SCHEDULES = ("Cosine", "CosineWarmup", "Piecewise", "ExponentialWarmup", "Linear")
OPTIMIZERS = ("Momentum", "RMSProp")


@dataclass
class Note:
    """One line of the conversion report: ``old`` key -> ``new`` key (None: not used) and why."""

    old: str
    new: Optional[str]
    why: str = ""

    def __str__(self):
        if self.new is None:
            return f"{self.old}: not used ({self.why})"
        return f"{self.old} -> {self.new}" + (f" ({self.why})" if self.why else "")


def is_release20(raw: dict) -> bool:
    """True for a release/2.0 config (its upper-case sections, or its flat ``mode``/``classes_num``)."""
    if not isinstance(raw, dict):
        return False
    old = any(k in raw for k in SECTIONS) or ("classes_num" in raw and "mode" in raw)
    if old and any(k in raw for k in ("Global", "Arch")):
        both = sorted(k for k in raw if k in SECTIONS or k in NEW_SECTIONS)
        raise ConfigError(f"the config mixes release/2.0 sections and 2.x sections ({', '.join(both)}); "
                          "use one schema (`hubcls config convert OLD.yaml` writes the 2.x form)")
    return old


def is_old_key(override_key: str) -> bool:
    """Does an override ``KEY=VALUE`` address the release/2.0 key space (``TRAIN.batch_size``, ``epochs``)?"""
    first = override_key.split("=", 1)[0].strip().split(".", 1)[0].split("[", 1)[0]
    return first not in NEW_SECTIONS


def _enabled_eps(eps) -> Optional[float]:
    """release/2.0 smooths labels only for 0 <= eps <= 1 (its configs write -1 for 'off')."""
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        return None
    return eps if 0.0 < eps <= 1.0 else None


def _none_if_empty(v):
    return None if v in ("", None) else v


def _split_distill(name: str) -> Optional[Tuple[str, str]]:
    if "_distill_" in name:
        teacher, _, student = name.partition("_distill_")
        return teacher, student
    return None


class _Converter:
    def __init__(self, old: dict, world_size: int):
        self.old = old
        self.world = max(1, int(world_size or 1))
        self.notes: List[Note] = []
        self.used = set()

    def note(self, old, new, why=""):
        self.notes.append(Note(old, new, why))
        self.used.add(old)

    def get(self, key, default=None):
        return self.old.get(key, default)

    # ------------------------------------------------------------------ sections
    def arch(self, cfg):
        a = self.get("ARCHITECTURE")
        if not isinstance(a, dict) or not a.get("name"):
            raise ConfigError("ARCHITECTURE.name is required (release/2.0 config)")
        name = str(a["name"])
        self.note("ARCHITECTURE.name", "Arch.name")
        arch = {"name": name}
        params = dict(a.get("params") or {})
        for k in a:
            if k not in ("name", "params"):
                self.note(f"ARCHITECTURE.{k}", None, "release/2.0 reads only ARCHITECTURE.name and .params")
        # EfficientNet's override_params is a dict of global params: each one is a model kwarg
        over = params.pop("override_params", None)
        if isinstance(over, dict):
            for k, v in over.items():
                arch[k] = v
                self.note(f"ARCHITECTURE.params.override_params.{k}", f"Arch.{k}")
        for k, v in params.items():
            arch[k] = v
            self.note(f"ARCHITECTURE.params.{k}", f"Arch.{k}")
        pair = _split_distill(name)
        if pair:
            teacher, student = pair
            arch["name"] = student
            self.note("ARCHITECTURE.name", "Arch.name + Distillation.teacher.name",
                      f"{name}: teacher {teacher} (frozen), student {student}")
            cfg["Distillation"] = {"teacher": {"name": teacher, "pretrained": False},
                                   "loss": "DML", "temperature": 1.0, "weight": 1.0, "label_weight": 0.0}
        if "classes_num" in self.old:
            arch["class_num"] = int(self.old["classes_num"])
            self.note("classes_num", "Arch.class_num")
            if pair:
                cfg["Distillation"]["teacher"]["class_num"] = arch["class_num"]
        cfg["Arch"] = arch
        return name, pair

    def weights(self, cfg, pair):
        g = cfg["Global"]
        pm = self.get("pretrained_model")
        static = bool(self.get("load_static_weights", False))
        if "load_static_weights" in self.old:
            self.note("load_static_weights", None if not static else "Arch.pretrained",
                      "Paddle 1.x static weights: loaded by create_model(pretrained=PATH)" if static else
                      "false: the weights are dygraph .pdparams")
        if "pretrained_model" in self.old:
            paths = pm if isinstance(pm, list) else [pm]
            paths = [_none_if_empty(p) for p in paths]
            if pair:
                teacher = paths[0] if paths else None
                if teacher:
                    cfg["Distillation"]["teacher"]["checkpoint"] = teacher
                student = paths[1] if len(paths) > 1 else None
                if student:
                    g["pretrained_model"] = student
                self.note("pretrained_model", "Distillation.teacher.checkpoint"
                          + (" + Global.pretrained_model" if student else ""),
                          "release/2.0 loads the teacher from the first path, the student from the second")
            elif paths and paths[0]:
                if static:
                    cfg["Arch"]["pretrained"] = paths[0]
                    self.note("pretrained_model", "Arch.pretrained", "Paddle 1.x static weights")
                else:
                    g["pretrained_model"] = paths[0]
                    self.note("pretrained_model", "Global.pretrained_model",
                              "a path prefix: PATH.pdparams is read; a classifier of another size is re-initialised")
            else:
                self.note("pretrained_model", "Global.pretrained_model", "empty: no weights")
        ck = _none_if_empty(self.get("checkpoints"))
        if "checkpoints" in self.old:
            if ck:
                g["pretrained_model"] = ck
                self.note("checkpoints", "Global.pretrained_model",
                          "release/2.0 checkpoints are PATH.pdparams + PATH.pdopt: the weights are restored, "
                          "the optimizer state and epoch are not (hubcls resumes from its own .pdckpt with --resume)")
            else:
                self.note("checkpoints", None, "empty")

    def global_(self, cfg, arch_name):
        g = cfg["Global"]
        out = self.get("model_save_dir", None)
        if "model_save_dir" in self.old:
            g["output_dir"] = out
            self.note("model_save_dir", "Global.output_dir", f"runs go to {os.path.join(str(out), cfg['Arch']['name'])} as in release/2.0")
        else:
            g["output_dir"] = "./output/"
        if "use_gpu" in self.old:
            g["device"] = "gpu" if self.old["use_gpu"] else "cpu"
            self.note("use_gpu", "Global.device", "gpu falls back to the CPU with a warning when there is none")
        else:
            g["device"] = "auto"
        for key, new, conv in (("epochs", "epochs", int), ("save_interval", "save_interval", int),
                               ("validate", "eval_during_train", bool), ("valid_interval", "eval_interval", int),
                               ("image_shape", "image_shape", list), ("print_interval", "print_batch_step", int)):
            if key in self.old:
                g[new] = conv(self.old[key])
                why = ""
                if key in ("save_interval", "valid_interval") and int(self.old[key]) > 1:
                    why = ("release/2.0 counts epochs from 0 (acts on epochs 0, k, 2k...); "
                           "hubcls from 1 (acts on epochs k, 2k... and the last)")
                self.note(key, f"Global.{new}", why)
        if "epochs" not in self.old and "TRAIN" in self.old:
            raise ConfigError("epochs is required (release/2.0 config with a TRAIN section)")
        seed = (self.get("TRAIN") or {}).get("shuffle_seed") if isinstance(self.get("TRAIN"), dict) else None
        if seed is not None:
            g["seed"] = int(seed)

    def amp_ema(self, cfg):
        if self.get("use_amp"):
            level = "O2" if self.get("use_pure_fp16") else "O1"
            cfg["AMP"] = {"use_amp": True, "level": level,
                          "scale_loss": float(self.get("scale_loss", 1.0)),
                          "use_dynamic_loss_scaling": bool(self.get("use_dynamic_loss_scaling", False))}
        for key in ("use_amp", "scale_loss", "use_dynamic_loss_scaling", "use_pure_fp16"):
            if key in self.old:
                self.note(key, DIRECT[key] if self.get("use_amp") else None,
                          "" if self.get("use_amp") else "AMP is off (use_amp is not set)")
        if "data_format" in self.old:
            fmt = str(self.old["data_format"]).upper()
            self.note("data_format", None, "NCHW is what hubcls runs" if fmt == "NCHW" else
                      f"{fmt}: a GPU fp16 layout choice that does not change results; hubcls runs NCHW")
        if self.get("ema_decay") is not None and self.get("use_ema", True):
            cfg["EMA"] = {"decay": float(self.old["ema_decay"])}
            self.note("ema_decay", "EMA.decay")
        elif "ema_decay" in self.old:
            self.note("ema_decay", None, "use_ema is false")

    def loss_metric(self, cfg, arch_name, pair):
        eps = _enabled_eps(self.get("ls_epsilon"))
        use_mix = bool(self.get("use_mix", False))
        if "ls_epsilon" in self.old:
            self.note("ls_epsilon", "Loss.Train[0].*.epsilon" if eps else None,
                      "" if eps else f"{self.old['ls_epsilon']!r} switches label smoothing off in release/2.0")
        if arch_name == "GoogLeNet":
            loss = {"GoogLeNetLoss": {"epsilon": eps} if eps else {}}
            cfg["Loss"] = {"Train": [loss], "Eval": [copy.deepcopy(loss)]}
        else:
            name = "MixCELoss" if use_mix else "CELoss"
            cfg["Loss"] = {"Train": [{name: {"epsilon": eps} if eps else {}}],
                           "Eval": [{"CELoss": {"epsilon": eps} if eps else {}}]}
        topk = int(self.get("topk", 5))
        classes = int(self.get("classes_num", topk) or topk)
        k = min(topk, classes)
        ks = [1] if k <= 1 else [1, k]
        if "topk" in self.old:
            self.note("topk", "Metric.Eval[0].TopkAcc.topk", f"[1, min(topk, classes_num)] = {ks}")
        cfg["Metric"] = {"Eval": [{"TopkAcc": {"topk": list(ks)}}]}
        if not use_mix and not pair:
            cfg["Metric"]["Train"] = [{"TopkAcc": {"topk": list(ks)}}]
        if "use_mix" in self.old:
            self.note("use_mix", "DataLoader.Train.dataset.batch_transform_ops" if use_mix else None,
                      "TRAIN.mix operators on; training metrics off, as in release/2.0" if use_mix else
                      "false: TRAIN.mix is not used")

    def lr_optimizer(self, cfg):
        lr = self.get("LEARNING_RATE")
        opt = self.get("OPTIMIZER")
        if lr is None and opt is None:
            return  # an eval-only config (mode: valid)
        if not isinstance(lr, dict) or not isinstance(opt, dict):
            raise ConfigError("LEARNING_RATE and OPTIMIZER are required together (release/2.0 config)")
        fn = lr.get("function", "Linear")
        p = dict(lr.get("params") or {})
        if fn not in SCHEDULES:
            close = difflib.get_close_matches(str(fn), SCHEDULES, n=1)
            raise ConfigError(f"LEARNING_RATE.function: {fn!r} is not one of {', '.join(SCHEDULES)}"
                              + (f" (did you mean {close[0]}?)" if close else ""))
        if "lr" not in p:
            raise ConfigError("LEARNING_RATE.params.lr is required")
        base = float(p.pop("lr"))
        self.note("LEARNING_RATE.params.lr", "Optimizer.lr.learning_rate")
        for k in ("epochs", "step_each_epoch"):
            if k in p:
                p.pop(k)
                self.note(f"LEARNING_RATE.params.{k}", None, "filled in from Global.epochs and the data list")
        new = {"learning_rate": base}
        if fn == "Cosine":
            new["name"] = "Cosine"
        elif fn == "CosineWarmup":
            new.update(name="Cosine", warmup_epoch=p.pop("warmup_epoch", 5))
            self.note("LEARNING_RATE.params.warmup_epoch", "Optimizer.lr.warmup_epoch", "release/2.0's default is 5")
        elif fn == "Piecewise":
            decay = list(p.pop("decay_epochs"))
            gamma = float(p.pop("gamma", 0.1))
            new = {"name": "Piecewise", "decay_epochs": decay, "values": [base * gamma ** i for i in range(len(decay) + 1)]}
            self.note("LEARNING_RATE.params.decay_epochs", "Optimizer.lr.decay_epochs")
            self.note("LEARNING_RATE.params.gamma", "Optimizer.lr.values", "values = lr * gamma**i")
        elif fn == "ExponentialWarmup":
            new.update(name="Exponential", warmup_epoch=p.pop("warmup_epoch", 5),
                       decay_epochs=float(p.pop("decay_epochs", 2.4)), decay_rate=float(p.pop("decay_rate", 0.97)))
            for k in ("warmup_epoch", "decay_epochs", "decay_rate"):
                self.note(f"LEARNING_RATE.params.{k}", f"Optimizer.lr.{k}")
        elif fn == "Linear":
            new.update(name="Linear", end_lr=float(p.pop("end_lr", 0.0)))
        for k in list(p):
            self.note(f"LEARNING_RATE.params.{k}", None, f"{fn} in release/2.0 does not take it")
        self.note("LEARNING_RATE.function", "Optimizer.lr.name", "" if fn == new["name"] else
                  f"{fn} = {new['name']}" + (" with warmup_epoch" if "warmup_epoch" in new else ""))
        o = {"name": opt.get("function", "Momentum")}
        if o["name"] not in OPTIMIZERS:
            raise ConfigError(f"OPTIMIZER.function: {o['name']!r} is not one of {', '.join(OPTIMIZERS)}")
        self.note("OPTIMIZER.function", "Optimizer.name")
        for k, v in (opt.get("params") or {}).items():
            o[k] = v
            self.note(f"OPTIMIZER.params.{k}", f"Optimizer.{k}")
        o["lr"] = new
        reg = opt.get("regularizer")
        if isinstance(reg, dict):
            o["regularizer"] = {"name": str(reg.get("function", "L2")), "coeff": float(reg.get("factor", 0.0))}
            self.note("OPTIMIZER.regularizer.function", "Optimizer.regularizer.name")
            self.note("OPTIMIZER.regularizer.factor", "Optimizer.regularizer.coeff")
        for k in opt:
            if k not in ("function", "params", "regularizer"):
                self.note(f"OPTIMIZER.{k}", None, "release/2.0 reads only function, params and regularizer")
        cfg["Optimizer"] = o

    def reader(self, cfg, section, mode):
        r = self.get(section)
        if r is None:
            return
        if not isinstance(r, dict):
            raise ConfigError(f"{section} must be a mapping (release/2.0 reader settings)")
        for k in ("file_list", "data_dir", "batch_size"):
            if k not in r:
                raise ConfigError(f"{section}.{k} is required (release/2.0 reader)")
        train = mode == "Train"
        ds = {"name": "ImageNetDataset", "image_root": r["data_dir"], "cls_label_path": r["file_list"],
              "transform_ops": copy.deepcopy(r.get("transforms") or [])}
        if "delimiter" in r:
            ds["delimiter"] = r["delimiter"]
        batch = int(r["batch_size"])
        per = max(1, batch // self.world)
        dl = {"dataset": ds,
              "sampler": {"name": "DistributedBatchSampler", "batch_size": per, "shuffle": train, "drop_last": train},
              "loader": {"num_workers": int(r.get("num_workers", 0) or 0)}}
        mix = r.get("mix")
        if train and self.get("use_mix") and mix:
            ds["batch_transform_ops"] = copy.deepcopy(mix)
        cfg.setdefault("DataLoader", {})[mode] = dl
        where = f"DataLoader.{mode}"
        self.note(f"{section}.data_dir", f"{where}.dataset.image_root")
        self.note(f"{section}.file_list", f"{where}.dataset.cls_label_path")
        self.note(f"{section}.batch_size", f"{where}.sampler.batch_size",
                  f"release/2.0's batch is global: {batch} // {self.world} process(es) = {per}")
        self.note(f"{section}.transforms", f"{where}.dataset.transform_ops")
        if "num_workers" in r:
            self.note(f"{section}.num_workers", f"{where}.loader.num_workers")
        if "delimiter" in r:
            self.note(f"{section}.delimiter", f"{where}.dataset.delimiter")
        if "mix" in r:
            self.note(f"{section}.mix", f"{where}.dataset.batch_transform_ops" if (train and self.get("use_mix")) else None,
                      "" if (train and self.get("use_mix")) else "use_mix is not set")
        if "shuffle_seed" in r:
            self.note(f"{section}.shuffle_seed", "Global.seed" if train else None,
                      "hubcls seeds the shuffle of every epoch from it" if train else IGNORED["VALID.shuffle_seed"])
        for k in r:
            if k not in ("file_list", "data_dir", "batch_size", "transforms", "num_workers", "delimiter", "mix",
                         "shuffle_seed"):
                self.note(f"{section}.{k}", None, "release/2.0's reader does not read it")
        if mode == "Eval":
            ops = [op for op in ds["transform_ops"]]
            cfg["Infer"] = {"batch_size": 10, "transforms": copy.deepcopy(ops)}

    def leftovers(self):
        known_flat = set(DIRECT) | set(IGNORED) | set(SECTIONS) | {"data_format", "use_distillation", "use_ema",
                                                                    "load_static_weights"}
        for k in self.old:
            if k in SECTIONS:
                continue
            if k in self.used:
                continue
            if k in IGNORED:
                self.note(k, None, IGNORED[k])
            elif k not in known_flat:
                close = difflib.get_close_matches(str(k), sorted(known_flat), n=1)
                self.note(k, None, "not a release/2.0 key" + (f"; did you mean {close[0]}?" if close else ""))


def convert(old: dict, *, world_size: int = 1) -> Tuple[dict, List[Note]]:
    """release/2.0 config dict -> (2.x config dict, report). Raises ConfigError for what cannot be
    converted (a missing ARCHITECTURE.name, an LR function release/2.0 did not have...)."""
    c = _Converter(old, world_size)
    cfg: dict = {"Global": {}}
    arch_name, pair = c.arch(cfg)
    c.global_(cfg, arch_name)
    c.weights(cfg, pair)
    c.amp_ema(cfg)
    c.loss_metric(cfg, arch_name, pair)
    c.lr_optimizer(cfg)
    c.reader(cfg, "TRAIN", "Train")
    c.reader(cfg, "VALID", "Eval")
    if "TRAIN" not in old:
        cfg["Global"]["eval_during_train"] = bool(old.get("validate", True))
    c.leftovers()
    if "use_distillation" in old and not pair:
        c.note("use_distillation", None, "the architecture is not a <teacher>_distill_<student> pair")
    elif "use_distillation" in old:
        c.note("use_distillation", "Distillation", "the <teacher>_distill_<student> architecture name sets it up")
    if "use_ema" in old:
        c.note("use_ema", "EMA" if old.get("use_ema") and "ema_decay" in old else None,
               "EMA.decay = ema_decay" if old.get("use_ema") and "ema_decay" in old else "no ema_decay / false")
    seen, notes = set(), []
    for n in c.notes:  # one line per old key (the last word on it wins)
        if n.old in seen:
            notes = [m for m in notes if m.old != n.old]
        seen.add(n.old)
        notes.append(n)
    return cfg, notes


def unmapped_keys(old: dict, notes: List[Note]) -> List[str]:
    """Leaf key paths of ``old`` (an op list counts as one leaf) that no note covers; the tests
    require none, so every key is either mapped or reported as not used."""
    covered = {n.old for n in notes}
    out = []

    def walk(node, path):
        if path in covered or any(path.startswith(c + ".") for c in covered):
            return
        if isinstance(node, dict) and node and (path == "" or path.split(".")[0] in SECTIONS):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
            return
        out.append(path)

    walk(old, "")
    return out


def old_key_hint(key: str) -> str:
    """For a release/2.0 key met in a 2.x config: its 2.x spelling."""
    first = key.split(".", 1)[0]
    if first in DIRECT:
        return f"{first} is a release/2.0 key; in the 2.x schema it is {DIRECT[first]}"
    if first in SECTIONS:
        return f"{first} is a release/2.0 section; `hubcls config convert` shows its 2.x form"
    return ""
