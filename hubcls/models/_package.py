"""The model package: a directory that fully describes a classifier (see docs/models.md).

    model.json          the manifest (below)
    model.safetensors   the weights (always; written without pickle)
    model.pdparams      the same weights for PaddleClas's tools (only when asked: pdparams=True)
    inference.json/.pdiparams, model.onnx, ...   added by ``hubcls export`` (hubcls.deploy)

The manifest (``format: "hubcls-model"``, ``format_version: 1``) holds the architecture name and
its keyword arguments, the class count and names, the eval preprocessing (PaddleClas op list, the
same list hubcls.data builds every eval pipeline from), the input size, the weights file with its
sha256 and size, the pretrained config (mean/std/resize/...) and provenance (source weights and
their sha256, training config, best metric, versions). ``hubcls train`` writes one per run
(best and last), ``model.save_pretrained(dir)`` writes one, ``hubcls export`` adds programs to one.

Also read here (older layouts, so existing directories keep working): ``save_pretrained``
directories of hubcls <= 0.x (``config.json`` + ``model.pdparams``/``model.safetensors``) and
export directories of hubcls <= 0.x (``preprocess.json`` + ``hubcls_export.json`` + ``labels.txt``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError, WeightsError
from ._pretrained import PretrainedCfg

log = logging.getLogger("hubcls.models")

FORMAT = "hubcls-model"
FORMAT_VERSION = 1
MANIFEST = "model.json"
SAFETENSORS = "model.safetensors"
PDPARAMS = "model.pdparams"
PROGRAM = "inference"  # <PROGRAM>.json (PIR) or .pdmodel + <PROGRAM>.pdiparams: the exported program
# older layouts (read only)
LEGACY_CONFIG = "config.json"
LEGACY_PREPROCESS = "preprocess.json"
LEGACY_EXPORT_META = "hubcls_export.json"
LEGACY_LABELS = "labels.txt"
# pretrained-cfg fields a package keeps (what eval preprocessing and the head need)
CFG_FIELDS = ("input_size", "resize_short", "mean", "std", "interpolation", "extra")


# --------------------------------------------------------------------------- facts of a cfg
def preprocess_of(cfg: Any) -> List[dict]:
    """The eval op list of a model: the one its package/run recorded, else the zoo's eval convention."""
    ops = (getattr(cfg, "extra", None) or {}).get("preprocess")
    if ops:
        return [dict(op) if isinstance(op, dict) else op for op in ops]
    from ..data.transforms import eval_ops_config

    return eval_ops_config(cfg)


def input_size_of_ops(ops: Sequence[dict]) -> Optional[Tuple[int, int, int]]:
    """(3, H, W) produced by an eval op list (its last CropImage, else a fixed-size ResizeImage)."""
    found = None
    for op in ops or []:
        if not isinstance(op, dict):
            continue
        for key in ("CropImage", "ResizeImage"):
            params = op.get(key) or {}
            size = params.get("size") if isinstance(params, dict) else None
            if size is None:
                continue
            w, h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))  # PaddleClas: [w, h]
            if key == "CropImage" or found is None:
                found = (3, int(h), int(w))
    return found


def input_size_of(cfg: Any) -> Tuple[int, int, int]:
    """(3, H, W) a model's eval preprocessing produces (its recorded ops, else its cfg's input size)."""
    size = input_size_of_ops((getattr(cfg, "extra", None) or {}).get("preprocess") or [])
    if size is not None:
        return size
    s = getattr(cfg, "input_size", 224) or 224
    h, w = (s, s) if isinstance(s, int) else (int(s[-2]), int(s[-1]))
    return (3, int(h), int(w))


def labels_of(cfg: Any, num_classes: Optional[int] = None) -> Optional[List[str]]:
    """Class names a cfg carries (a list, a label file or a shipped list); None when unknown or when
    their count is not the model's (a fine-tuned head must never get the base model's names)."""
    from ..data.label_lists import labels_from

    spec = getattr(cfg, "label_list", None)
    labels = labels_from(spec) if spec else None
    n = num_classes if num_classes is not None else getattr(cfg, "num_classes", None)
    if labels is not None and n is not None and len(labels) != int(n):
        return None
    return labels


