"""``hubcls eval -c CONFIG [--weights MODEL] [-o KEY=VALUE]``: top-1/top-5, per-class P/R/F1,
confusion matrix (CSV + PNG) on the config's Eval data."""
from __future__ import annotations

import json

from ._common import add_parser
from .train import add_config_args


def _run(args) -> int:
    from ..engine.config import load_config
    from ..engine.metrics import per_class_report
    from ..engine.trainer import Trainer
    from ..errors import ConfigError

    cfg = load_config(args.config, args.override, strict=args.strict)
    cfg["Global"]["report"] = False
    model = None
    try:
        # the model the config stands for, in any form: --weights / Global.pretrained_model / the run
        from ..engine.infer import config_source

        source = config_source(cfg, args.weights)
        model = source.create()
        print(f"evaluating {source.weights_id} (--weights or -o Global.pretrained_model=... for other weights)")
    except ConfigError as exc:
        if args.weights or cfg["Global"].get("pretrained_model"):
            raise
        print(f"warning: {exc}: evaluating random weights")
    trainer = Trainer(cfg, quiet=args.quiet, model=model)
    trainer.eval_loader = trainer._build_loader("Eval")
    trainer.preflight("Eval")
    from ..engine.config import _get, named_items
    from ..engine.losses import CombinedLoss

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
    p = add_parser(sub, "eval", help="evaluate weights on the config's Eval data (top-k, per-class, confusion)",
                   examples=["hubcls eval -c quickstart                          # the run's best weights",
                             "hubcls eval -c quickstart --weights output/quickstart/last   # any model form",
                             "hubcls eval -c ResNet50_vd -o Global.pretrained_model=ResNet50_vd_pretrained.pdparams"])
    add_config_args(p)
    p.add_argument("--weights", help="weights to evaluate: a file, a package, a run or export directory "
                                     "(default: Global.pretrained_model, else the config's run)")
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run)
