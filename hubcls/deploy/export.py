"""Export a model for deployment: a model package (hubcls.models._package) plus its inference programs.

An export directory is a model package with, beside model.json and model.safetensors::

    inference.json, inference.pdiparams   paddle.jit.save program, input "x" [None, 3, H, W] (dynamic batch)
    model.onnx                            (optional) paddle2onnx conversion of the program
    model_int8.onnx                       (optional) statically quantised copy, calibrated on images
    labels.txt                            the manifest's class names, one per line, for PaddleClas's
                                          deploy tools (class_id_map_file); hubcls reads model.json

and an ``inference`` entry in model.json (program files, input spec, weights hash, versions).
``hubcls.deploy.Predictor(dir)`` (and every other entry point) reads it back through the resolver:
the preprocessing is the manifest's op list, the SAME list training-time eval, hub.Module and serve
build their pipelines from, so exported answers equal eval-mode answers.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from ..errors import ConfigError, ExportError  # noqa: F401 - ExportError re-exported
from ..models import _package as P
from ._program import (  # noqa: F401 - re-exported: the names hubcls.deploy.export always had
    ONNX_FILE,
    ONNX_INT8_FILE,
    ONNX_OPSET,
    PROGRAM,
    export_onnx,
    input_size_of,
    program_files,
    save_inference_program,
)

LABELS_FILE = P.LEGACY_LABELS


def preprocess_ops_for(cfg):
    """The eval op list of a model's cfg (its package's, else the zoo eval convention)."""
    return P.preprocess_of(cfg)


def build_preprocess(ops: Sequence[dict]):
    """Callable uint8 RGB HWC -> float32 CHW, built by hubcls.data from an ops list."""
    from ..data import build_transforms

    return build_transforms(list(ops))


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
    provenance: Optional[dict] = None,
) -> Path:
    """Export ``model`` (a paddle.nn.Layer, put in eval mode) to ``out_dir``; returns the directory.

    ``cfg`` defaults to ``model.pretrained_cfg``; it gives the input size, the eval preprocessing
    (unless ``preprocess_ops`` is given) and the class names (unless ``labels`` is given).
    ``input_size`` other than the model's keeps its resize/crop ratio. ``onnx=True`` adds
    model.onnx; ``int8_calib`` (float32 NCHW preprocessed calibration images) adds model_int8.onnx."""
    from ._cache import tool_versions, weights_hash_of_model

    cfg = cfg if cfg is not None else getattr(model, "pretrained_cfg", None)
    if cfg is None:
        raise ConfigError("export_model: the model has no pretrained_cfg (build it with hubcls.create_model)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if input_size is not None and preprocess_ops is None:
        size = input_size_of(cfg, input_size)
        if size != P.input_size_of(cfg):
            # another eval size: keep the model's resize/crop ratio so preprocessing matches the program
            if size[1] != size[2]:
                raise ConfigError(f"a non-square input size {size[1:]} needs preprocess_ops= (eval crops are square)")
            crop = P.input_size_of(cfg)[1]
            short = getattr(cfg, "resize_short", None) or round(crop / 0.875)
            extra = {k: v for k, v in (cfg.extra or {}).items() if k != "preprocess"}
            cfg = cfg.with_(input_size=size[1], resize_short=int(round(size[1] * short / crop)), extra=extra)
    ops = list(preprocess_ops) if preprocess_ops is not None else P.preprocess_of(cfg)
    size = input_size_of(cfg, input_size) if input_size is not None else (P.input_size_of_ops(ops) or P.input_size_of(cfg))
    n = int(getattr(model, "num_classes", None) or cfg.num_classes)
    if labels is None:
        labels = P.labels_of(cfg, n)

    t0 = time.time()
    was_cfg = getattr(model, "pretrained_cfg", None)
    model.pretrained_cfg = cfg  # the package describes the exported variant (input size, ops)
    try:
        P.save_package(model, out, labels=labels, preprocess=ops, name=name, provenance=provenance)
    finally:
        model.pretrained_cfg = was_cfg
    save_inference_program(model, out / PROGRAM, size)
    if labels:
        from ..data.label_lists import write_labels

        write_labels(out / LABELS_FILE, labels)
    files = sorted(p.name for p in out.iterdir() if p.name.startswith(PROGRAM + "."))
    info = {
        "program": {"prefix": PROGRAM, "files": files},
        "input": {"name": "x", "shape": [None, *size], "dtype": "float32"},
        "weights_id": weights_id or weights_hash_of_model(model),
        "versions": tool_versions("inference"),
    }
    if onnx or int8_calib is not None:
        export_onnx(out)
        info["onnx"] = {"file": ONNX_FILE, "opset": ONNX_OPSET, "versions": tool_versions("onnx")}
    if int8_calib is not None:
        from .quant import quantize_onnx_int8

        quantize_onnx_int8(out / ONNX_FILE, out / ONNX_INT8_FILE, int8_calib)
        info["int8"] = {"file": ONNX_INT8_FILE, "calibration_images": int(len(int8_calib)),
                        "method": "onnxruntime static QDQ, per-channel int8 weights, minmax uint8 activations"}
    info["export_seconds"] = round(time.time() - t0, 3)
    P.update_manifest(out, inference=info)
    return out


def read_export(directory) -> dict:
    """Manifest, preprocessing ops, input size and labels of an export directory (clear errors
    when it is incomplete). Older exports (preprocess.json + hubcls_export.json) read too."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ExportError(f"{directory} is not a directory (export one with `hubcls export -m NAME --output DIR`)")
    program_files(directory)  # raises when there is no program
    try:
        pkg = P.read_package(directory)
    except ConfigError as exc:
        raise ExportError(f"{directory} has a program but no {P.MANIFEST} (nor an older {P.LEGACY_PREPROCESS}); "
                          f"it was not written by `hubcls export` ({exc})") from None
    meta = pkg.manifest.get("inference", pkg.manifest) if pkg.legacy is None else pkg.manifest
    return {"meta": meta, "manifest": pkg.manifest, "ops": pkg.preprocess, "input_size": pkg.input_size,
            "labels": pkg.labels, "package": pkg}