def with_package_facts(cfg: PretrainedCfg, *, num_classes: Optional[int] = None, labels: Optional[Sequence[str]] = None,
                       preprocess: Optional[Sequence[dict]] = None) -> PretrainedCfg:
    """``cfg`` carrying a package's class count, names and eval ops (so every consumer - export,
    hub.Module, serving - reads them from ``model.pretrained_cfg``)."""
    changes = {}
    if num_classes is not None:
        changes["num_classes"] = int(num_classes)
    if labels is not None:
        changes["label_list"] = tuple(str(x) for x in labels)
    if preprocess:
        changes["extra"] = {**(cfg.extra or {}), "preprocess": [dict(op) if isinstance(op, dict) else op
                                                               for op in preprocess]}
        size = input_size_of_ops(preprocess)
        if size is not None and size[1] == size[2]:
            changes["input_size"] = size[1]
        for op in preprocess:  # keep resize_short in step with the ops (describe() / serving info)
            short = (op.get("ResizeImage") or {}).get("resize_short") if isinstance(op, dict) else None
            if short:
                changes["resize_short"] = int(short)
    return cfg.with_(**changes) if changes else cfg


# --------------------------------------------------------------------------- the package object
@dataclass
class ModelPackage:
    """What a package directory says about its classifier (``read_package``)."""

    directory: Path
    cfg: PretrainedCfg                 # name, arch, num_classes, labels, preprocess (in extra), input size
    arch_kwargs: dict = field(default_factory=dict)
    weights_file: Optional[Path] = None
    program: Optional[Path] = None     # path prefix of an exported inference program, if any
    provenance: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    legacy: Optional[str] = None       # None, "save_pretrained" or "export" (older layouts)

    @property
    def name(self) -> str:
        """The model's name (a zoo name, or what the writer called it)."""
        return self.cfg.name

    @property
    def arch(self) -> str:
        """The registered architecture."""
        return self.cfg.arch

    @property
    def num_classes(self) -> int:
        """Class count of the head."""
        return int(self.cfg.num_classes)

    @property
    def labels(self) -> Optional[List[str]]:
        """Class names in class-index order, or None when the package has none."""
        return labels_of(self.cfg)

    @property
    def preprocess(self) -> List[dict]:
        """The eval op list."""
        return preprocess_of(self.cfg)

    @property
    def input_size(self) -> Tuple[int, int, int]:
        """(3, H, W) the model takes."""
        return input_size_of(self.cfg)


def program_prefix(directory: Union[str, os.PathLike]) -> Optional[Path]:
    """``<dir>/inference`` when the directory holds an exported program (.json or .pdmodel)."""
    d = Path(directory)
    for ext in (".json", ".pdmodel"):
        if (d / f"{PROGRAM}{ext}").is_file() and (d / f"{PROGRAM}.pdiparams").is_file():
            return d / PROGRAM
    return None


def is_package(directory: Union[str, os.PathLike]) -> bool:
    """Whether ``directory`` holds a package (a manifest, or an older save_pretrained/export layout)."""
    d = Path(directory)
    return (d / MANIFEST).is_file() or (d / LEGACY_CONFIG).is_file() and _legacy_config_doc(d) is not None or (
        program_prefix(d) is not None and (d / LEGACY_PREPROCESS).is_file())


