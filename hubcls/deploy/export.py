"""Export a model for deployment: a Paddle inference program + its preprocessing + its labels.

An export directory holds::

    inference.json, inference.pdiparams   paddle.jit.save program, input "x" [None, 3, H, W] (dynamic batch)
    preprocess.json                       the eval transform ops (the SAME list hubcls.data builds
                                          training-eval / predict / serve preprocessing from)
    labels.txt                            one class name per line (when the model has a label list)
    hubcls_export.json                    model name, weights hash, versions, input size
    model.onnx                            (optional) paddle2onnx conversion of the program

``hubcls.deploy.Predictor(dir)`` reads it back and rebuilds the preprocessing with
``hubcls.data.build_transforms`` so exported answers equal eval-mode answers.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import ConfigError, HubclsError
from ._quiet import quiet

PROGRAM = "inference"
PREPROCESS_FILE = "preprocess.json"
LABELS_FILE = "labels.txt"
META_FILE = "hubcls_export.json"
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model_int8.onnx"
ONNX_OPSET = 13


class ExportError(HubclsError, RuntimeError):
    """A model could not be exported or converted (the message says which step failed)."""


# --------------------------------------------------------------------------- preprocessing/labels
def preprocess_ops_for(cfg) -> List[dict]:
    """The eval transform ops (PaddleClas-shaped list of {OpName: params}) of a pretrained cfg.

    Comes from hubcls.data, the one place that defines eval preprocessing."""
    from ..data.transforms import eval_ops_config

    return eval_ops_config(cfg)


def build_preprocess(ops: Sequence[dict]):
    """Callable uint8 RGB HWC -> float32 CHW, built by hubcls.data from an ops list."""
    from .. import data

    return data.build_transforms(list(ops))


def input_size_of(cfg, input_size=None):
    if input_size is not None:
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if len(size) == 1:
            size = (size[0], size[0])
        return (3, int(size[-2]), int(size[-1]))
    size = getattr(cfg, "input_size", 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    return (3, int(size[-2]), int(size[-1]))


def labels_for(cfg) -> Optional[List[str]]:
    """Class names of a pretrained cfg's label list (None when it has none or the file is absent)."""
    name = getattr(cfg, "label_list", None)
    if not name:
        return None
    if isinstance(name, (list, tuple)):
        return [str(n) for n in name]
    path = Path(name)
    if not path.is_file():
        path = Path(__file__).resolve().parent.parent / "data" / "labels" / f"{name}.txt"
    if not path.is_file():
        return None
    return read_labels(path)


def read_labels(path) -> List[str]:
    """One label per line; PaddleClas's "<index> <name>" lines are accepted and the index dropped."""
    labels = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        labels.append(rest.strip() if head.isdigit() and int(head) == len(labels) and rest else line)
    return labels


# --------------------------------------------------------------------------- export
def save_inference_program(model, path_prefix, input_size) -> None:
    """paddle.jit.save with a dynamic batch dimension: writes <prefix>.json + <prefix>.pdiparams."""
    from .._paddle import import_paddle

    paddle = import_paddle()
    was_training = model.training
    model.eval()
    spec = [paddle.static.InputSpec([None, *input_size], "float32", "x")]
    try:
        for attempt in range(2):
            try:
                with quiet():
                    paddle.jit.save(model, str(path_prefix), input_spec=spec)
                break
            except ValueError as exc:
                # dy2static writes the transformed forward to a temp module and imports it; under heavy
                # concurrent load that import was seen (rarely) to come back without the function.
                if attempt or "transformed from AST" not in str(exc):
                    raise
    except Exception as exc:  # noqa: BLE001 - to_static failures come in many types
        raise ExportError(f"paddle.jit.save failed for {type(model).__name__}: {exc}") from exc
    finally:
        if was_training:
            model.train()
    if not any(Path(str(path_prefix) + ext).is_file() for ext in (".json", ".pdmodel")):
        raise ExportError(f"paddle.jit.save wrote no program {path_prefix}.json")


def program_files(directory, prefix: str = PROGRAM):
    """(model file, params file) of an inference program; .json (PIR) preferred over .pdmodel."""
    directory = Path(directory)
    for ext in (".json", ".pdmodel"):
        model_file = directory / f"{prefix}{ext}"
        if model_file.is_file():
            return model_file, directory / f"{prefix}.pdiparams"
    raise ExportError(f"no inference program {prefix}.json / {prefix}.pdmodel in {directory}")


