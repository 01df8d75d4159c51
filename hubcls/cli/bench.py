"""``hubcls bench -m NAME [--batch 1,8] [--backend dygraph,inference,onnxruntime,int8]``: backends side by side."""
from __future__ import annotations

import json


def _csv(text, cast=str):
    return [cast(x.strip()) for x in str(text).split(",") if x.strip()]


def _run(args) -> int:
    from ..deploy.bench import format_table, run_bench
    from ..errors import ConfigError

    batches = _csv(args.batch, int)
    if not batches or min(batches) < 1:
        raise ConfigError(f"--batch must be positive integers, got {args.batch!r}")
    if args.warmup < 0 or args.iters < 1:
        raise ConfigError("--warmup must be >= 0 and --iters >= 1")
    weights = args.weights if args.weights else (True if args.pretrained else None)
    result = run_bench(args.model, batches=batches, backends=_csv(args.backend), weights=weights, threads=args.threads,
                       warmup=args.warmup, iters=args.iters, calib_images=args.calib_num, device=args.device)
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def register(sub):
    from ._common import MODEL_HELP, add_parser

    p = add_parser(sub, "bench", help="latency p50/p90 and throughput of each inference backend, side by side",
                   examples=["hubcls bench -m ResNet50_vd --batch 1,8 --threads 2",
                             "hubcls bench -m ResNet50_vd --backend onnxruntime,openvino:bf16,inference:bf16,int8 --json b.json",
                             "hubcls bench -m output/quickstart --backend auto      # your trained run"])
    p.add_argument("-m", "--model", required=True, help=MODEL_HELP)
    p.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--backend", default="dygraph,inference,onnxruntime",
                   help="comma-separated: dygraph, inference, onnxruntime, openvino, int8, auto; NAME:PRECISION for "
                        "bf16 (openvino:bf16, inference:bf16) (default: the first three)")
    p.add_argument("--weights", help="weights file; default: untrained weights (speed does not depend on them)")
    p.add_argument("--pretrained", action="store_true", help="use the official weights (download/cache)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per backend (default: HUBCLS_NUM_THREADS or all CPUs)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs per backend and batch size (default 3)")
    p.add_argument("--iters", type=int, default=10, help="timed runs per backend and batch size (default 10)")
    p.add_argument("--calib-num", type=int, default=32, help="calibration images for int8 (default 32)")
    p.add_argument("--device", default=None, help="cpu, gpu, gpu:N (default: GPU when Paddle sees one)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=_run)