def _legacy_config_doc(d: Path) -> Optional[dict]:
    try:
        doc = json.loads((d / LEGACY_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("pretrained_cfg"), dict) else None


def read_package(directory: Union[str, os.PathLike]) -> ModelPackage:
    """Read a package (or an older save_pretrained / export directory). Raises ConfigError naming
    what is missing."""
    d = Path(directory)
    if (d / MANIFEST).is_file():
        return _read_manifest(d)
    doc = _legacy_config_doc(d) if (d / LEGACY_CONFIG).is_file() else None
    if doc is not None:
        cfg = PretrainedCfg.from_dict(doc["pretrained_cfg"])
        weights = next((d / f for f in (SAFETENSORS, PDPARAMS) if (d / f).is_file()), None)
        if weights is None:
            raise ConfigError(f"{d}: {LEGACY_CONFIG} but no {SAFETENSORS} / {PDPARAMS} beside it")
        return ModelPackage(d, cfg, weights_file=weights, program=program_prefix(d), legacy="save_pretrained")
    if program_prefix(d) is not None and (d / LEGACY_PREPROCESS).is_file():
        return _read_legacy_export(d)
    raise ConfigError(f"{d} is not a model package (no {MANIFEST})")


def _read_manifest(d: Path) -> ModelPackage:
    path = d / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a hubcls model manifest (format must be {FORMAT!r})")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise ConfigError(f"{path}: format_version {doc.get('format_version')} is newer than this hubcls "
                          f"reads ({FORMAT_VERSION}); upgrade hubcls")
    missing = [k for k in ("arch", "num_classes", "preprocess") if k not in doc]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}")
    base = doc.get("pretrained_cfg") or {}
    cfg = PretrainedCfg.from_dict({**base, "name": doc.get("name") or doc["arch"], "arch": doc["arch"]})
    labels = doc.get("labels")
    if labels is not None and len(labels) != int(doc["num_classes"]):
        raise ConfigError(f"{path}: {len(labels)} labels for {doc['num_classes']} classes")
    cfg = with_package_facts(cfg.with_(label_list=""), num_classes=doc["num_classes"], labels=labels,
                             preprocess=doc["preprocess"])
    weights = None
    winfo = doc.get("weights") or {}
    if winfo.get("file"):
        weights = d / winfo["file"]
        if not weights.is_file():
            raise ConfigError(f"{path} names weights {winfo['file']} but {weights} does not exist")
        if winfo.get("bytes") is not None and weights.stat().st_size != int(winfo["bytes"]):
            raise WeightsError(f"{weights}: {weights.stat().st_size} bytes, the manifest says {winfo['bytes']} "
                               f"(an interrupted write?)")
    return ModelPackage(d, cfg, arch_kwargs=dict(doc.get("arch_kwargs") or {}), weights_file=weights,
                        program=program_prefix(d), provenance=dict(doc.get("provenance") or {}), manifest=doc)


def _read_legacy_export(d: Path) -> ModelPackage:
    from ..data.label_lists import read_labels

    spec = json.loads((d / LEGACY_PREPROCESS).read_text(encoding="utf-8"))
    meta_file = d / LEGACY_EXPORT_META
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    labels = read_labels(d / LEGACY_LABELS) if (d / LEGACY_LABELS).is_file() else None
    arch = meta.get("arch") or meta.get("model") or "unknown"
    n = meta.get("num_classes") or (len(labels) if labels else None)
    cfg = PretrainedCfg(name=meta.get("model") or arch, arch=arch, label_list="")
    cfg = with_package_facts(cfg, num_classes=n, labels=labels, preprocess=spec.get("ops"))
    return ModelPackage(d, cfg, program=program_prefix(d), manifest=meta, legacy="export")


# --------------------------------------------------------------------------- writing
def sha256_of(path: Union[str, os.PathLike]) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _replace_durably(tmp: Path, target: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)


