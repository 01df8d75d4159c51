"""``hubcls eval -c CONFIG [-o Global.pretrained_model=PATH]``: top-1/top-5, per-class P/R/F1,
confusion matrix (CSV + PNG) on the config's Eval data."""
from __future__ import annotations

import json

from .train import add_config_args


def _run(args) -> int:
    from ..engine.config import load_config
    from ..engine.trainer import Trainer
    from ..engine.metrics import per_class_report

    cfg = load_config(args.config, args.override, strict=args.strict)
    cfg["Global"]["report"] = False
    if not cfg["Global"].get("pretrained_model") and not cfg["Arch"].get("pretrained"):
        from pathlib import Path
        from ..engine import checkpoint as ckpt
        from ..engine.trainer import run_dir_of

        run_dir = run_dir_of(cfg)
        for cand in (ckpt.BEST_WEIGHTS, ckpt.LAST_WEIGHTS):
            if (run_dir / cand).is_file():
                cfg["Global"]["pretrained_model"] = str(run_dir / cand)
                print(f"evaluating {run_dir / cand} (set -o Global.pretrained_model=... for other weights)")
                break
        else:
            print("warning: no Global.pretrained_model and no trained run found: evaluating random weights")
    trainer = Trainer(cfg, quiet=args.quiet)
    trainer.eval_loader = trainer._build_loader("Eval")
    trainer.preflight("Eval")
    from ..engine.losses import CombinedLoss
    from ..engine.config import named_items, _get

    trainer.eval_loss_fn = CombinedLoss(named_items(_get(cfg, "Loss.Eval") or [{"CELoss": {}}], "Loss.Eval"))
    res, metrics = trainer.evaluate()
    if trainer.rank != 0:
        return 0
    trainer._write_eval_artifacts(res, prefix="eval")
    try:
        from ..engine.report import plot_confusion

        plot_confusion(res.confusion(), trainer.output_dir / "eval_confusion_matrix.png", trainer.class_names)
    except ImportError:
        pass
    metrics["num_samples"] = int(len(res.labels))
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        rep = per_class_report(res.confusion())
        worst = rep["f1"].argsort()[:5]
        names = trainer.class_names
        print("lowest F1: " + ", ".join(f"{names[i] if names else i}={rep['f1'][i]:.3f}" for i in worst))
        print(f"per-class table and confusion matrix: {trainer.output_dir}/eval_per_class.csv, eval_confusion_matrix.csv/.png")
    return 0


def register(sub):
    p = sub.add_parser("eval", help="evaluate weights on the config's Eval data (top-k, per-class, confusion)")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run)
