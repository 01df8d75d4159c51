"""``hubcls quickstart``: generate data, fine-tune, evaluate, export, predict, report (offline)."""
from __future__ import annotations


def _run(args) -> int:
    import os

    from ..engine.quickstart import run_quickstart

    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    pretrained = False if args.no_pretrained else (args.weights or "auto")
    overrides = list(args.override)
    if args.epochs:
        overrides.append(f"Global.epochs={args.epochs}")
    run_quickstart(dataset=args.dataset, data_dir=args.data_dir, output=args.output, overrides=overrides,
                   pretrained=pretrained, top_k=args.top_k, quiet=args.quiet)
    return 0


def register(sub):
    from ._common import add_parser

    p = add_parser(sub, "quickstart", help="offline end-to-end demo: data, fine-tune, eval, export, predict, report",
                   examples=["hubcls quickstart", "hubcls quickstart --epochs 3 --no-pretrained",
                             "hubcls quickstart --dataset flowers102 --data-dir ./flowers"])
    p.add_argument("--dataset", default="demo", choices=["demo", "flowers102"],
                   help="demo: generated offline set (default); flowers102: PaddleClas's quick-start recipe")
    p.add_argument("--data-dir", default=None, help="dataset folder (flowers102: jpg/, imagelabels.mat, setid.mat)")
    p.add_argument("--output", default="./output/quickstart", help="where everything is written")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epoch count")
    p.add_argument("--weights", default=None, help="start from this weights file instead of the official weights")
    p.add_argument("--no-pretrained", action="store_true", help="train from scratch without trying the model host")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
