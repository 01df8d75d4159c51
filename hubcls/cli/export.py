"""``hubcls export (-m MODEL | -c CONFIG) [--output DIR]``: a deployable model directory.

Writes a model package (model.json + model.safetensors) with the Paddle inference program (dynamic
batch) and labels.txt beside it; ``--onnx`` adds model.onnx, ``--int8 IMAGES`` a calibrated INT8 ONNX
model, ``--format lite`` a Paddle-Lite .nb file (needs the paddlelite package). With ``-c`` the output
directory defaults to the config's ``Global.save_inference_dir`` (as PaddleClas's export_model.py).
"""
from __future__ import annotations

import argparse
import json

from ._common import add_model_args, add_override_arg, add_parser, split_output_override


def _source(args):
    """(model, name, resolved output dir) for -m or -c."""
    from ..errors import ConfigError

    if args.model:
        if args.override:
            raise ConfigError("-o KEY=VALUE overrides a config: use it with -c CONFIG")
        from ..models import resolve_model

        weights = args.weights or (False if args.random else None)
        source = resolve_model(args.model, weights=weights)
        out = args.output
    else:
        from ..engine.config import load_config
        from ..engine.infer import config_source

        cfg = load_config(args.config, args.override, strict=args.strict)
        source = config_source(cfg, args.weights)
        out = args.output or (cfg.get("Global") or {}).get("save_inference_dir")
    if not out:
        raise ConfigError("where to? pass --output DIR")
    model = source.create()
    if args.label_list:
        from ..models import inference_labels
        from ..models._package import with_package_facts

        labels = inference_labels(model.pretrained_cfg, model.num_classes, args.label_list)
        model.pretrained_cfg = with_package_facts(model.pretrained_cfg, labels=labels)
    return model, source, out


def _calibration_batch(folder, n, ops):
    """Up to ``n`` images from ``folder`` (recursively), through the export's own preprocessing."""
    from pathlib import Path

    from ..data import build_transforms, read_image
    from ..errors import ConfigError

    exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in exts)[:n]
    if not files:
        raise ConfigError(f"--int8 {folder}: no images found (looked for {', '.join(sorted(exts))})")
    return build_transforms(list(ops)).batch([read_image(str(f)) for f in files])


def _run(args) -> int:
    from pathlib import Path

    from ..errors import ConfigError

    split_output_override(args, "export")
    if bool(args.config) == bool(args.model):
        raise ConfigError("export needs exactly one of -c CONFIG or -m MODEL")
    from ..deploy.export import export_model, input_size_of
    from ..models._package import preprocess_of

    model, source, out_dir = _source(args)
    cfg = model.pretrained_cfg
    size = args.input_size
    if args.format == "lite":
        from ..deploy.lite import export_lite

        nb = export_lite(model, out_dir, input_size=input_size_of(cfg, size))
        print(f"wrote {nb}")
        return 0
    calib = _calibration_batch(args.int8, args.calib_num, preprocess_of(cfg)) if args.int8 else None
    out = export_model(model, out_dir, input_size=size, onnx=args.onnx or args.format == "onnx", int8_calib=calib,
                       provenance={"source": source.given, "source_weights": source.weights_id})
    meta = json.loads((Path(out) / "model.json").read_text())
    info = meta["inference"]
    files = sorted(p.name for p in Path(out).iterdir())
    print(f"exported {meta['name']} ({'x'.join(str(s) for s in info['input']['shape'][1:])} input, dynamic batch, "
          f"{meta['num_classes']} classes) to {out} in {info['export_seconds']:.1f}s: {', '.join(files)}")
    if args.check:
        import numpy as np

        from ..deploy.backends import DygraphBackend
        from ..deploy.predictor import Predictor

        x = np.random.default_rng(0).standard_normal((2, *info["input"]["shape"][1:])).astype(np.float32)
        ref = DygraphBackend(model)(x)
        for backend in ["inference"] + (["onnxruntime"] if (Path(out) / "model.onnx").is_file() else []) + (
                ["int8"] if calib is not None else []):
            got = Predictor(out, backend=backend, warmup=0).logits(x)
            print(f"check {backend}: max |logit - dygraph| = {float(np.abs(got - ref).max()):.3g}")
    return 0


def register(sub):
    p = add_parser(sub, "export", help="export a model for deployment (package + Paddle inference program, ONNX, INT8, Lite)",
                   examples=[
                       "hubcls export -m ResNet50_vd_ssld --output out/r50 --onnx",
                       "hubcls export -m output/quickstart --output out/mine       # a trained run",
                       "hubcls export -c quickstart                                # -> Global.save_inference_dir",
                   ])
    src = p.add_argument_group("model (one of)")
    add_model_args(src)
    src.add_argument("-c", "--config", help="training config (YAML path or shipped name); weights: --weights, "
                                            "Global.pretrained_model or the run's best model")
    src.add_argument("--random", action="store_true", help="with -m NAME and no --weights: export untrained weights (tests/demos)")
    add_override_arg(p, " (with -c)")
    p.add_argument("--strict", action="store_true", help="with -c: unknown config keys are errors")
    p.add_argument("-O", dest="old_override", action="append", metavar="KEY=VALUE", help=argparse.SUPPRESS)
    p.add_argument("--output", "--out", dest="output", metavar="DIR",
                   help="output directory (default with -c: the config's Global.save_inference_dir)")
    p.add_argument("--format", choices=["paddle", "onnx", "lite"], default="paddle",
                   help="paddle: inference program (+ --onnx); onnx: also model.onnx; lite: Paddle-Lite .nb")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (paddle2onnx)")
    p.add_argument("--int8", metavar="IMAGES_DIR", help="also write model_int8.onnx calibrated on images from this folder")
    p.add_argument("--calib-num", type=int, default=64, help="calibration images to use with --int8 (default 64)")
    p.add_argument("--input-size", type=int, nargs="+", metavar="N", help="input H [W] (default: the model's eval crop)")
    p.add_argument("--check", action="store_true", help="after export, compare every exported backend with dygraph")
    p.set_defaults(func=_run)

