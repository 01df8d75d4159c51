"""``hubcls infer -c CONFIG|-m NAME IMAGES_OR_FOLDERS --top-k K [--json out.json|--csv out.csv]``."""
from __future__ import annotations


def _run(args) -> int:
    from ..errors import ConfigError
    from ..engine import infer as I

    if bool(args.config) == bool(args.model):
        raise ConfigError("give exactly one of -c CONFIG (a trained run) or -m MODEL_NAME (a zoo model)")
    files = I.expand_inputs(args.inputs)
    if args.config:
        from ..engine.config import load_config

        clf = I.Classifier.from_config(load_config(args.config, args.override, strict=args.strict), weights=args.weights)
    else:
        clf = I.Classifier.from_name(args.model, weights=args.weights)
    results = clf.predict(files, top_k=args.top_k)
    for r in results:
        if "error" in r:
            print(f"{r['file']}: ERROR {r['error']}")
        else:
            print(f"{r['file']}: " + ", ".join(f"{n} ({s:.3f})" for n, s in zip(r["label_names"], r["scores"])))
    if args.json:
        I.write_json(results, args.json)
        print(f"wrote {args.json}")
    if args.csv:
        I.write_csv(results, args.csv)
        print(f"wrote {args.csv}")
    return 1 if any("error" in r for r in results) and all("error" in r for r in results) else 0


def register(sub):
    p = sub.add_parser("infer", help="top-k predictions for image files or folders")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument("-c", "--config", help="config of a trained run (weights: its best model, or -o Global.pretrained_model=...)")
    p.add_argument("-m", "--model", help="zoo model name with official weights (e.g. ResNet50_vd_ssld)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--strict", action="store_true", help="unknown config keys are errors")
    p.add_argument("--weights", help="weights file or run directory to use instead")
    p.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=5)
    p.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    p.add_argument("--csv", metavar="OUT.csv", help="also write the results as CSV")
    p.set_defaults(func=_run)