def export_onnx(directory, prefix: str = PROGRAM, out_file: Optional[str] = None, opset: int = ONNX_OPSET) -> Path:
    """Convert an exported program to ONNX with paddle2onnx (no run-time package installs)."""
    try:
        import paddle2onnx
    except ImportError as exc:
        raise ExportError("ONNX export needs paddle2onnx: pip install 'hubcls[onnx]'") from exc
    model_file, params_file = program_files(directory, prefix)
    out = Path(out_file) if out_file else Path(directory) / ONNX_FILE
    if out.exists():
        out.unlink()
    # optimize_tool: "polygraphy" (the default) auto-installs onnx-graphsurgeon with pip when it is
    # missing, and onnxoptimizer's pass list in paddle2onnx 2.1 names a pass that does not exist; the
    # converter's own optimiser (enable_optimize) already folds what onnxruntime needs.
    try:
        with quiet():
            paddle2onnx.export(
                str(model_file), str(params_file), str(out), opset_version=opset,
                enable_onnx_checker=True, enable_optimize=True, optimize_tool="none",
            )
    except Exception as exc:  # noqa: BLE001 - paddle2onnx logs the cause and then fails on a NameError
        raise ExportError(f"paddle2onnx could not convert {model_file}: {exc} (run with --verbose to see its log)") from exc
    if not out.is_file():
        raise ExportError(f"paddle2onnx did not write {out} (run with --verbose to see its log)")
    if model_file.suffix == ".json":
        _fix_hardtanh_clips(model_file, out)
    return out


def _hardtanh_bounds(program_json) -> List[tuple]:
    """(t_min, t_max) of every pd_op.hardtanh in a PIR program, in program order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("#") == "1.hardtanh":
                attrs = {a.get("N"): (a.get("AT") or {}).get("D") for a in node.get("A", [])}
                found.append((float(attrs.get("t_min", -1.0)), float(attrs.get("t_max", 1.0))))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(Path(program_json).read_text()))
    return found


def _fix_hardtanh_clips(program_json, onnx_file) -> int:
    """paddle2onnx 2.1 converts pd_op.hardtanh to Clip(-1, 1) whatever its t_min/t_max (GhostNet's SE
    gate is hardtanh(0, 1): its ONNX logits were off by ~50). Put the program's bounds back."""
    bounds = _hardtanh_bounds(program_json)
    if not bounds or all(b == (-1.0, 1.0) for b in bounds):
        return 0
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_file))
    g = model.graph
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    consts.update({i.name: numpy_helper.to_array(i) for i in g.initializer})

    def hardtanh_index(clip):
        name, seen = clip.output[0], 0
        while seen < 8:  # Identity chains are short
            if name.startswith("p2o.pd_op.hardtanh."):
                return int(name.split(".")[3])
            nxt = [c for c in consumers.get(name, []) if c.op_type == "Identity"]
            if len(nxt) != 1:
                return None
            name, seen = nxt[0].output[0], seen + 1
        return None

    clips = [n for n in g.node if n.op_type == "Clip" and len(n.input) == 3
             and float(np.asarray(consts.get(n.input[1], np.nan))) == -1.0
             and float(np.asarray(consts.get(n.input[2], np.nan))) == 1.0]
    mapping = {}
    for clip in clips:
        k = hardtanh_index(clip)
        if k is not None and k < len(bounds):
            mapping[id(clip)] = (clip, bounds[k])
    if len(mapping) < len(bounds):
        if len(clips) != len(bounds):
            raise ExportError(f"paddle2onnx mis-converts hardtanh and the {len(bounds)} hardtanh ops could not be "
                              f"matched to the ONNX graph's Clip nodes ({len(clips)} candidates)")
        mapping = {id(c): (c, b) for c, b in zip(clips, bounds)}  # both in program order
    for j, (clip, (lo, hi)) in enumerate(mapping.values()):
        for slot, value in ((1, lo), (2, hi)):
            name = f"hubcls.hardtanh_fix.{j}.{slot}"
            g.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
            clip.input[slot] = name
    onnx.save(model, str(onnx_file))
    return len(mapping)


