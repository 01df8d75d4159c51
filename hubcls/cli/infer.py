"""``hubcls infer`` / ``hubcls predict``: top-k predictions for image files and folders.

    hubcls predict IMAGES... -m NAME|DIR [--top-k K] [--json out.json] [--csv out.csv]
    hubcls infer IMAGES... -c CONFIG [-o KEY=VALUE]
"""
from __future__ import annotations

from ._common import add_backend_arg, add_model_args, add_override_arg, add_parser


def _run(args) -> int:
    from ..engine import infer as I
    from ..errors import ConfigError

    if bool(args.config) == bool(args.model):
        raise ConfigError("give exactly one of -m MODEL (a zoo name, package, run, export or module directory) "
                          "or -c CONFIG (a training config: its run's best weights)")
    files = I.expand_inputs(args.inputs)
    if args.config:
        from ..engine.config import load_config

        clf = I.Classifier.from_config(load_config(args.config, args.override, strict=args.strict), weights=args.weights,
                                       label_list=args.label_list, backend=args.backend or "auto")
    else:
        if args.override:
            raise ConfigError("-o KEY=VALUE overrides a config: use it with -c CONFIG")
        clf = I.Classifier.from_model(args.model, weights=args.weights, label_list=args.label_list,
                                      backend=args.backend or "auto", batch_size=args.batch_size)
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


EXAMPLES = [
    "hubcls {cmd} cat.jpg dog.png -m ResNet50_vd_ssld --top-k 5",
    "hubcls {cmd} photos/ -m output/quickstart --json preds.json      # your trained run",
    "hubcls {cmd} photos/ -c quickstart -o Global.device=cpu --csv preds.csv",
]


def register(sub):
    for cmd, help_ in (("infer", "top-k predictions for image files or folders"),
                       ("predict", "top-k predictions for image files or folders (same as infer)")):
        p = add_parser(sub, cmd, help=help_, examples=[e.format(cmd=cmd) for e in EXAMPLES])
        p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER")
        add_model_args(p)
        p.add_argument("-c", "--config", help="config of a trained run (weights: its best model, --weights, "
                                              "or -o Global.pretrained_model=...)")
        add_override_arg(p, " (with -c)")
        p.add_argument("--strict", action="store_true", help="with -c: unknown config keys are errors")
        add_backend_arg(p)
        p.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=5)
        p.add_argument("--batch-size", type=int, default=16, help="images per model call (default 16)")
        p.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
        p.add_argument("--csv", metavar="OUT.csv", help="also write the results as CSV")
        p.set_defaults(func=_run)
