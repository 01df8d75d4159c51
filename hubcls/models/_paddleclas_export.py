"""PaddleClas's deployment folders, read as they are (a model form of the resolver).

``tools/export_model.py`` of PaddleClas 2.x writes ``inference.pdmodel`` (Paddle 2.x) or
``inference.json`` (Paddle 3) + ``inference.pdiparams`` into ``Global.save_inference_dir``. Its
preprocessing and class names live in an inference config with PaddleClas's deploy schema
(``deploy/configs/inference_cls.yaml``)::

    Global:      {inference_model_dir: ./models, ...}
    PreProcess:  {transform_ops: [{ResizeImage: {resize_short: 256}}, {CropImage: {size: 224}},
                                  {NormalizeImage: {...}}, {ToCHWImage: None}]}
    PostProcess: {main_indicator: Topk, Topk: {topk: 5, class_id_map_file: ".../imagenet1k_label_list.txt"}}

or, for exports made with ``Global.export_for_fd`` / PaddleX, ``inference.yml`` beside the program
(``PostProcess.Topk.label_list`` holds the names). The forms the resolver accepts:

* the export folder: its ``inference.yml``, else an ``inference_cls.yaml``-style file in it (any
  ``*.yaml``/``*.yml`` with ``PreProcess``), else PaddleClas's deploy defaults (the values of
  ``inference_cls.yaml``: resize 256, crop 224, ImageNet mean/std, ImageNet-1k names) with a warning;
* the inference config itself, whose ``Global.inference_model_dir`` names the folder (relative to
  the working directory, as PaddleClas's ``python/predict_cls.py`` reads it, or to the config).

The program is read, never run, for what the config cannot say: the input size it takes, its class
count and whether it ends in softmax (PaddleClas's ExportModel appends one unless
``Arch.infer_add_softmax: False``), so the pipeline does not apply softmax twice.
"""
from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import ConfigError
from ._pretrained import PretrainedCfg

log = logging.getLogger("hubcls.models")

