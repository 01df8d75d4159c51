"""Which config keys hubcls knows: the keys it reads, and PaddleClas 2.x keys it accepts without
using them (each with the reason). Anything else is an *unknown* key: a warning that names the key
path and the closest known key (``Global.epoch: unknown key (did you mean Global.epochs?)``), or an
error with ``--strict`` / ``load_config(..., strict=True)``.

The spec is a tree of plain dicts. A leaf is ``True`` (read by hubcls) or an :class:`Ignored` (a
PaddleClas key hubcls accepts and does not use, with why). Lists of named items
(``transform_ops``, ``Loss.Train``, ``Metric.Eval``...) are checked against their registry: the
item's name must be registered, its arguments must be parameters of what is registered.
"""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional


@dataclass(frozen=True)
class Ignored:
    """A PaddleClas key hubcls accepts and does not use; ``why`` goes into warnings and the docs."""

    why: str


@dataclass(frozen=True)
class OpList:
    """A PaddleClas list of ``- Name: {kwargs}`` items resolved through a registry.

    ``registry`` returns the registry (imported lazily: data/ and engine/ registries); ``ignored``
    maps ``OpName.arg`` (or ``*.arg`` for every op) to why hubcls does not use it.
    """

    registry: Callable[[], object]
    ignored: Optional[Dict[str, str]] = None


@dataclass(frozen=True)
class Named:
    """A mapping whose ``name`` is looked up in a registry and whose other keys are that object's
    parameters (a dataset, an LR schedule); ``extra`` are keys read around the object."""

    registry: Callable[[], object]
    extra: Optional[dict] = None
    skip: tuple = ()  # parameters the engine fills in itself (not config keys)


class AnyKey:
    """A mapping with user-chosen keys (``DataLoader.<mode>``), each checked against ``spec``."""

    def __init__(self, spec):
        self.spec = spec


OPEN = object()  # a mapping passed through as it is (checked where it is used, e.g. model kwargs)


def _augmenters():
    from ..data.transforms import AUGMENTERS

    return AUGMENTERS


def _batch_ops():
    from ..data.transforms import BATCH_OPS

    return BATCH_OPS


def _datasets():
    from ..data.datasets import DATASETS

    return DATASETS


def _losses():
    from .losses import LOSSES

    return LOSSES


def _metrics():
    from .metrics import METRICS

    return METRICS


def _schedules():
    from .optim import LR_SCHEDULES

    return LR_SCHEDULES


_DALI = "NVIDIA DALI GPU reader; hubcls decodes and preprocesses with its own C++ core"
_RETRIEVAL = "image-retrieval setting (PaddleClas's recognition pipeline); hubcls trains and evaluates classifiers"
_TRANSFORM_IGNORED = {
    "DecodeImage.to_np": "images are always decoded to NumPy arrays",
    "NormalizeImage.order": "the compiled pipeline tracks the layout (HWC/CHW) itself",
}

DATALOADER_MODE = {
    "dataset": Named(_datasets, extra={
        "transform_ops": OpList(_augmenters, _TRANSFORM_IGNORED),
        "batch_transform_ops": OpList(_batch_ops),
        "delimiter": True,
    }),
    "sampler": {
        "name": True,  # DistributedBatchSampler / BatchSampler; any other is reported by _Checker.samplers
        "batch_size": True,
        "shuffle": True,
        "drop_last": True,
    },
    "loader": {
        "num_workers": True,
        "use_shared_memory": Ignored("hubcls's worker processes choose their own transport for batches"),
        "decode_threads": True,
        "timeout": True,
        "prefetch_factor": True,
        "start_method": True,
        "on_bad_sample": True,
    },
    "on_bad_sample": True,
}

