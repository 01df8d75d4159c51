"""PaddleClas-shaped YAML configs: loading, ``-o Section.key=value`` overrides, validation.

A config is a plain nested dict with the sections PaddleClas users know (Global / Arch / Loss /
Optimizer / DataLoader / Metric, plus optional AMP / EMA / Infer / Distillation). Errors are
:class:`hubcls.errors.ConfigError` and always name the key path (``Optimizer.lr.name``) and, where the
set is closed, the allowed values.
"""
from __future__ import annotations

import copy
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence

import yaml

from ..errors import ConfigError, ConfigWarning

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

# Defaults every config gets (the user's file wins); PaddleClas spellings.
DEFAULTS: dict = {
    "Global": {
        "checkpoints": None,
        "pretrained_model": None,
        "output_dir": "./output/",
        "output_subdir": True,  # runs go to output_dir/<Arch.name>/ (PaddleClas layout)
        "device": "auto",
        "save_interval": 1,
        "eval_during_train": True,
        "eval_interval": 1,
        "epochs": 1,
        "print_batch_step": 10,
        "seed": 0,
        "image_shape": [3, 224, 224],
        "save_inference_dir": "./inference",
        "accum_steps": 1,
        "no_weight_decay_on_norm_bias": False,
        "report": True,
    },
    "Arch": {"class_num": None},
}


def shipped_configs() -> List[str]:
    """Names of the YAML configs shipped in hubcls/configs (without the extension)."""
    return sorted(p.stem for p in CONFIG_DIR.rglob("*.yaml"))


def find_config(path_or_name: str) -> Path:
    """A path, or the name of a shipped config (``quickstart``, ``ResNet50_vd.yaml``)."""
    p = Path(os.path.expanduser(str(path_or_name)))
    if p.is_file():
        return p
    stem = p.name[:-5] if p.name.endswith(".yaml") else p.name
    for cand in CONFIG_DIR.rglob("*.yaml"):
        if cand.stem.lower() == stem.lower():
            return cand
    raise ConfigError(
        f"config {str(path_or_name)!r} not found: not a file, and not one of the shipped configs "
        f"({', '.join(shipped_configs())})"
    )


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _split_path(path: str) -> List[Any]:
    """``A.b[2].c`` / ``A.b.2.c`` -> ['A', 'b', 2, 'c']."""
    parts: List[Any] = []
    for piece in path.split("."):
        if piece == "":
            raise ConfigError(f"bad override key {path!r}: empty component")
        m = re.fullmatch(r"([^\[\]]*)((?:\[-?\d+\])*)", piece)
        if not m:
            raise ConfigError(f"bad override key {path!r}: cannot parse {piece!r}")
        name, idx = m.group(1), m.group(2)
        if name:
            parts.append(int(name) if re.fullmatch(r"-?\d+", name) else name)
        parts.extend(int(i) for i in re.findall(r"\[(-?\d+)\]", idx))
    return parts