PROGRAM = "inference"
CONFIG_NAMES = ("inference.yml", "inference.yaml", "inference_cls.yaml")
# PaddleClas deploy/configs/inference_cls.yaml's PreProcess and label map (used when a folder has none)
DEFAULT_OPS = [
    {"ResizeImage": {"resize_short": 256}},
    {"CropImage": {"size": 224}},
    {"NormalizeImage": {"scale": 0.00392157, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": "", "channel_num": 3}},
    {"ToCHWImage": None},
]
IMAGENET_MAP = "imagenet1k_label_list.txt"


@dataclass(frozen=True)
class ProgramSignature:
    """What an inference program says about itself (read from its file, not run)."""

    input_shape: Tuple[int, ...]      # e.g. (-1, 3, 224, 224); -1 = any
    num_outputs: Optional[int]        # the class count (last dim of the first fetched output), if fixed
    ends_in_softmax: bool             # the first fetched output is a softmax's


def program_signature(prefix: Path) -> ProgramSignature:
    """Input shape, output width and final op of ``<prefix>.json`` (PIR) or ``<prefix>.pdmodel``."""
    prefix = Path(prefix)
    if prefix.with_suffix(".json").is_file():
        return _pir_signature(prefix.with_suffix(".json"))
    if prefix.with_suffix(".pdmodel").is_file():
        return _programdesc_signature(prefix.with_suffix(".pdmodel"))
    raise ConfigError(f"no inference program {prefix}.json / {prefix}.pdmodel")


def _pir_signature(path: Path) -> ProgramSignature:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        ops = doc["program"]["regions"][0]["blocks"][0]["ops"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ConfigError(f"{path}: not a Paddle 3 (PIR) program ({exc})") from None
    producers = {}
    for op in ops:
        outs = op.get("O")
        for out in outs if isinstance(outs, list) else [outs] if isinstance(outs, dict) else []:
            producers[out.get("%")] = op
    data = next((op for op in ops if op.get("#") == "1.data"), None)
    shape = ()
    if data is not None:
        attrs = {a.get("N"): (a.get("AT") or {}).get("D") for a in data.get("A", [])}
        shape = tuple(int(s) for s in attrs.get("shape") or ())
    fetch = next((op for op in ops if op.get("#") == "1.fetch"), None)
    if fetch is None:
        raise ConfigError(f"{path}: the program fetches nothing")
    src = producers.get((fetch.get("I") or [{}])[0].get("%"))
    out_shape = ((fetch.get("O") or [{}])[0].get("TT") or {}).get("D", [None, []])[1]
    n = int(out_shape[-1]) if out_shape and int(out_shape[-1]) > 0 else None
    return ProgramSignature(shape, n, src is not None and src.get("#") in ("1.softmax", "1.softmax_"))


def _programdesc_signature(path: Path) -> ProgramSignature:
    from .._paddle import import_paddle

    import_paddle()
    from paddle.base.proto import framework_pb2

    try:
        prog = framework_pb2.ProgramDesc.FromString(path.read_bytes())
        block = prog.blocks[0]
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise ConfigError(f"{path}: not a Paddle program ({exc})") from None
    var_dims = {}
    for v in block.vars:  # Paddle 3 names the field dense_tensor (2.x: lod_tensor, the same field number)
        if v.type.HasField("dense_tensor"):
            var_dims[v.name] = tuple(v.type.dense_tensor.tensor.dims)
    producer = {}
    for op in block.ops:
        for out in op.outputs:
            for name in out.arguments:
                producer[name] = op.type
    feed = next((op for op in block.ops if op.type == "feed"), None)
    shape = var_dims.get(feed.outputs[0].arguments[0], ()) if feed is not None else ()
    fetch = next((op for op in block.ops if op.type == "fetch"), None)
    if fetch is None:
        raise ConfigError(f"{path}: the program fetches nothing")
    name = fetch.inputs[0].arguments[0]
    dims = var_dims.get(name, ())
    n = int(dims[-1]) if dims and dims[-1] > 0 else None
    return ProgramSignature(tuple(int(s) for s in shape), n, producer.get(name) == "softmax")


# --------------------------------------------------------------------------- the config
def is_inference_config(doc: object) -> bool:
    """Whether a parsed YAML document is a PaddleClas inference config (PreProcess.transform_ops)."""
    return isinstance(doc, dict) and isinstance((doc.get("PreProcess") or {}).get("transform_ops"), list)


def _read_yaml(path: Path) -> object:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({exc})") from None


def find_config(folder: Path) -> Optional[Path]:
    """The inference config inside an export folder: inference.yml, inference_cls.yaml, or any
    YAML with PreProcess.transform_ops (one; several is an error naming them)."""
    for name in CONFIG_NAMES:
        if (folder / name).is_file() and is_inference_config(_read_yaml(folder / name)):
            return folder / name
    found = [p for p in sorted(folder.glob("*.y*ml")) if p.suffix in (".yml", ".yaml")
             and is_inference_config(_read_yaml(p))]
    if len(found) > 1:
        raise ConfigError(f"{folder} holds {len(found)} PaddleClas inference configs "
                          f"({', '.join(p.name for p in found)}); pass the one to use as the model")
    return found[0] if found else None


def model_dir_of_config(config: Path) -> Path:
    """The export folder an inference config names (Global.inference_model_dir), tried relative to
    the working directory (PaddleClas's tools) and then to the config's own folder."""
    doc = _read_yaml(config)
    if not is_inference_config(doc):
        raise ConfigError(f"{config} is not a PaddleClas inference config (no PreProcess.transform_ops)")
    rel = (doc.get("Global") or {}).get("inference_model_dir")
    if not rel:
        if _program_prefix(config.parent) is not None:
            return config.parent
        raise ConfigError(f"{config}: Global.inference_model_dir names no export folder")
    for cand in (Path(str(rel)).expanduser(), config.parent / str(rel)):
        if cand.is_dir() and _program_prefix(cand) is not None:
            return cand
    raise ConfigError(f"{config}: Global.inference_model_dir {rel!r} is not an export folder (no "
                      f"{PROGRAM}.json/.pdmodel + {PROGRAM}.pdiparams), from the working directory or from {config.parent}")


def _program_prefix(folder: Path) -> Optional[Path]:
    for ext in (".json", ".pdmodel"):
        if (folder / f"{PROGRAM}{ext}").is_file() and (folder / f"{PROGRAM}.pdiparams").is_file():
            return folder / PROGRAM
    return None


def parse_class_id_map(path: Path, delimiter: Optional[str] = None) -> List[str]:
    """PaddleClas's class_id_map_file ("<id><delimiter><name>" per line, delimiter default a space)
    -> names in class-id order; ids must be 0..N-1."""
    delimiter = delimiter if delimiter is not None else " "
    names = {}
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        head, _, rest = line.partition(delimiter)
        try:
            names[int(head)] = rest
        except ValueError:
            raise ConfigError(f"{path}:{i + 1}: expected '<class id>{delimiter}<name>', got {line!r}") from None
    if sorted(names) != list(range(len(names))):
        raise ConfigError(f"{path}: class ids must be 0..{len(names) - 1} without gaps")
    return [names[i] for i in range(len(names))]


def _labels(doc: dict, config: Optional[Path]) -> Tuple[Optional[List[str]], str]:
    """(names, where from) of the config's PostProcess (Topk.label_list or class_id_map_file)."""
    post = doc.get("PostProcess") or {}
    topk = post.get("Topk") or next((v for v in post.values() if isinstance(v, dict) and
                                     ("class_id_map_file" in v or "label_list" in v)), None) or {}
    if isinstance(topk.get("label_list"), list):
        return [str(x) for x in topk["label_list"]], f"{config}: PostProcess label_list"
    ref = topk.get("class_id_map_file")
    if not ref:
        return None, "no class_id_map_file"
    cands = [Path(str(ref)).expanduser()]
    if config is not None:
        cands.append(config.parent / str(ref))
    for cand in cands:
        if cand.is_file():
            return parse_class_id_map(cand, topk.get("delimiter")), str(cand)
    if Path(str(ref)).name == IMAGENET_MAP:  # PaddleClas's ppcls/utils/imagenet1k_label_list.txt: the same list ships here
        from ..data.label_lists import builtin_labels

        return builtin_labels("imagenet1k"), f"{IMAGENET_MAP} (hubcls's copy; {ref} was not found)"
    warnings.warn(f"{config}: class_id_map_file {ref!r} not found (from the working directory or the config's "
                  f"folder); answering with class indices", stacklevel=4)
    return None, f"{ref} (not found)"


def read_export(folder: Path, config: Optional[Path] = None) -> dict:
    """Facts of a PaddleClas export folder: name, preprocessing ops, class names and count, input
    size, whether the program's output is probabilities, provenance."""
    prefix = _program_prefix(folder)
    if prefix is None:
        raise ConfigError(f"{folder}: no {PROGRAM}.json / {PROGRAM}.pdmodel + {PROGRAM}.pdiparams")
    config = config if config is not None else find_config(folder)
    sig = program_signature(prefix)
    if config is not None:
        doc = _read_yaml(config)
        ops = [op for op in doc["PreProcess"]["transform_ops"] if not (isinstance(op, dict) and "DecodeImage" in op)]
        labels, labels_from = _labels(doc, config)
        name = ((doc.get("Global") or {}).get("model_name") or folder.resolve().name)
    else:
        warnings.warn(f"{folder} is a PaddleClas export without an inference config: using PaddleClas's deploy "
                      f"defaults (deploy/configs/inference_cls.yaml: resize 256, crop 224, ImageNet mean/std"
                      f"{', ImageNet-1k names' if sig.num_outputs == 1000 else ''}); put its inference_cls.yaml "
                      f"in the folder (or pass the YAML as the model) if it was trained otherwise", stacklevel=4)
        ops = [dict(op) for op in DEFAULT_OPS]
        from ..data.label_lists import builtin_labels

        labels = builtin_labels("imagenet1k") if sig.num_outputs == 1000 else None
        labels_from, name = "PaddleClas's default (imagenet1k)" if labels else "none", folder.resolve().name
    n = sig.num_outputs or (len(labels) if labels else None)
    if n is None:
        raise ConfigError(f"{prefix}: the program's class count is not fixed and the config names no classes")
    if labels is not None and len(labels) != n:
        raise ConfigError(f"{config or folder}: {len(labels)} class names ({labels_from}) for a program with "
                          f"{n} outputs")
    return {"name": str(name), "ops": ops, "labels": labels, "num_classes": int(n), "program": prefix,
            "signature": sig, "provenance": {"format": "PaddleClas export", "config": str(config) if config else None,
                                             "labels": labels_from, "program": str(prefix)}}


def source_cfg(facts: dict) -> PretrainedCfg:
    """The PretrainedCfg a ModelSource carries for a PaddleClas export (no zoo architecture: the
    program is the model)."""
    from ._package import input_size_of_ops, with_package_facts

    cfg = PretrainedCfg(name=facts["name"], arch="PaddleClas export", label_list="")
    cfg = with_package_facts(cfg, num_classes=facts["num_classes"], labels=facts["labels"], preprocess=facts["ops"])
    sig: ProgramSignature = facts["signature"]
    size = input_size_of_ops(facts["ops"])
    fixed = tuple(sig.input_shape[-2:]) if len(sig.input_shape) == 4 and min(sig.input_shape[-2:]) > 0 else None
    if size is not None and fixed is not None and tuple(size[1:]) != fixed:
        raise ConfigError(f"{facts['program']}: the program takes {fixed[0]}x{fixed[1]} images but the preprocessing "
                          f"makes {size[1]}x{size[2]}")
    extra = dict(cfg.extra or {})
    extra["outputs"] = "probabilities" if sig.ends_in_softmax else "logits"
    return cfg.with_(extra=extra)