SCHEMA = {
    "Global": {
        "checkpoints": True,
        "pretrained_model": True,
        "output_dir": True,
        "output_subdir": True,
        "device": True,
        "save_interval": True,
        "eval_during_train": True,
        "eval_interval": True,
        "epochs": True,
        "print_batch_step": True,
        "seed": True,
        "image_shape": True,
        "save_inference_dir": True,
        "accum_steps": True,
        "update_freq": True,  # PaddleClas's name for gradient accumulation (= accum_steps)
        "no_weight_decay_on_norm_bias": True,
        "report": True,
        "class_num": True,
        "on_bad_sample": True,
        "save_pdparams": True,  # hubcls: the run's packages also get model.pdparams (PaddleClas tools)
        "use_visualdl": True,
        "visualdl_dir": True,
        "visualdl_images": True,
        "to_static": Ignored("dygraph training only; `hubcls export` traces the model to a static program itself"),
        "use_dali": Ignored(_DALI),
        "image_channel": Ignored("export reads the input channels from the model"),
        "eval_mode": Ignored(_RETRIEVAL),
        "retrieval_feature_from": Ignored(_RETRIEVAL),
        "re_ranking": Ignored(_RETRIEVAL),
        "feature_normalize": Ignored(_RETRIEVAL),
        "feature_binarize": Ignored(_RETRIEVAL),
        "train_mode": Ignored("PaddleClas's progressive-resizing mode (EfficientNetV2); hubcls trains at one size"),
        "use_multilabel": Ignored("hubcls detects multi-label data from the dataset (MultiLabelDataset) and its loss"),
    },
    "Arch": OPEN,  # name, class_num, pretrained, lr_mult_list, freeze_stages + model kwargs: see check_arch
    "Loss": {"Train": OpList(_losses), "Eval": OpList(_losses)},
    "Metric": {"Train": OpList(_metrics), "Eval": OpList(_metrics)},
    "Optimizer": OPEN,  # name-dependent: see check_optimizer
    "DataLoader": AnyKey(DATALOADER_MODE),
    "AMP": {
        "use_amp": True,
        "level": True,
        "scale_loss": True,
        "use_dynamic_loss_scaling": True,
        "use_fp16_test": Ignored("evaluation runs in the training precision"),
        "use_promote": Ignored("Paddle's O2 type-promotion switch; hubcls keeps Paddle's default"),
    },
    "EMA": {"decay": True},
    "Infer": {
        "infer_imgs": Ignored("`hubcls infer -c CONFIG IMAGES...` takes the images on the command line"),
        "batch_size": True,
        "transforms": OpList(_augmenters, _TRANSFORM_IGNORED),
        "PostProcess": {
            "name": Ignored("hubcls's prediction pipeline always returns softmax top-k with labels"),
            "topk": Ignored("`hubcls infer --top-k K` sets it (default 5)"),
            "class_id_map_file": True,
            "delimiter": Ignored("the label map is read as '<id> <name>' lines"),
            "threshold": Ignored("multi-label thresholding (MultiLabelTopk/ThreshOutput) is not part of hubcls infer"),
            "func": Ignored("ThreshOutput's post-processing function; see threshold"),
        },
    },
    "Distillation": {
        "teacher": OPEN,  # name, pretrained, checkpoint, class_num + model kwargs
        "loss": True,
        "temperature": True,
        "weight": True,
        "label_weight": True,
        "cache": {"dir": True, "topk": True},
    },
}

SAMPLERS = ("DistributedBatchSampler", "BatchSampler")
ARCH_KEYS = {"name", "class_num", "pretrained", "lr_mult_list", "freeze_stages"}
ARCH_IGNORED = {
    "use_sync_bn": "cross-GPU BatchNorm; hubcls keeps per-process BatchNorm statistics",
    "infer_model_name": "PaddleClas DistillationModel export setting; hubcls's Distillation section exports the student",
    "infer_output_key": "PaddleClas DistillationModel export setting; see infer_model_name",
    "infer_add_softmax": "PaddleClas export setting; hubcls's prediction pipeline always applies softmax",
}

OPTIMIZER_KEYS = {"name", "lr", "regularizer", "weight_decay", "clip_norm", "one_dim_param_no_weight_decay",
                  "no_weight_decay_name"}
