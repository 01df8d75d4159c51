"""The training / evaluation loop behind ``hubcls train`` and ``hubcls eval``.

One Trainer runs in every process of a ``paddle.distributed.launch`` job: each rank reads its shard
(the data loader's rank/world_size), gradients are averaged by ``paddle.DataParallel``, evaluation
predictions are gathered and de-duplicated by sample index, and only rank 0 writes checkpoints, logs
and reports.

Exact resume: the data pipeline's randomness is a function of (seed, epoch, index), Paddle's global
RNG is re-seeded from (seed, epoch, rank) at every epoch start, and a checkpoint holds the model,
optimizer, LR step, EMA and RNG state, so "N epochs straight" and "k epochs, kill, resume" end with the
same weights.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import List, Optional

import numpy as np

from .._paddle import import_paddle
from ..errors import CheckpointError, ConfigError
from . import checkpoint as ckpt
from .arch_args import _model_kwarg_error, check_arch_kwargs, model_kwargs
from .config import _get, dump_config, named_items
from .config import class_num as cfg_class_num
from .losses import CombinedLoss, main_logits
from .metrics import METRICS, EvalResult, write_class_report, write_confusion_csv
from .optim import build_optimizer

_AMP_WARNED = False


def dist_info():
    """(rank, world_size) of this process as paddle.distributed.launch sets them."""
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1") or 1)
    rank = int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0)
    return rank, world


def select_device(name: str = "auto") -> str:
    paddle = import_paddle()
    name = str(name or "auto").lower()
    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if name == "gpu" and not has_gpu:
        warnings.warn("Global.device=gpu but no CUDA device is available; using the CPU", stacklevel=2)
        name = "cpu"
    if name == "auto":
        name = "gpu" if has_gpu else "cpu"
    if name == "gpu":
        local = int(os.environ.get("FLAGS_selected_gpus", os.environ.get("PADDLE_LOCAL_RANK", "0")).split(",")[0] or 0)
        paddle.set_device(f"gpu:{local}")
    else:
        paddle.set_device("cpu")
    return name


def load_state_tolerant(model, state: dict, source: str = "weights", log=print) -> dict:
    """Load ``state`` into ``model``, skipping keys whose shape differs (a new classifier size).

    Returns {"loaded": n, "skipped_shape": [...], "missing": [...], "unexpected": [...]}.
    """
    own = model.state_dict()
    use, skipped = {}, []
    for k, v in state.items():
        if k in own:
            if list(own[k].shape) == list(v.shape):
                use[k] = v
            else:
                skipped.append(k)
    missing = [k for k in own if k not in use and k not in skipped]
    unexpected = [k for k in state if k not in own]
    if not use:
        raise ConfigError(f"{source}: no parameter matches the model (first keys: {list(state)[:3]} vs {list(own)[:3]})")
    model.set_state_dict(use)
    if skipped:
        log(f"{source}: kept {len(use)} tensors; re-initialised {len(skipped)} with a different shape "
            f"({', '.join(skipped[:4])}{'...' if len(skipped) > 4 else ''})")
    return {"loaded": len(use), "skipped_shape": skipped, "missing": missing, "unexpected": unexpected}


def build_model(cfg: dict, log=print):
    """Arch section -> model. ``Arch.pretrained`` (True / path / url) and ``Global.pretrained_model``
    are honoured; a checkpoint with a different class count keeps its backbone."""
    arch = dict(cfg.get("Arch") or {})
    name = arch.pop("name")
    n_cls = arch.pop("class_num", None) or _get(cfg, "Global.class_num")
    pretrained = arch.pop("pretrained", False)
    arch.pop("freeze_stages", None)
    lr_mult = arch.pop("lr_mult_list", None)
    from .config_schema import ARCH_IGNORED

    for key in ARCH_IGNORED:
        arch.pop(key, None)
    check_arch_kwargs(cfg)
    kwargs = dict(arch)
    if any(n == "GoogLeNetLoss" for n, _ in named_items(_get(cfg, "Loss.Train"), "Loss.Train")) \
            and "aux_logits" not in kwargs and "aux_logits" in (model_kwargs(name) or ()):
        kwargs["aux_logits"] = True  # GoogLeNetLoss trains the two auxiliary heads too
    if n_cls:
        kwargs["num_classes"] = int(n_cls)
    import hubcls.models as models

    create = getattr(models, "create_model", None)

    def make(**kw):
        try:
            if create is not None:
                return create(name, pretrained=pretrained, **kw)
            # zoo factory not available: build the registered architecture directly
            from ..models._registry import get_arch

            m = get_arch(name)(**kw)
        except TypeError as exc:
            if "lr_mult_list" in kw and "lr_mult_list" in str(exc):
                raise
            raise _model_kwarg_error(name, kw, exc) from None
        if pretrained and create is None:
            load_state_tolerant(m, ckpt.load_weights(pretrained), str(pretrained), log)
        return m

    model = None
    if lr_mult is not None:
        # PaddleClas passes lr_mult_list to the architecture (ParamAttr per stage); models that do
        # not take it get the same effect from optimizer parameter groups (see engine.optim)
        try:
            model = make(lr_mult_list=list(lr_mult), **kwargs)
            model._hubcls_lr_mult_applied = True
        except TypeError:
            model = None
    if model is None:
        model = make(**kwargs)
    pm = _get(cfg, "Global.pretrained_model")
    if pm:
        load_state_tolerant(model, ckpt.load_weights(pm), f"Global.pretrained_model={pm}", log)
    return model


def run_dir_of(cfg: dict) -> Path:
    """Where a run writes: Global.output_dir/<Arch.name>/ (or output_dir itself with output_subdir: False)."""
    out = Path(_get(cfg, "Global.output_dir", "./output/") or "./output/")
    return out / str(cfg["Arch"]["name"]) if _get(cfg, "Global.output_subdir", True) else out


def _param_name_map(model):
    return {p.name: n for n, p in model.named_parameters()}


def _rename_opt_state(state: dict, mapping: dict) -> dict:
    """Optimizer state keys are ``<paddle param name>_<accumulator>``; paddle names depend on creation
    order in the process, so checkpoints store structured names instead (and map back on load)."""
    out = {}
    names = sorted(mapping, key=len, reverse=True)
    for k, v in state.items():
        if isinstance(v, dict) and k == "master_weights":
            out[k] = {mapping.get(kk, kk): vv for kk, vv in v.items()}
            continue
        for n in names:
            if k.startswith(n + "_") or k == n:
                k = mapping[n] + k[len(n):]
                break
        out[k] = v
    return out


class Trainer:
    def __init__(self, config: dict, *, model=None, train_loader=None, eval_loader=None, quiet: bool = False,
                 log_file=None):
        self.cfg = config
        self.paddle = paddle = import_paddle()
        # Paddle repeats this note on every BatchNorm call in train mode; it says nothing actionable
        warnings.filterwarnings("ignore", message="When training, we now always track global mean")
        self.quiet = quiet
        self.rank, self.world = dist_info()
        self.device = select_device(_get(config, "Global.device", "auto"))
        if self.world > 1:
            import paddle.distributed as dist

            dist.init_parallel_env()
        self.seed = int(_get(config, "Global.seed", 0) or 0)
        paddle.seed(self.seed)
        np.random.seed(self.seed)
        self.epochs = int(_get(config, "Global.epochs", 1))
        self.output_dir = run_dir_of(config)
        self._log_fp = None
        self.vdl = None
        if _get(config, "Global.use_visualdl", False) and self.rank == 0:
            from .visualdl_log import require_visualdl

            require_visualdl()  # before the model is built: a missing extra fails in a second
        self.model = model if model is not None else build_model(config, log=self.log)
        self.train_loader = train_loader
        self.eval_loader = eval_loader
        self._loaders_given = train_loader is not None or eval_loader is not None
        self.class_names = None
        self.num_classes = cfg_class_num(config)
        self.history = []
        self.start_epoch = 1
        self.global_step = 0
        self.best = {"metric": None, "value": -math.inf, "epoch": 0}
        self.ema = None
        self.optimizer = None
        self.lr_sched = None
        self.scaler = None

    # ------------------------------------------------------------------ helpers
    def log(self, msg: str) -> None:
        if self.rank == 0 and not self.quiet:
            print(msg, flush=True)

    def _jsonl(self, record: dict) -> None:
        if self.rank != 0:
            return
        if self._log_fp is None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._log_fp = open(self.output_dir / "train_log.jsonl", "a", encoding="utf-8")
        self._log_fp.write(json.dumps(record) + "\n")
        self._log_fp.flush()

    def _build_loader(self, mode):
        from .. import data

        build = getattr(data, "build_dataloader", None)
        if build is None:
            raise ConfigError("hubcls.data.build_dataloader is not available in this install")
        self._check_files(mode)
        return build(self.cfg, mode, seed=self.seed, rank=self.rank, world_size=self.world)

    def _check_files(self, mode):
        ds = _get(self.cfg, f"DataLoader.{mode}.dataset")
        if not isinstance(ds, dict):
            raise ConfigError(f"DataLoader.{mode}.dataset is required (a mapping with name, image_root, cls_label_path)")
        keys = ["cls_label_path"]
        if str(ds.get("name", "")).lower() != "demodataset":  # the demo set is generated on first use
            keys.append("image_root")
        for key in keys:
            v = ds.get(key)
            if v and not Path(v).exists():
                raise ConfigError(f"DataLoader.{mode}.dataset.{key}: {v!r} does not exist")

    def _loader_classes(self, loader):
        ds = getattr(loader, "dataset", None)
        n = getattr(loader, "num_classes", None) or getattr(ds, "num_classes", None)
        names = getattr(ds, "class_names", None) or getattr(loader, "class_names", None)
        return n, names

    def preflight(self, mode="Train"):
        """Data-dependent checks before any step runs: class count vs labels, top-k vs classes."""
        loader = self.train_loader if mode == "Train" else self.eval_loader
        n_data, names = self._loader_classes(loader) if loader is not None else (None, None)
        n_cfg = self.num_classes
        if n_cfg and n_data and n_data > n_cfg:
            raise ConfigError(
                f"Arch.class_num={n_cfg} but the {mode} labels have {n_data} classes "
                f"(DataLoader.{mode}.dataset.cls_label_path); set -o Arch.class_num={n_data}")
        self.num_classes = n_cfg or n_data
        if names and not self.class_names:
            self.class_names = list(names)
        if not self.num_classes:
            raise ConfigError("Arch.class_num is required (the data loader does not report a class count)")
        out_dim = self._model_out_dim()
        if out_dim and out_dim != self.num_classes:
            raise ConfigError(f"the model has {out_dim} outputs but Arch.class_num={self.num_classes}")
        for m in ("Train", "Eval"):
            for i, (name, kw) in enumerate(named_items(_get(self.cfg, f"Metric.{m}"), f"Metric.{m}")):
                ks = kw.get("topk")
                ks = [ks] if isinstance(ks, int) else (ks or [])
                bad = [k for k in ks if k > self.num_classes]
                if bad:
                    raise ConfigError(
                        f"Metric.{m}[{i}].{name}.topk={ks}: top-{bad[0]} needs at least {bad[0]} classes, "
                        f"the task has {self.num_classes}; use topk <= {self.num_classes}")

    def _model_out_dim(self):
        n = getattr(self.model, "num_classes", None)
        if isinstance(n, int) and n > 0:
            return n
        return None

    def _to_tensor(self, x, dtype=None):
        paddle = self.paddle
        if isinstance(x, paddle.Tensor):
            return x
        return paddle.to_tensor(np.asarray(x), dtype=dtype)

    def _batch(self, batch):
        if isinstance(batch, (list, tuple)):
            batch = {"image": batch[0], "label": batch[1], "index": batch[2] if len(batch) > 2 else None}
        out = {"image": self._to_tensor(batch["image"], "float32"), "label": self._to_tensor(batch["label"])}
        idx = batch.get("index")
        out["index"] = np.asarray(idx.numpy() if hasattr(idx, "numpy") else idx) if idx is not None else None
        return out

    # ------------------------------------------------------------------ setup
    def setup_train(self):
        paddle = self.paddle
        if self.train_loader is None:
            self.train_loader = self._build_loader("Train")
        if self.eval_loader is None and _get(self.cfg, "Global.eval_during_train", True) and _get(self.cfg, "DataLoader.Eval"):
            self.eval_loader = self._build_loader("Eval")
        self.preflight("Train")
        self.loss_fn = CombinedLoss(named_items(_get(self.cfg, "Loss.Train"), "Loss.Train"))
        self.eval_loss_fn = CombinedLoss(named_items(_get(self.cfg, "Loss.Eval") or _get(self.cfg, "Loss.Train"), "Loss.Eval"))
        # PaddleClas spells gradient accumulation Global.update_freq
        self.accum = int(_get(self.cfg, "Global.update_freq", None) or _get(self.cfg, "Global.accum_steps", 1) or 1)
        steps_per_epoch = max(1, len(self.train_loader) // self.accum)
        self.steps_per_epoch = steps_per_epoch
        self.optimizer, self.lr_sched = build_optimizer(
            _get(self.cfg, "Optimizer"), self.model, self.epochs, steps_per_epoch,
            lr_mult_list=None if getattr(self.model, "_hubcls_lr_mult_applied", False) else _get(self.cfg, "Arch.lr_mult_list"),
            no_wd_norm_bias=bool(_get(self.cfg, "Global.no_weight_decay_on_norm_bias", False)),
            freeze_stages=int(_get(self.cfg, "Arch.freeze_stages", 0) or 0))
        ema_cfg = self.cfg.get("EMA")
        if ema_cfg and ema_cfg.get("decay", 0.9999):
            from .ema import ModelEMA

            self.ema = ModelEMA(self.model, float(ema_cfg.get("decay", 0.9999)))
        self.use_amp = bool(_get(self.cfg, "AMP.use_amp", False) or (self.cfg.get("AMP") and _get(self.cfg, "AMP.use_amp") is None))
        if self.use_amp and self.device != "gpu":
            global _AMP_WARNED
            if not _AMP_WARNED:
                warnings.warn("AMP is configured but this run is on the CPU: AMP is a no-op here (fp32 training)",
                              stacklevel=2)
                _AMP_WARNED = True
            self.use_amp = False
        if self.use_amp:
            self.amp_level = _get(self.cfg, "AMP.level", "O1")
            self.scaler = paddle.amp.GradScaler(
                init_loss_scaling=float(_get(self.cfg, "AMP.scale_loss", 1024.0)),
                use_dynamic_loss_scaling=bool(_get(self.cfg, "AMP.use_dynamic_loss_scaling", True)))
            if self.amp_level == "O2":
                self.model, self.optimizer = paddle.amp.decorate(self.model, self.optimizer, level="O2")
        self.train_model = paddle.DataParallel(self.model) if self.world > 1 else self.model

    # ------------------------------------------------------------------ checkpoints
    def state(self, epoch: int) -> dict:
        mapping = _param_name_map(self.model)
        st = {
            "model": self.model.state_dict(),
            "optimizer": _rename_opt_state(self.optimizer.state_dict(), mapping),
            "lr": self.lr_sched.state_dict(),
            "epoch": epoch,
            "global_step": self.global_step,
            "best": dict(self.best),
            "rng": ckpt.rng_state(),
            "history": list(self.history),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "arch": self.cfg["Arch"]["name"],
        }
        if self.ema is not None:
            st["ema"] = self.ema.state_dict()
        if self.scaler is not None:
            st["scaler"] = self.scaler.state_dict()
        return st

    def _package_facts(self) -> dict:
        """What the run's model packages say besides the weights: class names, eval preprocessing
        (Infer.transforms, else the Eval loader's ops; DecodeImage is the reader's), provenance."""
        if getattr(self, "_facts", None) is None:
            ops = _get(self.cfg, "Infer.transforms") or _get(self.cfg, "DataLoader.Eval.dataset.transform_ops") or []
            ops = [op for op in ops if not (isinstance(op, dict) and "DecodeImage" in op)] or None
            if getattr(self.model, "pretrained_cfg", None) is None:  # a model not built by create_model
                from ..models import PretrainedCfg

                name = str(self.cfg["Arch"]["name"])
                shape = _get(self.cfg, "Global.image_shape") or [3, 224, 224]
                self.model.pretrained_cfg = PretrainedCfg(name=name, arch=name, num_classes=int(self.num_classes),
                                                          input_size=int(shape[-1]), label_list="")
            labels = list(self.class_names) if self.class_names and len(self.class_names) == self.num_classes else None
            clean = {k: v for k, v in self.cfg.items() if not str(k).startswith("_")}
            src = _get(self.cfg, "Arch.pretrained") or _get(self.cfg, "Global.pretrained_model")
            self._facts = {"labels": labels, "preprocess": ops,
                           "provenance": {"config": clean, **({"source_weights": str(src)} if src else {})}}
        return self._facts

    def _write_package(self, sub: str, weights: dict, epoch: int, metrics: Optional[dict] = None) -> Path:
        from ..models import save_package

        facts = self._package_facts()
        prov = {**facts["provenance"], "epoch": int(epoch), "run": sub}
        if metrics:
            prov["metrics"] = metrics
        d = self.output_dir / sub
        try:
            save_package(self.model, d, labels=facts["labels"], preprocess=facts["preprocess"], provenance=prov,
                         pdparams=bool(_get(self.cfg, "Global.save_pdparams", False)), state_dict=weights,
                         name=str(self.cfg["Arch"]["name"]))
        except OSError as exc:
            ckpt.clean_temp_files(self.output_dir)
            raise CheckpointError(ckpt.describe_os_error(exc, getattr(exc, "filename", None) or d)) from exc
        return d

    def save(self, epoch: int, is_best: bool, metrics: Optional[dict] = None) -> None:
        """last.pdckpt first (the commit point: it holds the weights and the best record), then the
        last/ package, then best/ when this epoch is the best. A crash between them leaves packages
        one save behind, which :meth:`reconcile` rebuilds from the checkpoint on resume."""
        if self.rank != 0:
            return
        st = self.state(epoch)
        weights = self.ema.shadow if self.ema is not None else st["model"]
        done = getattr(self, "_saved_epoch", None)
        try:
            ckpt.atomic_save(st, self.output_dir / ckpt.LAST)
        except CheckpointError as exc:
            before = f"{ckpt.LAST} of epoch {done} is intact" if done else f"no earlier {ckpt.LAST} was written"
            raise CheckpointError(f"{exc}; {before}. Free space (or fix the error) and run again with --resume") from None
        self._saved_epoch = epoch
        try:
            self._write_package(ckpt.LAST_DIR, weights, epoch, metrics)
            if is_best:
                self._write_package(ckpt.BEST_DIR, weights, epoch, metrics)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}; {ckpt.LAST} (epoch {epoch}) is complete: run again with --resume to "
                                  "rewrite the model packages from it") from None

    def reconcile(self, st: dict) -> List[str]:
        """Make last/ and best/ agree with the checkpoint ``st`` after a crash: a package whose epoch
        is not the one the checkpoint records is rewritten from the checkpoint's weights (the
        checkpoint is written first, so they are the weights of its own epoch)."""
        if self.rank != 0:
            return []
        fixed = []
        epoch = int(st["epoch"])
        weights = st.get("ema") if self.ema is not None and st.get("ema") else st["model"]
        if isinstance(weights, dict) and "shadow" in weights and isinstance(weights["shadow"], dict):
            weights = weights["shadow"]
        if ckpt.package_epoch(self.output_dir / ckpt.LAST_DIR) != epoch:
            self._write_package(ckpt.LAST_DIR, weights, epoch)
            fixed.append(f"{ckpt.LAST_DIR}/ (epoch {epoch})")
        best_epoch = int((st.get("best") or {}).get("epoch") or 0)
        have = ckpt.package_epoch(self.output_dir / ckpt.BEST_DIR)
        if best_epoch and have != best_epoch:
            if best_epoch != epoch:  # cannot happen with this write order; say so rather than guess
                raise CheckpointError(f"{self.output_dir / ckpt.BEST_DIR} holds epoch {have}, {ckpt.LAST} records the "
                                      f"best at epoch {best_epoch} whose weights are no longer available")
            self._write_package(ckpt.BEST_DIR, weights, epoch)
            fixed.append(f"{ckpt.BEST_DIR}/ (epoch {epoch})")
        if fixed:
            self.log(f"resume: rewrote {', '.join(fixed)} from {ckpt.LAST} (an earlier save was interrupted)")
        return fixed

    def resume(self, path=None) -> bool:
        """Restore everything from ``path`` (a .pdckpt or run dir; default: this run's last.pdckpt)."""
        explicit = path is not None
        p = Path(path) if path else self.output_dir / ckpt.LAST
        if p.is_dir():
            p = p / ckpt.LAST
        if not p.is_file() and not explicit:
            self.log(f"resume: no checkpoint at {p}; starting from scratch")
            return False
        st = ckpt.load_checkpoint(p)
        arch = st.get("arch")
        if arch and str(arch) != str(self.cfg["Arch"]["name"]):
            raise ConfigError(f"--resume {p}: the checkpoint is of {arch}, the config trains {self.cfg['Arch']['name']}")
        try:
            self.model.set_state_dict(st["model"])
        except Exception as exc:  # noqa: BLE001 - shape mismatches surface as several types
            raise ConfigError(f"--resume {p}: its weights do not fit the model ({exc})") from None
        inverse = {n: p_.name for n, p_ in self.model.named_parameters()}
        self.optimizer.set_state_dict(_rename_opt_state(st["optimizer"], inverse))
        self.lr_sched.set_state_dict(st["lr"])
        self.optimizer._learning_rate = self.lr_sched  # keep the scheduler object the optimizer steps
        self.start_epoch = int(st["epoch"]) + 1
        self.global_step = int(st["global_step"])
        self.best = dict(st.get("best") or self.best)
        self.history = list(st.get("history") or [])
        if self.ema is not None and "ema" in st:
            self.ema.set_state_dict(st["ema"])
        if self.scaler is not None and "scaler" in st:
            self.scaler.load_state_dict(st["scaler"])
        ckpt.set_rng_state(st.get("rng"))
        self._saved_epoch = int(st["epoch"])
        if p.resolve() == (self.output_dir / ckpt.LAST).resolve():
            self.reconcile(st)
        self.log(f"resumed from {p} (epoch {st['epoch']} done, step {self.global_step}, lr {self.lr_sched.last_lr:.6g})")
        return True

    def _truncate_log(self, through_epoch: int) -> None:
        """Drop JSONL records of epochs after ``through_epoch`` (a resumed run writes them again)."""
        log = self.output_dir / "train_log.jsonl"
        if self.rank != 0 or not log.is_file():
            return
        keep, dropped = [], 0
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut by the kill
                dropped += 1
                continue
            if int(rec.get("epoch", 0)) <= through_epoch:
                keep.append(line)
            else:
                dropped += 1
        if dropped:
            tmp = log.with_name(f".{log.name}.tmp{os.getpid()}")
            tmp.write_text("".join(x + "\n" for x in keep), encoding="utf-8")
            os.replace(tmp, log)

    # ------------------------------------------------------------------ train
    def _forward(self, model, image):
        return main_logits(model(image))

    def compute_loss(self, model, b):
        """Training loss of one batch -> (loss, logits of the labelled samples). Distillation overrides it."""
        out = model(b["image"])  # all outputs: GoogLeNetLoss also uses the auxiliary heads
        loss, _ = self.loss_fn(out, b)
        return loss, main_logits(out)

    def _log_steps(self, epoch: int, step: int, steps: int, win: dict, bar) -> None:
        """One PaddleClas-style line (and JSONL record, VisualDL scalars) for the steps in ``win``."""
        n = max(win["steps"], 1)
        reader_cost, batch_cost = win["reader"] / n, win["batch"] / n
        ips = win["samples"] * self.world / max(win["batch"], 1e-9)
        remaining = (steps - step) + (self.epochs - epoch) * steps
        eta_s = remaining * batch_cost
        eta = int(round(eta_s))
        lr = float(self.lr_sched.last_lr)
        rec = {"type": "step", "epoch": epoch, "step": step, "global_step": self.global_step,
               "loss": win["loss"] / max(win["samples"], 1), "lr": lr, "batch_cost": batch_cost,
               "reader_cost": reader_cost, "ips": ips, "eta_s": round(eta_s, 3)}
        if win["hard"]:
            rec["top1"] = win["correct"] / win["hard"]
        self._jsonl(rec)
        if self.vdl is not None:
            self.vdl.scalars("train", {k: rec[k] for k in ("loss", "lr", "batch_cost", "reader_cost", "ips", "top1")
                                       if k in rec}, self.global_step)
        if self.rank == 0 and not self.quiet:
            top1 = f", top1: {rec['top1']:.5f}" if "top1" in rec else ""
            line = (f"[Train][Epoch {epoch}/{self.epochs}][Iter: {step}/{steps}]lr: {lr:.5f}, loss: {rec['loss']:.5f}"
                    f"{top1}, batch_cost: {batch_cost:.5f} s, reader_cost: {reader_cost:.5f} s, "
                    f"ips: {ips:.5f} samples/s, eta: {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}")
            if bar is not None and not bar.disable:
                bar.write(line, file=sys.stdout)
            else:
                print(line, flush=True)

    def train_epoch(self, epoch: int) -> dict:
        paddle = self.paddle
        from tqdm import tqdm

        model = self.train_model
        model.train()
        if hasattr(self.train_loader, "set_epoch"):
            self.train_loader.set_epoch(epoch)
        # per-epoch seeding: dropout/drop-path draws depend on (seed, epoch, rank) only
        paddle.seed(self.seed * 100003 + epoch * 1009 + self.rank)
        n_batches = len(self.train_loader)
        usable = (n_batches // self.accum) * self.accum
        bar = tqdm(total=usable, desc=f"epoch {epoch}/{self.epochs}", unit="batch", leave=False,
                   disable=self.rank != 0 or self.quiet, dynamic_ncols=True, file=sys.stderr)
        loss_sum, n_seen, correct, hard = 0.0, 0, 0, 0
        t0 = time.time()
        print_every = int(_get(self.cfg, "Global.print_batch_step", 10) or 10)
        # PaddleClas's per-step timing: reader_cost = waiting for the batch, batch_cost = reader +
        # compute, ips = samples/s over all ranks; averaged over the steps since the last log line
        win = {"reader": 0.0, "batch": 0.0, "steps": 0, "samples": 0, "loss": 0.0, "correct": 0, "hard": 0}
        tic = time.perf_counter()
        for i, raw in enumerate(self.train_loader):
            if i >= usable:
                break
            reader_cost = time.perf_counter() - tic
            b = self._batch(raw)
            if i == 0 and self.vdl is not None:
                self.vdl.images("train/images", b["image"], epoch)
            last_micro = (i + 1) % self.accum == 0
            ctx = model.no_sync() if (self.world > 1 and not last_micro) else _nullctx()
            with ctx:
                if self.use_amp:
                    with paddle.amp.auto_cast(level=self.amp_level):
                        loss, logits = self.compute_loss(model, b)
                    scaled = self.scaler.scale(loss / self.accum)
                    scaled.backward()
                else:
                    loss, logits = self.compute_loss(model, b)
                    (loss / self.accum if self.accum > 1 else loss).backward()
            if last_micro:
                if self.use_amp:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.optimizer.clear_grad()
                self.lr_sched.step()
                self.global_step += 1
                if self.ema is not None:
                    self.ema.update(self.model)
            bs = int(b["label"].shape[0])
            lv = float(loss)
            if not math.isfinite(lv):
                raise FloatingPointError(f"loss is {lv} at epoch {epoch}, batch {i}; lower the learning rate")
            loss_sum += lv * bs
            n_seen += bs
            if b["label"].ndim == 1 or (b["label"].ndim == 2 and b["label"].shape[-1] == 1):
                pred = logits.argmax(axis=-1).numpy()
                hit = int((pred == b["label"].numpy().reshape(-1)).sum())
                correct += hit
                hard += bs
                win["correct"] += hit
                win["hard"] += bs
            batch_cost = time.perf_counter() - tic
            win["reader"] += reader_cost
            win["batch"] += batch_cost
            win["steps"] += 1
            win["samples"] += bs
            win["loss"] += lv * bs
            ips = n_seen * self.world / max(time.time() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss_sum / n_seen:.4f}", lr=f"{self.lr_sched.last_lr:.2e}", ips=f"{ips:.1f} img/s")
            bar.update(1)
            if (i + 1) % print_every == 0 or i + 1 == usable:
                self._log_steps(epoch, i + 1, usable, win, bar)
                win = dict.fromkeys(win, 0)
                win.update(reader=0.0, batch=0.0, loss=0.0)
            tic = time.perf_counter()
        bar.close()
        stats = {"train_loss": loss_sum / max(n_seen, 1), "lr": float(self.lr_sched.last_lr),
                 "ips": n_seen * self.world / max(time.time() - t0, 1e-9), "epoch_time": time.time() - t0}
        if hard:
            stats["train_top1"] = correct / hard
        if self.world > 1:  # average the per-rank training stats
            import paddle.distributed as dist

            keys = sorted(k for k in stats if k != "lr")
            t = paddle.to_tensor([float(stats[k]) for k in keys], dtype="float64")
            dist.all_reduce(t)
            for k, v in zip(keys, (t / self.world).numpy().tolist()):
                stats[k] = v * (self.world if k == "ips" else 1)
        return stats

    def train(self, resume: bool = False, resume_from=None, overwrite: bool = False) -> dict:
        """Train ``Global.epochs`` epochs. A run directory that already holds a run is refused unless
        ``resume`` (continue it) or ``overwrite`` (delete its checkpoints, packages and logs first)."""
        resuming = bool(resume or resume_from or _get(self.cfg, "Global.checkpoints"))
        if self.rank == 0:
            ckpt.clean_temp_files(self.output_dir)
            found = ckpt.existing_run(self.output_dir)
            if found and not resuming:
                if not overwrite:
                    raise ConfigError(f"{self.output_dir} already holds a run ({found}); continue it with --resume, "
                                      f"start over with --overwrite (deletes its checkpoints and logs), or write "
                                      f"elsewhere with -o Global.output_dir=DIR")
                removed = ckpt.remove_run(self.output_dir)
                self.log(f"--overwrite: removed {', '.join(removed)} from {self.output_dir}")
        if self.optimizer is None:
            self.setup_train()
        if resuming:
            self.resume(resume_from or _get(self.cfg, "Global.checkpoints"))
        try:
            return self._train_loop()
        except BaseException:
            if self.rank == 0:
                ckpt.clean_temp_files(self.output_dir)
            raise
        finally:
            if self._log_fp:
                self._log_fp.close()
                self._log_fp = None
            if self.vdl is not None:
                self.vdl.close()
                self.vdl = None

    def _train_loop(self) -> dict:
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._truncate_log(self.start_epoch - 1)
            dump_config(self.cfg, self.output_dir / "config.yaml")
            if _get(self.cfg, "Global.use_visualdl", False) and self.vdl is None:
                from .visualdl_log import VisualDLLogger

                self.vdl = VisualDLLogger(
                    _get(self.cfg, "Global.visualdl_dir") or self.output_dir / "vdl",
                    transform_ops=_get(self.cfg, "DataLoader.Train.dataset.transform_ops") or [],
                    max_images=int(_get(self.cfg, "Global.visualdl_images", 4)))
        eval_every = int(_get(self.cfg, "Global.eval_interval", 1) or 1)
        save_every = int(_get(self.cfg, "Global.save_interval", 1) or 1)
        do_eval = bool(_get(self.cfg, "Global.eval_during_train", True)) and self.eval_loader is not None
        if self.start_epoch > self.epochs:
            self.log(f"nothing to do: checkpoint already at epoch {self.start_epoch - 1} of {self.epochs}")
        for epoch in range(self.start_epoch, self.epochs + 1):
            stats = self.train_epoch(epoch)
            rec = {"type": "epoch", "epoch": epoch, "global_step": self.global_step, **stats}
            is_best = False
            if do_eval and (epoch % eval_every == 0 or epoch == self.epochs):
                res, metrics = self.evaluate(use_ema=self.ema is not None)
                rec.update({f"eval_{k}": v for k, v in metrics.items()})
                key = "top1" if "top1" in metrics else ("mAP" if "mAP" in metrics else None)
                if key is not None and metrics[key] > self.best["value"]:
                    self.best = {"metric": key, "value": metrics[key], "epoch": epoch}
                    is_best = True
                    self._last_eval = res
                if self.rank == 0:
                    self._write_eval_artifacts(res, prefix="eval")
            elif not do_eval:
                is_best = True  # without evaluation the newest weights are the best we know
            self.history.append(rec)
            self._jsonl(rec)
            if self.vdl is not None:
                self.vdl.scalars("epoch", {k: v for k, v in rec.items() if k not in ("type", "epoch", "global_step")},
                                 epoch)
            msg = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()
                           if k not in ("type", "global_step"))
            self.log(f"[epoch {epoch}/{self.epochs}] {msg}")
            if epoch % save_every == 0 or epoch == self.epochs or is_best:
                self.save(epoch, is_best, metrics={k[5:]: v for k, v in rec.items() if k.startswith("eval_")} or None)
        if self.rank == 0 and _get(self.cfg, "Global.report", True) and self.history:
            try:
                from .report import write_report

                path = write_report(self)
                if path:
                    self.log(f"report: {path}")
            except ImportError as exc:
                self.log(f"report skipped ({exc}); install the report extra: pip install 'hubcls[report]'")
        return {"best": self.best, "history": self.history, "output_dir": str(self.output_dir)}

    # ------------------------------------------------------------------ eval
    def evaluate(self, loader=None, use_ema: bool = False):
        """Run the eval loader; returns (EvalResult, metrics dict). Every rank gets the same result."""
        paddle = self.paddle
        from tqdm import tqdm

        loader = loader or self.eval_loader
        if loader is None:
            loader = self.eval_loader = self._build_loader("Eval")
        if not self.num_classes:
            self.preflight("Eval")
        if self.class_names is None:
            _, names = self._loader_classes(loader)
            self.class_names = list(names) if names else None
        model = self.model
        backup = None
        if use_ema and self.ema is not None:
            backup = {k: v.clone() for k, v in model.state_dict().items()}
            self.ema.copy_to(model)
        model.eval()
        eval_metrics = named_items(_get(self.cfg, "Metric.Eval") or [{"TopkAcc": {"topk": [1, 5]}}], "Metric.Eval")
        keep_scores = any(n.lower() == "map" for n, _ in eval_metrics)
        kmax = max([max(kw.get("topk", [1]) if isinstance(kw.get("topk", 1), list) else [kw.get("topk", 1)])
                    for _, kw in eval_metrics] + [5])
        res = EvalResult(self.num_classes, kmax=kmax, keep_scores=keep_scores)
        loss_fn = getattr(self, "eval_loss_fn", None)
        loss_sum, n = 0.0, 0
        bar = tqdm(total=len(loader), desc="eval", unit="batch", leave=False,
                   disable=self.rank != 0 or self.quiet, file=sys.stderr)
        with paddle.no_grad():
            for raw in loader:
                b = self._batch(raw)
                logits = self._forward(model, b["image"])
                if loss_fn is not None:
                    loss_sum += float(loss_fn(logits, b)[0]) * int(logits.shape[0])
                    n += int(logits.shape[0])
                res.add(logits.astype("float32").numpy(), b["label"].numpy(), b["index"])
                bar.update(1)
        bar.close()
        parts = [res.arrays()]
        if self.world > 1:
            import paddle.distributed as dist

            gathered = []
            dist.all_gather_object(gathered, parts[0])
            parts = gathered
            t = paddle.to_tensor([loss_sum, float(n)], dtype="float64")
            dist.all_reduce(t)
            loss_sum, n = t.numpy().tolist()
        res.finalize(parts)
        metrics = {}
        for name, kw in eval_metrics:
            metrics.update(METRICS.get(name)(**kw).compute(res))
        if n:
            metrics["loss"] = loss_sum / n
        if backup is not None:
            model.set_state_dict(backup)
        return res, metrics

    def _write_eval_artifacts(self, res: EvalResult, prefix="eval"):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        cm = res.confusion()
        write_confusion_csv(self.output_dir / f"{prefix}_confusion_matrix.csv", cm, self.class_names)
        write_class_report(self.output_dir / f"{prefix}_per_class.csv", cm, self.class_names)


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
