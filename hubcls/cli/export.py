"""``hubcls export (-c CONFIG | -m NAME [--weights FILE]) -o DIR``: a deployable model directory.

Writes the Paddle inference program (dynamic batch), preprocess.json (the eval transform ops),
labels.txt and hubcls_export.json; ``--onnx`` adds model.onnx, ``--int8 IMAGES`` a calibrated INT8
ONNX model, ``--format lite`` a Paddle-Lite .nb file (needs the paddlelite package).
"""
from __future__ import annotations

import json


def _model_from_config(args):
    """(model, cfg-like, preprocess ops, labels) from a PaddleClas-shaped training config."""
    from pathlib import Path

    from ..engine import checkpoint as ckpt
    from ..engine.config import load_config
    from ..engine.trainer import build_model
    from ..errors import ConfigError

    cfg = load_config(args.config, args.override, strict=getattr(args, "strict", False))
    g = cfg.setdefault("Global", {})
    if args.weights:
        g["pretrained_model"] = args.weights
    elif not g.get("pretrained_model") and not (cfg.get("Arch") or {}).get("pretrained"):
        run_dir = Path(g.get("output_dir", "./output/")) / str(cfg["Arch"]["name"])
        for cand in (ckpt.BEST_WEIGHTS, ckpt.LAST_WEIGHTS):
            if (run_dir / cand).is_file():
                g["pretrained_model"] = str(run_dir / cand)
                break
        else:
            raise ConfigError(f"no weights to export: set -o Global.pretrained_model=FILE, --weights FILE, "
                              f"or train first (looked for {run_dir / ckpt.BEST_WEIGHTS})")
    model = build_model(cfg, log=lambda *a, **k: None)
    # PaddleClas's export/predict use Infer.transforms; fall back to the Eval loader's ops
    infer_ops = (cfg.get("Infer") or {}).get("transforms")
    eval_ops = ((cfg.get("DataLoader") or {}).get("Eval") or {}).get("dataset", {}).get("transform_ops")
    ops = [op for op in (infer_ops or eval_ops or []) if not (isinstance(op, dict) and "DecodeImage" in op)]
    if not ops:
        ops = None  # fall back to the model's own eval preprocessing
    labels = None
    label_file = ((cfg.get("Infer") or {}).get("PostProcess") or {}).get("class_id_map_file")
    if label_file and Path(label_file).is_file():
        from ..deploy.export import read_labels

        labels = read_labels(label_file)
    return model, ops, labels, cfg["Arch"]["name"]


def _input_size_from_ops(ops):
    for op in ops or []:
        for key in ("CropImage", "ResizeImage"):
            params = op.get(key) if isinstance(op, dict) else None
            if params and key == "CropImage":
                size = params.get("size")
                return (size, size) if isinstance(size, int) else tuple(size)[::-1]  # (w, h) -> (h, w)
    return None


def _calibration_batch(folder, n, ops, cfg):
    """Up to ``n`` images from ``folder`` (recursively), through the export's own preprocessing."""
    from pathlib import Path

    import numpy as np

    from ..data import read_image
    from ..deploy.export import build_preprocess, preprocess_ops_for
    from ..errors import ConfigError

    exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in exts)[:n]
    if not files:
        raise ConfigError(f"--int8 {folder}: no images found (looked for {', '.join(sorted(exts))})")
    transform = build_preprocess(ops if ops is not None else preprocess_ops_for(cfg))
    return np.stack([np.asarray(transform(read_image(str(f))), np.float32) for f in files])


def _run(args) -> int:
    from pathlib import Path

    from ..errors import ConfigError

    if bool(args.config) == bool(args.model):
        raise ConfigError("export needs exactly one of -c CONFIG or -m NAME")
    from ..deploy.export import export_model, input_size_of

    if args.model:
        from ..models import create_model

        pretrained = args.weights if args.weights else (True if not args.random else False)
        model = create_model(args.model, pretrained=pretrained)
        ops, labels, name = None, None, model.pretrained_cfg.name
    else:
        model, ops, labels, name = _model_from_config(args)
    cfg = getattr(model, "pretrained_cfg", None)
    size = args.input_size or _input_size_from_ops(ops)
    if cfg is None and size is None:
        raise ConfigError("cannot tell the input size: pass --input-size")
    if args.format == "lite":
        from ..deploy.lite import export_lite

        nb = export_lite(model, args.output, input_size=input_size_of(cfg, size))
        print(f"wrote {nb}")
        return 0
    calib = None
    if args.int8:
        calib = _calibration_batch(args.int8, args.calib_num, ops, cfg)
    out = export_model(model, args.output, cfg=cfg, input_size=size, preprocess_ops=ops, labels=labels, name=name,
                       onnx=args.onnx or args.format == "onnx", int8_calib=calib)
    meta = json.loads((Path(out) / "hubcls_export.json").read_text())
    files = sorted(p.name for p in Path(out).iterdir())
    print(f"exported {meta['model']} ({'x'.join(str(s) for s in meta['input']['shape'][1:])} input, dynamic batch) "
          f"to {out} in {meta['export_seconds']:.1f}s: {', '.join(files)}")
    if args.check:
        from ..deploy.predictor import Predictor

        import numpy as np

        x = np.random.default_rng(0).standard_normal((2, *meta["input"]["shape"][1:])).astype(np.float32)
        from ..deploy.backends import DygraphBackend

        ref = DygraphBackend(model)(x)
        for backend in ["inference"] + (["onnxruntime"] if (Path(out) / "model.onnx").is_file() else []) + (
                ["int8"] if calib is not None else []):
            got = Predictor(out, backend=backend, warmup=0).logits(x)
            print(f"check {backend}: max |logit - dygraph| = {float(np.abs(got - ref).max()):.3g}")
    return 0


def register(sub):
    p = sub.add_parser("export", help="export a model for deployment (Paddle inference program, ONNX, INT8, Lite)")
    src = p.add_argument_group("model (one of)")
    src.add_argument("-c", "--config", help="training config (YAML path or shipped name); weights: Global.pretrained_model "
                                            "or the run's best checkpoint")
    src.add_argument("-O", "--override", action="append", default=[], metavar="KEY=VALUE",
                     help="config override with -c, e.g. -O Global.pretrained_model=best.pdparams (-o is the output dir)")
    src.add_argument("--strict", action="store_true", help="with -c: unknown config keys are errors")
    src.add_argument("-m", "--model", help="zoo model name (any spelling: ResNet50_vd_ssld, resnet50_vd_imagenet_ssld)")
    src.add_argument("--weights", help="weights file (.pdparams/.safetensors/save_pretrained dir); default: official weights")
    src.add_argument("--random", action="store_true", help="with -m and no --weights: export untrained weights (tests/demos)")
    p.add_argument("-o", "--output", dest="output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--format", choices=["paddle", "onnx", "lite"], default="paddle",
                   help="paddle: inference program (+ --onnx); onnx: also model.onnx; lite: Paddle-Lite .nb")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (paddle2onnx)")
    p.add_argument("--int8", metavar="IMAGES_DIR", help="also write model_int8.onnx calibrated on images from this folder")
    p.add_argument("--calib-num", type=int, default=64, help="calibration images to use with --int8 (default 64)")
    p.add_argument("--input-size", type=int, nargs="+", metavar="N", help="input H [W] (default: the model's eval crop)")
    p.add_argument("--check", action="store_true", help="after export, compare every exported backend with dygraph")
    p.set_defaults(func=_run)