def export_model(
    model,
    out_dir,
    *,
    cfg=None,
    input_size=None,
    preprocess_ops: Optional[Sequence[dict]] = None,
    labels: Optional[Sequence[str]] = None,
    onnx: bool = False,
    weights_id: Optional[str] = None,
    name: Optional[str] = None,
    int8_calib=None,
) -> Path:
    """Export ``model`` (a paddle.nn.Layer, put in eval mode) to ``out_dir``; returns the directory.

    ``cfg`` defaults to ``model.pretrained_cfg``; it gives the input size, the eval preprocessing
    (unless ``preprocess_ops`` is given) and the label list (unless ``labels`` is given).
    ``onnx=True`` adds model.onnx; ``int8_calib`` (float32 NCHW preprocessed calibration images) adds
    model_int8.onnx, a statically quantised copy (see quant.py)."""
    from .. import __version__
    from ._cache import tool_versions, weights_hash_of_model

    cfg = cfg if cfg is not None else getattr(model, "pretrained_cfg", None)
    if cfg is None and (preprocess_ops is None or input_size is None):
        raise ConfigError("export_model: the model has no pretrained_cfg; pass cfg= or preprocess_ops= and input_size=")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = input_size_of(cfg, input_size)
    if input_size is not None and cfg is not None and preprocess_ops is None and hasattr(cfg, "with_"):
        # a different eval size: keep the model's resize/crop ratio so preprocessing matches the program
        if size[1] != size[2]:
            raise ConfigError(f"a non-square input size {size[1:]} needs preprocess_ops= (eval crops are square)")
        crop = int(getattr(cfg, "input_size", size[1]) or size[1])
        short = getattr(cfg, "resize_short", None) or round(crop / 0.875)
        cfg = cfg.with_(input_size=size[1], resize_short=int(round(size[1] * short / crop)))
    ops = list(preprocess_ops) if preprocess_ops is not None else preprocess_ops_for(cfg)
    num_classes = getattr(cfg, "num_classes", None)
    if labels is None and cfg is not None:
        labels = labels_for(cfg)
        if labels is not None and num_classes and len(labels) != num_classes:
            labels = None  # a fine-tuned head with the base model's label list would mislabel everything

    t0 = time.time()
    save_inference_program(model, out / PROGRAM, size)
    (out / PREPROCESS_FILE).write_text(json.dumps({"ops": ops, "input_size": list(size)}, indent=2))
    if labels:
        (out / LABELS_FILE).write_text("\n".join(str(x) for x in labels) + "\n", encoding="utf-8")
    meta = {
        "format": 1,
        "model": name or getattr(cfg, "name", None) or type(model).__name__,
        "arch": getattr(cfg, "arch", None),
        "weights": weights_id or weights_hash_of_model(model),
        "input": {"name": "x", "shape": [None, *size], "dtype": "float32"},
        "num_classes": len(labels) if labels else num_classes,
        "versions": tool_versions("inference"),
        "hubcls": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if onnx or int8_calib is not None:
        export_onnx(out)
        meta["onnx"] = {"file": ONNX_FILE, "opset": ONNX_OPSET, "versions": tool_versions("onnx")}
    if int8_calib is not None:
        from .quant import quantize_onnx_int8

        quantize_onnx_int8(out / ONNX_FILE, out / ONNX_INT8_FILE, int8_calib)
        meta["int8"] = {"file": ONNX_INT8_FILE, "calibration_images": int(len(int8_calib)),
                        "method": "onnxruntime static QDQ, per-channel int8 weights, minmax uint8 activations"}
    meta["export_seconds"] = round(time.time() - t0, 3)
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    return out


def read_export(directory) -> dict:
    """Meta, preprocessing ops and labels of an export directory (clear errors when incomplete)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ExportError(f"{directory} is not a directory (export one with `hubcls export -m NAME -o DIR`)")
    program_files(directory)  # raises when there is no program
    pre = directory / PREPROCESS_FILE
    if not pre.is_file():
        raise ExportError(f"{directory} has no {PREPROCESS_FILE}; it was not written by `hubcls export`")
    spec = json.loads(pre.read_text())
    meta_file = directory / META_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    labels_file = directory / LABELS_FILE
    labels = read_labels(labels_file) if labels_file.is_file() else None
    return {"meta": meta, "ops": spec["ops"], "input_size": tuple(spec["input_size"]), "labels": labels}