def _fmt(parts: Sequence[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _parse_value(text: str):
    try:
        return yaml.safe_load(text) if text.strip() != "" else ""
    except yaml.YAMLError:
        return text


def apply_override(config: dict, override: str) -> None:
    """Apply one ``Section.key=value`` (value typed by YAML: 3 -> int, [1,5] -> list, null -> None).

    List items are addressed by index (``DataLoader.Train.dataset.transform_ops[1].RandCropImage.size=64``
    or ``...transform_ops.1...``). A path through an existing dict may create new leaf keys; indexing
    past a list's end or into a scalar is an error naming the path.
    """
    if "=" not in override:
        raise ConfigError(f"bad override {override!r}: expected KEY=VALUE, e.g. Global.epochs=10")
    key, value = override.split("=", 1)
    parts = _split_path(key.strip())
    node: Any = config
    for i, part in enumerate(parts[:-1]):
        where = _fmt(parts[: i + 1])
        if isinstance(node, list):
            if not isinstance(part, int):
                raise ConfigError(f"override {key!r}: {_fmt(parts[:i]) or '<root>'} is a list; index it with [n]")
            if not -len(node) <= part < len(node):
                raise ConfigError(f"override {key!r}: index {part} out of range for {_fmt(parts[:i])} (length {len(node)})")
            node = node[part]
        elif isinstance(node, dict):
            if part not in node or node[part] is None:
                if isinstance(parts[i + 1], int):
                    raise ConfigError(f"override {key!r}: {where} is not a list")
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(f"override {key!r}: {_fmt(parts[:i])} is a value ({node!r}), not a section")
        if not isinstance(node, (dict, list)):
            if i < len(parts) - 2:
                raise ConfigError(f"override {key!r}: {where} is a value ({node!r}), not a section")
    last = parts[-1]
    parsed = _parse_value(value)
    if isinstance(node, list):
        if not isinstance(last, int):
            raise ConfigError(f"override {key!r}: {_fmt(parts[:-1])} is a list; index it with [n]")
        if not -len(node) <= last < len(node):
            raise ConfigError(f"override {key!r}: bad index {last!r} for {_fmt(parts[:-1])} (length {len(node)})")
        node[last] = parsed
    elif isinstance(node, dict):
        # a list item like `- AutoAugment:` holds None; an override of its key sets it
        node[last] = parsed
    else:
        raise ConfigError(f"override {key!r}: {_fmt(parts[:-1])} is a value ({node!r}), not a section")


def read_yaml(path_or_name) -> tuple:
    """(raw mapping, source) of a config file or shipped name."""
    p = find_config(path_or_name)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {p}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config {p}: top level must be a mapping of sections, got {type(raw).__name__}")
    return raw, str(p)


def load_config(path_or_name, overrides: Optional[Iterable[str]] = None, *, validate: bool = True,
                strict: bool = False, world_size: Optional[int] = None) -> dict:
    """Read a YAML config (path, shipped name or dict), apply defaults and ``-o`` overrides, validate it.

    A PaddleClas release/2.0 config (``ARCHITECTURE``/``TRAIN``/``VALID``...) is converted to the
    2.x schema first (hubcls.engine.config_legacy); overrides in its key space (``TRAIN.batch_size=2``,
    ``epochs=1``) apply before the conversion, 2.x ones (``Global.epochs=1``) after. The conversion
    report is kept in ``cfg["_converted_from"]``.

    Keys hubcls does not know warn (:class:`hubcls.errors.ConfigWarning`) with the closest known
    key; ``strict=True`` makes them a ConfigError.
    """
    if isinstance(path_or_name, dict):
        raw, source = copy.deepcopy(path_or_name), "<dict>"
    else:
        raw, source = read_yaml(path_or_name)
    overrides = list(overrides or ())
    legacy_notes = None
    from . import config_legacy as legacy

    if legacy.is_release20(raw):
        old_ov = [o for o in overrides if legacy.is_old_key(o)]
        overrides = [o for o in overrides if not legacy.is_old_key(o)]
        for ov in old_ov:
            apply_override(raw, ov)
        if world_size is None:
            world_size = int(os.environ.get("PADDLE_TRAINERS_NUM", "1") or 1)
        raw, legacy_notes = legacy.convert(raw, world_size=world_size)
    cfg = _merge(DEFAULTS, raw)
    for ov in overrides:
        apply_override(cfg, ov)
    cfg.setdefault("_source", source)
    if legacy_notes is not None:
        cfg["_converted_from"] = [str(n) for n in legacy_notes]
    if validate:
        validate_config(cfg)
        check_config_keys(cfg, strict=strict)
    return cfg


def check_config_keys(cfg: dict, strict: bool = False) -> list:
    """Warn about (or, strict, refuse) every key hubcls does not know; returns the issues found
    (unknown and accepted-but-unused, see hubcls.engine.config_schema)."""
    from .config_legacy import old_key_hint
    from .config_schema import check_keys

    issues = check_keys(cfg)
    unknown = []
    for it in issues:
        if it.kind != "unknown":
            continue
        hint = old_key_hint(it.path)
        unknown.append(it.message + (f"; {hint}" if hint else ""))
    if unknown and strict:
        raise ConfigError(f"{len(unknown)} unknown config key(s) (--strict):\n  " + "\n  ".join(unknown))
    for msg in unknown:
        warnings.warn(msg + " (--strict makes this an error)", ConfigWarning, stacklevel=3)
    return issues


# ----------------------------------------------------------------------------------------------
# validation

def _get(cfg: dict, path: str, default=None):
    node: Any = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _require(cfg, path):
    v = _get(cfg, path)
    if v is None:
        raise ConfigError(f"{path} is required")
    return v


def _check_int(cfg, path, minimum=None, required=False):
    v = _get(cfg, path)
    if v is None:
        if required:
            raise ConfigError(f"{path} is required (an integer)")
        return
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{path} must be an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(f"{path} must be >= {minimum}, got {v}")


def _check_number(cfg, path, minimum=None):
    v = _get(cfg, path)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{path} must be a number, got {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(f"{path} must be >= {minimum}, got {v}")


def _check_choice(cfg, path, allowed, registry_kind=None):
    v = _get(cfg, path)
    if v is None:
        return
    if str(v).lower() not in {str(a).lower() for a in allowed}:
        raise ConfigError(f"{path}: {v!r} is not one of {', '.join(map(str, allowed))}")


def named_items(section, path: str) -> List[tuple]:
    """PaddleClas list-of-single-key-dicts (``- CELoss: {epsilon: 0.1}``) -> [(name, kwargs)]."""
    if section is None:
        return []
    if isinstance(section, dict):
        section = [{k: v} for k, v in section.items()]
    if not isinstance(section, list):
        raise ConfigError(f"{path} must be a list like '- Name: {{...}}', got {section!r}")
    out = []
    for i, item in enumerate(section):
        if isinstance(item, str):
            out.append((item, {}))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{path}[{i}] must be a single-key mapping '- Name: {{...}}', got {item!r}")
        (name, kwargs), = item.items()
        if kwargs is not None and not isinstance(kwargs, dict):
            raise ConfigError(f"{path}[{i}].{name} must be a mapping of arguments, got {kwargs!r}")
        out.append((name, dict(kwargs or {})))
    return out


def validate_config(cfg: dict) -> None:
    """Static checks (types, ranges, names in registries). Data-dependent checks are in preflight."""
    from . import losses, metrics, optim  # registries

    for section in ("Global", "Arch"):
        if not isinstance(cfg.get(section), dict):
            raise ConfigError(f"{section} section is required (a mapping)")
    _require(cfg, "Arch.name")
    _check_choice(cfg, "Global.device", ["auto", "cpu", "gpu"])
    _check_int(cfg, "Global.epochs", 1, required=True)
    _check_int(cfg, "Global.save_interval", 1)
    _check_int(cfg, "Global.eval_interval", 1)
    _check_int(cfg, "Global.print_batch_step", 1)
    _check_int(cfg, "Global.accum_steps", 1)
    _check_int(cfg, "Global.update_freq", 1)
    _check_int(cfg, "Global.seed", 0)
    cn = _get(cfg, "Arch.class_num", None) or _get(cfg, "Global.class_num", None)
    if cn is not None and (isinstance(cn, bool) or not isinstance(cn, int) or cn < 1):
        raise ConfigError(f"Arch.class_num must be a positive integer, got {cn!r}")
    lr_mult = _get(cfg, "Arch.lr_mult_list")
    if lr_mult is not None:
        if not isinstance(lr_mult, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in lr_mult):
            raise ConfigError(f"Arch.lr_mult_list must be a list of non-negative numbers, got {lr_mult!r}")
    _check_int(cfg, "Arch.freeze_stages", 0)
    from .arch_args import check_arch_kwargs

    check_arch_kwargs(cfg)

    opt = cfg.get("Optimizer")
    if opt is not None:
        if not isinstance(opt, dict):
            raise ConfigError("Optimizer must be a mapping")
        _require(cfg, "Optimizer.name")
        _check_choice(cfg, "Optimizer.name", optim.OPTIMIZERS.names())
        lr = opt.get("lr", {})
        if isinstance(lr, (int, float)):
            opt["lr"] = lr = {"name": "Constant", "learning_rate": float(lr)}
        if not isinstance(lr, dict):
            raise ConfigError(f"Optimizer.lr must be a mapping like {{name: Cosine, learning_rate: 0.1}}, got {lr!r}")
        _check_choice(cfg, "Optimizer.lr.name", optim.LR_SCHEDULES.names())
        _check_number(cfg, "Optimizer.lr.learning_rate", 0)
        _check_number(cfg, "Optimizer.lr.warmup_epoch", 0)
        reg = opt.get("regularizer")
        if reg is not None:
            if not isinstance(reg, dict):
                raise ConfigError("Optimizer.regularizer must be a mapping {name: L2, coeff: ...}")
            _check_choice(cfg, "Optimizer.regularizer.name", ["L2", "L1"])
            _check_number(cfg, "Optimizer.regularizer.coeff", 0)
    for mode in ("Train", "Eval"):
        for i, (name, _) in enumerate(named_items(_get(cfg, f"Loss.{mode}"), f"Loss.{mode}")):
            if name not in losses.LOSSES:
                raise ConfigError(f"Loss.{mode}[{i}]: {name!r} is not one of {', '.join(losses.LOSSES.names())}")
        for i, (name, kw) in enumerate(named_items(_get(cfg, f"Metric.{mode}"), f"Metric.{mode}")):
            if name not in metrics.METRICS:
                raise ConfigError(f"Metric.{mode}[{i}]: {name!r} is not one of {', '.join(metrics.METRICS.names())}")
            topk = kw.get("topk")
            if topk is not None:
                ks = topk if isinstance(topk, list) else [topk]
                if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
                    raise ConfigError(f"Metric.{mode}[{i}].{name}.topk must be positive integers, got {topk!r}")
    dist = cfg.get("Distillation")
    if dist is not None:
        from .losses import DISTILL_LOSSES

        if not isinstance(dist, dict):
            raise ConfigError("Distillation must be a mapping {teacher: {name: ...}, loss: JSDiv, ...}")
        if not _get(cfg, "Distillation.teacher.name"):
            raise ConfigError("Distillation.teacher.name is required (a zoo model name)")
        _check_choice(cfg, "Distillation.loss", DISTILL_LOSSES.names())
        _check_number(cfg, "Distillation.weight", 0)
        _check_number(cfg, "Distillation.label_weight", 0)
    amp = cfg.get("AMP")
    if amp is not None:
        if not isinstance(amp, dict):
            raise ConfigError("AMP must be a mapping")
        _check_choice(cfg, "AMP.level", ["O1", "O2"])
    ema = cfg.get("EMA")
    if ema is not None:
        if not isinstance(ema, dict):
            raise ConfigError("EMA must be a mapping {decay: 0.9999}")
        d = ema.get("decay", 0.9999)
        if not isinstance(d, (int, float)) or not 0 < d < 1:
            raise ConfigError(f"EMA.decay must be in (0, 1), got {d!r}")


def class_num(cfg: dict) -> Optional[int]:
    return _get(cfg, "Arch.class_num") or _get(cfg, "Global.class_num")


def dump_config(cfg: dict, path) -> None:
    clean = {k: v for k, v in cfg.items() if not k.startswith("_")}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # the temp-name pattern runs clean up
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(clean, f, sort_keys=False)
    os.replace(tmp, path)
