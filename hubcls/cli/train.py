"""``hubcls train -c CONFIG [-o Section.key=value ...] [--resume] [--nproc_per_node N [--ips ...]]``."""
from __future__ import annotations

import sys


def add_config_args(p):
    p.add_argument("-c", "--config", required=True, help="YAML config: a path or a shipped name (quickstart, ResNet50_vd, ...)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. -o Global.epochs=10 -o DataLoader.Train.sampler.batch_size=32 "
                        "(values typed by YAML; list items by index: ...transform_ops[1].RandCropImage.size=64); "
                        "release/2.0 configs take their own keys too: -o TRAIN.batch_size=32 -o epochs=10")
    p.add_argument("--strict", action="store_true",
                   help="unknown config keys are errors (default: a warning naming the closest known key)")


def _run(args) -> int:
    from ..engine import launch as L

    if (args.nproc_per_node and args.nproc_per_node > 1 or args.ips) and not L.in_worker():
        argv = sys.argv[1:] if getattr(args, "_argv", None) is None else args._argv
        return L.launch(argv, args.nproc_per_node or 1, ips=args.ips, master=args.master, nnodes=args.nnodes,
                        rank=args.rank, devices=args.devices, log_dir=args.launch_log_dir)
    from ..engine.config import load_config
    from ..engine.trainer import Trainer

    cfg = load_config(args.config, args.override, strict=args.strict)
    if cfg.get("Distillation"):
        from ..engine.distill import DistillTrainer as Trainer  # noqa: F811 - same interface
    elif getattr(args, "require_distillation", False):
        from ..errors import ConfigError

        raise ConfigError(f"{args.config}: no Distillation section (teacher, loss); see docs/distillation.md")
    trainer = Trainer(cfg, quiet=args.quiet)
    result = trainer.train(resume=bool(args.resume), resume_from=args.resume if isinstance(args.resume, str) else None,
                           overwrite=bool(getattr(args, "overwrite", False)))
    best = result["best"]
    if trainer.rank == 0:
        if best.get("metric"):
            print(f"best {best['metric']}={best['value']:.4f} (epoch {best['epoch']}); checkpoints in {result['output_dir']}")
        else:
            print(f"done; checkpoints in {result['output_dir']}")
    return 0


TRAIN_EXAMPLES = [
    "hubcls train -c quickstart -o Global.epochs=2                # the quick start's recipe, shorter",
    "hubcls train -c ResNet50_vd -o Arch.pretrained=True -o DataLoader.Train.dataset.image_root=./data",
    "hubcls train -c my.yaml --resume                             # continue from output/<Arch>/last.pdckpt",
]


def register(sub, name="train", help="train a model from a PaddleClas-style YAML config", examples=None):
    from ._common import add_parser

    p = add_parser(sub, name, help=help, examples=examples or TRAIN_EXAMPLES)
    add_config_args(p)
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CKPT",
                   help="continue from the run's last checkpoint (or the given .pdckpt / run directory)")
    p.add_argument("--overwrite", action="store_true",
                   help="the run directory already holds a run: delete its checkpoints, packages and logs and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    g = p.add_argument_group("multi-process / multi-machine (paddle.distributed.launch)")
    g.add_argument("--nproc_per_node", type=int, default=None, help="worker processes on this machine (GPUs, or CPU workers with gloo)")
    g.add_argument("--ips", default=None, help="comma-separated machine IPs for multi-machine training (run the same command on each)")
    g.add_argument("--master", default=None, help="rendezvous ip:port (alternative to --ips)")
    g.add_argument("--nnodes", default=None, help="number of machines (with --master)")
    g.add_argument("--rank", type=int, default=None, help="this machine's rank (with --master)")
    g.add_argument("--devices", default=None, help="GPU ids to use, e.g. 0,1")
    g.add_argument("--launch_log_dir", default="./output/launch_log", help="where worker logs go")
    p.set_defaults(func=_run)