OPTIMIZER_IGNORED = {
    "multi_precision": "fp32 master weights under AMP O2; Paddle keeps them itself when AMP O2 decorates the optimizer",
}
LR_KEYS = {"name", "learning_rate", "warmup_epoch", "warmup_start_lr"}
LR_IGNORED = {
    "by_epoch": "hubcls's schedules are functions of the update step; an epoch-wise one changes at epoch boundaries anyway",
    "step_each_epoch": "hubcls computes steps per epoch from the data list and batch size",
    "last_epoch": "`--resume` restores the schedule's position from the checkpoint",
    "verbose": "Paddle's LRScheduler print switch",
}
LR_INTERNAL = {"total_steps", "steps_per_epoch", "warmup_steps"}


@dataclass
class KeyIssue:
    path: str
    kind: str  # "unknown" | "ignored"
    message: str


def _close(name: str, candidates, prefix: str) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    if not close:
        low = {str(c).lower(): str(c) for c in candidates}
        if str(name).lower() in low:
            close = [low[str(name).lower()]]
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _params(obj) -> Optional[set]:
    """Keyword parameters of a class's __init__ or a function; None when it accepts any (**kwargs
    forwarded somewhere). A ``**_ignored``-style catch-all (underscore name) swallows PaddleClas
    keys on purpose, so it does not make every key known."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    names = set()
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.VAR_KEYWORD:
            if not p.name.startswith("_"):
                return None
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        names.add(p.name)
    return names


class _Checker:
    def __init__(self):
        self.issues: List[KeyIssue] = []

    def unknown(self, path, name, candidates, prefix, extra=""):
        self.issues.append(KeyIssue(path, "unknown",
                                    f"{path}: unknown key{_close(name, candidates, prefix)}, not used{extra}"))

    def ignored(self, path, why):
        self.issues.append(KeyIssue(path, "ignored", f"{path}: accepted but not used by hubcls ({why})"))

    # ------------------------------------------------------------------ walkers
    def mapping(self, node, spec, path):
        if node is None:
            return
        if not isinstance(node, dict):
            return  # type errors are validate_config's job
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("_"):
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in spec:
                prefix = f"{path}." if path else ""
                self.unknown(sub, key, [k for k in spec], prefix)
                continue
            self.value(value, spec[key], sub)

    def value(self, value, spec, path):
        if spec is True or spec is OPEN:
            return
        if isinstance(spec, Ignored):
            self.ignored(path, spec.why)
        elif isinstance(spec, dict):
            self.mapping(value, spec, path)
        elif isinstance(spec, AnyKey):
            if isinstance(value, dict):
                for k, v in value.items():
                    if k == "on_bad_sample":
                        continue
                    self.mapping(v, spec.spec, f"{path}.{k}")
        elif isinstance(spec, OpList):
            self.oplist(value, spec, path)
        elif isinstance(spec, Named):
            self.named(value, spec, path)

    def oplist(self, value, spec: OpList, path):
        if not isinstance(value, list):
            return
        registry = spec.registry()
        ignored = spec.ignored or {}
        for i, item in enumerate(value):
            if not isinstance(item, dict) or len(item) != 1:
                continue
            (name, kwargs), = item.items()
            where = f"{path}[{i}].{name}"
            if name not in registry:
                continue  # the builder raises with the registry's did-you-mean
            if not isinstance(kwargs, dict):
                continue
            params = _params(registry.get(name))
            for arg in kwargs:
                why = ignored.get(f"{name}.{arg}")
                if why:
                    self.ignored(f"{where}.{arg}", why)
                elif params is not None and arg not in params:
                    self.unknown(f"{where}.{arg}", arg, sorted(params), "",
                                 f" ({name} takes: {', '.join(sorted(params)) or 'no arguments'})")

    def named(self, value, spec: Named, path):
        if not isinstance(value, dict):
            return
        extra = spec.extra or {}
        params = None
        name = value.get("name")
        registry = spec.registry()
        if name is not None and name in registry:
            params = _params(registry.get(name))
        for key, v in value.items():
            sub = f"{path}.{key}"
            if key == "name":
                continue
            if key in extra:
                self.value(v, extra[key], sub)
            elif params is not None and key not in params - set(spec.skip):
                self.unknown(sub, key, sorted((params - set(spec.skip)) | set(extra)), f"{path}.")

    # ------------------------------------------------------------------ name-dependent sections
    def arch(self, cfg):
        arch = cfg.get("Arch")
        if not isinstance(arch, dict):
            return
        self.keys_of(arch, "Arch", None, ARCH_IGNORED, arch.get("name"))  # the rest: arch_args

    def samplers(self, cfg):
        """hubcls samples like PaddleClas's DistributedBatchSampler (seeded, sharded per rank); a
        config asking for another sampler (MultiScaleSampler, PKSampler...) is told so."""
        dl = cfg.get("DataLoader")
        if not isinstance(dl, dict):
            return
        for mode, section in dl.items():
            name = (section.get("sampler") or {}).get("name") if isinstance(section, dict) else None
            if name is not None and name not in SAMPLERS:
                path = f"DataLoader.{mode}.sampler.name"
                self.issues.append(KeyIssue(path, "unknown", f"{path}: {name!r} is not supported, not used "
                                                             f"(hubcls samples like {' / '.join(SAMPLERS)})"))

    def optimizer(self, cfg):
        opt = cfg.get("Optimizer")
        if not isinstance(opt, dict):
            return
        from .optim import OPTIMIZERS, optimizer_params

        name = opt.get("name")
        known = set(OPTIMIZER_KEYS)
        if name is not None and name in OPTIMIZERS:
            params = optimizer_params(name)
            if params is None:
                known = None
            else:
                known |= params
        self.keys_of(opt, "Optimizer", known, OPTIMIZER_IGNORED, name)
        reg = opt.get("regularizer")
        if isinstance(reg, dict):
            for key in reg:
                if key not in ("name", "coeff"):
                    self.unknown(f"Optimizer.regularizer.{key}", key, ["name", "coeff"], "Optimizer.regularizer.")
        lr = opt.get("lr")
        if isinstance(lr, dict):
            lname = lr.get("name", "Constant")
            sched = _schedules()
            params = _params(sched.get(lname)) if lname in sched else None
            known_lr = None if params is None else (params - LR_INTERNAL) | LR_KEYS
            self.keys_of(lr, "Optimizer.lr", known_lr, LR_IGNORED, lname)

    def keys_of(self, node: dict, path: str, known: Optional[set], ignored: dict, owner) -> None:
        """Each key of ``node``: ignored (with why), known, or unknown (with what ``owner`` takes)."""
        for key in node:
            if key in ignored:
                self.ignored(f"{path}.{key}", ignored[key])
            elif known is not None and key not in known:
                self.unknown(f"{path}.{key}", key, sorted(known), f"{path}.",
                             f" ({owner} takes: {', '.join(sorted(known - {'name'}))})")


def check_keys(cfg: dict) -> List[KeyIssue]:
    """Every unknown and every accepted-but-unused key of ``cfg`` (in file order)."""
    c = _Checker()
    for section, value in cfg.items():
        if isinstance(section, str) and section.startswith("_"):
            continue
        if section not in SCHEMA:
            c.unknown(str(section), section, list(SCHEMA), "")
            continue
        c.value(value, SCHEMA[section], str(section))
    c.arch(cfg)
    c.optimizer(cfg)
    c.samplers(cfg)
    return c.issues


def ignored_key_table() -> List[tuple]:
    """(key path, why) of every PaddleClas key hubcls accepts without using: the docs' table."""
    rows = []

    def walk(spec, path):
        if isinstance(spec, Ignored):
            rows.append((path, spec.why))
        elif isinstance(spec, dict):
            for k, v in spec.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(spec, AnyKey):
            walk(spec.spec, f"{path}.<mode>")
        elif isinstance(spec, Named):
            walk(spec.extra or {}, path)
        elif isinstance(spec, OpList):
            for k, why in (spec.ignored or {}).items():
                if why:
                    rows.append((f"{path}[].{k}", why))

    walk(SCHEMA, "")
    rows += [(f"Arch.{k}", why) for k, why in ARCH_IGNORED.items()]
    rows += [(f"Optimizer.{k}", why) for k, why in OPTIMIZER_IGNORED.items()]
    rows += [(f"Optimizer.lr.{k}", why) for k, why in LR_IGNORED.items()]
    return rows
