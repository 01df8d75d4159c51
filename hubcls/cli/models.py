"""``hubcls models [PATTERN]``: the model zoo as a table (name, params, MACs, Top-1, weights)."""
from __future__ import annotations

import json


def _rows(patterns, pretrained, measure):
    from ..models import list_models, resolve

    names = []
    for pat in patterns or ["*"]:
        names += list_models(pat, pretrained=pretrained)
    names = sorted(set(names), key=str.lower)
    rows = []
    if measure:
        from tqdm.auto import tqdm

        names_iter = tqdm(names, desc="profiling", unit="model", leave=False, disable=None)
    else:
        names_iter = names
    for name in names_iter:
        cfg = resolve(name)
        params_m, macs_g = cfg.params_m, cfg.macs_g
        if measure:
            from ..models import profile

            p = profile(name)
            params_m, macs_g = p["params"] / 1e6, p["macs"] / 1e9
        rows.append({"name": cfg.name, "arch": cfg.arch, "params_m": params_m, "macs_g": macs_g,
                     "input_size": cfg.input_size, "top1": cfg.top1, "weights": cfg.has_weights})
    return rows


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def _run(args) -> int:
    pretrained = True if args.pretrained else (False if args.no_weights else None)
    rows = _rows(args.pattern, pretrained, args.measure)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no models match {' '.join(args.pattern) or '*'}")
        return 1
    header = ("name", "params(M)", "MACs(G)", "size", "top-1", "weights")
    table = [(r["name"], _fmt(r["params_m"], ".2f"), _fmt(r["macs_g"], ".2f"), str(r["input_size"]),
              _fmt(r["top1"], ".3f"), "yes" if r["weights"] else "no") for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    print(line(header))
    print(line(["-" * w for w in widths]))
    for t in table:
        print(line(t))
    print(f"{len(rows)} models" + ("" if args.measure else "  (params/MACs: PaddleClas model zoo; --measure computes them)"))
    return 0


def register(subparsers):
    from ._common import add_parser

    p = add_parser(subparsers, "models", help="list the model zoo (name, params, MACs, top-1, weights)",
                   description="List registered models matching shell wildcards (case-insensitive).",
                   examples=["hubcls models 'resnet50*' --pretrained", "hubcls models MobileNetV3* --measure",
                             "hubcls models --json > zoo.json"])
    p.add_argument("pattern", nargs="*", help="wildcard(s) such as 'ResNet*' (default: all)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--pretrained", action="store_true", help="only models with official weights")
    g.add_argument("--no-weights", action="store_true", help="only architectures without weights")
    p.add_argument("--measure", action="store_true",
                   help="build each model and count params/MACs at its eval size (slow)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_run)