def versions() -> dict:
    """Versions a package records: hubcls and the Paddle distribution installed."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"hubcls": __version__}
    for dist in ("paddlepaddle-gpu", "paddlepaddle"):
        try:
            out["paddle"] = version(dist)
            break
        except PackageNotFoundError:
            continue
    return out


def save_package(model: Any, directory: Union[str, os.PathLike], *, labels: Optional[Sequence[str]] = None,
                 preprocess: Optional[Sequence[dict]] = None, provenance: Optional[dict] = None,
                 pdparams: bool = False, name: Optional[str] = None, state_dict: Optional[dict] = None,
                 extra_manifest: Optional[dict] = None) -> Path:
    """Write ``model`` as a package into ``directory`` (created if needed); returns the directory.

    labels: class names (default: the ones the model's cfg carries; none -> ``labels: null``).
    preprocess: eval op list (default: the model's: its package's, else the zoo eval convention).
    provenance: anything worth keeping (``source_weights``, ``source_sha256``, ``config``,
        ``metrics``, ``epoch``, ...); versions and a UTC timestamp are added.
    pdparams: also write model.pdparams (paddle.save) for PaddleClas's tools.
    state_dict: weights to write instead of ``model.state_dict()`` (e.g. an EMA shadow).

    Files are written to temporary names, flushed and renamed; the manifest goes last, so a reader
    that finds a manifest finds the weights it names (it checks their size)."""
    cfg = getattr(model, "pretrained_cfg", None)
    if cfg is None:
        raise WeightsError("save_package needs a model built by hubcls.create_model (it has no pretrained_cfg)")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    n = int(getattr(model, "num_classes", None) or cfg.num_classes)
    labels = [str(x) for x in labels] if labels is not None else labels_of(cfg, n)
    if labels is not None and len(labels) != n:
        raise ConfigError(f"save_package: {len(labels)} labels for a {n}-class model")
    ops = [dict(op) if isinstance(op, dict) else op for op in preprocess] if preprocess else preprocess_of(cfg)
    sd = state_dict if state_dict is not None else model.state_dict()
    arrays = {k: np.ascontiguousarray(v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in sd.items()}

    from safetensors.numpy import save_file

    tag = f".tmp{os.getpid()}"
    tmp = d / (SAFETENSORS + tag)
    save_file(arrays, str(tmp), metadata={"format": "hubcls", "arch": str(cfg.arch)})
    _replace_durably(tmp, d / SAFETENSORS)
    weights = {"file": SAFETENSORS, "format": "safetensors", "sha256": sha256_of(d / SAFETENSORS),
               "bytes": (d / SAFETENSORS).stat().st_size, "tensors": len(arrays)}
    manifest_extra = {}
    if pdparams:
        from .._paddle import import_paddle

        tmp = d / (PDPARAMS + tag)
        import_paddle().save({k: v for k, v in arrays.items()}, str(tmp))
        _replace_durably(tmp, d / PDPARAMS)
        manifest_extra["weights_pdparams"] = {"file": PDPARAMS, "sha256": sha256_of(d / PDPARAMS),
                                              "bytes": (d / PDPARAMS).stat().st_size}
    else:
        _drop_stale_pdparams(d)
    # the eval facts of the cfg (the official-weights URLs and zoo metrics describe the base model,
    # not this package; provenance names it)
    base = {k: v for k, v in cfg.to_dict().items() if k in CFG_FIELDS}
    base["extra"] = {k: v for k, v in (cfg.extra or {}).items() if k != "preprocess" and _is_json(v)}
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name or cfg.name,
        "arch": cfg.arch,
        "arch_kwargs": _jsonable(getattr(model, "arch_kwargs", None) or {}),
        "num_classes": n,
        "labels": labels,
        "input_size": list(input_size_of_ops(ops) or input_size_of(cfg)),
        "preprocess": ops,
        "weights": weights,
        **manifest_extra,
        "pretrained_cfg": base,
        "provenance": {"base_model": cfg.name, **(provenance or {}), "versions": versions(),
                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    old = _old_manifest(d)
    for key in ("inference",):  # what `hubcls export` added stays described while its files stay
        if key in old and key not in (extra_manifest or {}):
            doc[key] = old[key]
    doc.update(extra_manifest or {})
    tmp = d / (MANIFEST + tag)
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    _replace_durably(tmp, d / MANIFEST)
    return d


def update_manifest(directory: Union[str, os.PathLike], **entries: Any) -> dict:
    """Add/replace top-level manifest entries (``hubcls export`` records its programs this way)."""
    d = Path(directory)
    doc = _old_manifest(d)
    if not doc:
        raise ConfigError(f"{d} has no {MANIFEST} to update")
    doc.update(entries)
    tmp = d / (MANIFEST + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    _replace_durably(tmp, d / MANIFEST)
    return doc


def _old_manifest(d: Path) -> dict:
    try:
        doc = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _drop_stale_pdparams(d: Path) -> None:
    # a model.pdparams the previous manifest described would no longer match the new weights
    if (d / PDPARAMS).is_file() and "weights_pdparams" in _old_manifest(d):
        (d / PDPARAMS).unlink()


def _jsonable(obj):
    try:
        json.dumps(obj)
        return obj
    except TypeError:
        return {k: v for k, v in obj.items() if _is_json(v)}


def _is_json(v) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False


def save_pretrained(model: Any, directory: Union[str, os.PathLike], *, labels: Optional[Sequence[str]] = None,
                    pdparams: bool = False, safe_serialization: Optional[bool] = None, **kwargs: Any) -> Path:
    """``model.save_pretrained(dir)``: write a model package (model.json + model.safetensors).

    ``pdparams=True`` adds model.pdparams (``safe_serialization=False``, the older spelling, does too)."""
    if safe_serialization is False:
        pdparams = True
    return save_package(model, directory, labels=labels, pdparams=pdparams, **kwargs)
