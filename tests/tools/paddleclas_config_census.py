"""How many of PaddleClas's own configs hubcls accepts and runs (the counts in docs/training.md).

For each recorded config (tests/data/paddleclas_configs.json.gz: every release/2.0 config and the
2.x ImageNet configs of architectures hubcls has), in its own process:

  load   hubcls.engine.load_config: schema detection/conversion, validation, model kwargs
  build  the model of Arch (random init: no weights can be downloaded here)
  run    `Trainer.train()` for one epoch on a generated stand-in dataset in PaddleClas's list layout
         (2 train images, batch 2, so one optimizer step; 2 eval images), with the config's own
         transforms, loss, optimizer, LR schedule, metrics and EMA

The config is used as it is except: data paths (the stand-in), batch size 2, 1 epoch, CPU, no
loader workers, no report, no checkpoint files, and weight files set to none (they are not on this
machine). Models with
more than --max-params parameters are built but not trained (memory on a shared 24 GiB machine).

    python tests/tools/paddleclas_config_census.py --set v2x --out census_v2x.json
    python tests/tools/paddleclas_config_census.py --set release20 --out census_release20.json
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "paddleclas_configs.json.gz"


def _standin(root: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 2), ("val", 2)):
        lines = []
        for i in range(n):
            name = f"images/{split}_{i}.jpg"
            Image.fromarray((rng.random((320, 300, 3)) * 255).astype(np.uint8)).save(root / name)
            lines.append(f"{name} {i % 2}")
        (root / f"{split}_list.txt").write_text("\n".join(lines) + "\n")


def _overrides(raw: dict, data: Path, out: Path) -> list:
    from hubcls.engine.config_legacy import is_release20

    if is_release20(raw):
        ov = [f"TRAIN.data_dir={data}", f"TRAIN.file_list={data / 'train_list.txt'}", "TRAIN.batch_size=2",
              "TRAIN.num_workers=0", f"VALID.data_dir={data}", f"VALID.file_list={data / 'val_list.txt'}",
              "VALID.batch_size=2", "VALID.num_workers=0", "epochs=1", "use_gpu=False", "pretrained_model=",
              "checkpoints=", f"model_save_dir={out}"]
        if "TRAIN" not in raw:
            ov = [o for o in ov if not o.startswith(("TRAIN.", "epochs"))]
        ov += ["Global.report=False", "Global.print_batch_step=1"]
        if "_distill_" in str((raw.get("ARCHITECTURE") or {}).get("name", "")):
            ov += ["Distillation.teacher.checkpoint=null"]
        return ov
    ov = ["Global.epochs=1", "Global.device=cpu", f"Global.output_dir={out}", "Global.report=False",
          "Global.pretrained_model=null", "Global.checkpoints=null", "Global.print_batch_step=1",
          "Global.use_visualdl=False", "Arch.pretrained=False"]
    for mode, lst in (("Train", "train_list.txt"), ("Eval", "val_list.txt")):
        if mode in (raw.get("DataLoader") or {}):
            ov += [f"DataLoader.{mode}.dataset.image_root={data}", f"DataLoader.{mode}.dataset.cls_label_path={data / lst}",
                   f"DataLoader.{mode}.sampler.batch_size=2", f"DataLoader.{mode}.loader.num_workers=0"]
    return ov


def run_one(kind: str, path: str, max_params: float, level: str = "run") -> dict:
    """load -> build -> run one config; returns the furthest stage reached and the first error."""
    import warnings

    os.environ.setdefault("HUBCLS_OFFLINE", "1")
    raw = json.load(gzip.open(DATA, "rt", encoding="utf-8"))[kind]["configs"][path]
    res = {"config": path, "stage": "none"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _standin(tmp / "data")
        try:
            from hubcls.engine.config import load_config

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cfg = load_config(raw, _overrides(raw, tmp / "data", tmp / "out"))
            res["warnings"] = sorted({str(w.message)[:200] for w in caught if "unknown key" in str(w.message)})
            res["stage"] = "load"
            res["arch"] = cfg["Arch"]["name"]
            from hubcls.engine.trainer import Trainer, build_model

            model = build_model(cfg, log=lambda *_: None)
            n_params = sum(int(p.size) for p in model.parameters())
            res["params_m"] = round(n_params / 1e6, 1)
            res["stage"] = "build"
            if level == "build":
                return res
            if n_params > max_params * 1e6:
                res["skipped"] = f"{n_params / 1e6:.0f}M parameters > --max-params {max_params:.0f}M"
                return res
            if not cfg.get("DataLoader", {}).get("Train"):
                res["skipped"] = "no TRAIN section (an eval config)"
                return res
            t0 = time.time()
            trainer_cls = Trainer
            if cfg.get("Distillation"):
                from hubcls.engine.distill import DistillTrainer as trainer_cls
            # the census asks whether the config trains and evaluates; checkpoint writing (hundreds of MB
            # for the big models) is tested on its own in tests/test_train_durable.py
            trainer_cls.save = lambda self, *a, **k: None
            t = trainer_cls(cfg, model=model if not cfg.get("Distillation") else None, quiet=True)
            out = t.train()
            hist = out["history"][-1]
            res["stage"] = "run"
            res["run_s"] = round(time.time() - t0, 1)
            res["train_loss"] = hist.get("train_loss")
            res["eval_top1"] = hist.get("eval_top1")
        except Exception as exc:  # noqa: BLE001 - the census records every failure
            res["error"] = f"{type(exc).__name__}: {exc}"[:400]
            res["trace"] = traceback.format_exc()[-1500:]
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=["v2x", "release20"], default="v2x")
    ap.add_argument("--only", default="", help="substring filter on config paths")
    ap.add_argument("--start", type=int, default=1, help="begin at the N-th config (1-based; to split a run)")
    ap.add_argument("--max-params", type=float, default=300.0, help="train only models up to this many M params")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--level", choices=["build", "run"], default="run", help="stop after building the model, or train")
    ap.add_argument("--out", help="write the per-config results as JSON")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.set, args.one, args.max_params, args.level)))
        return 0
    configs = json.load(gzip.open(DATA, "rt", encoding="utf-8"))[args.set]
    paths = [p for p in sorted(configs["configs"]) if args.only in p][args.start - 1:]
    print(f"{args.set}: PaddleClas {configs['ref']} @ {configs['commit'][:10]}, {len(paths)} configs", flush=True)
    results = []
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), HUBCLS_OFFLINE="1")
    for i, path in enumerate(paths, 1):
        cmd = [sys.executable, __file__, "--set", args.set, "--one", path, "--max-params", str(args.max_params),
               "--level", args.level]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
            line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            res = json.loads(line[-1][7:]) if line else {"config": path, "stage": "none",
                                                           "error": f"exit {r.returncode}: {r.stderr[-300:]}"}
        except subprocess.TimeoutExpired:
            res = {"config": path, "stage": "none", "error": f"timeout after {args.timeout}s"}
        results.append(res)
        status = res["stage"] + (f" (skipped: {res['skipped']})" if res.get("skipped") else "") + \
            (f" ERROR {res['error'][:160]}" if res.get("error") else "")
        print(f"[{i}/{len(paths)}] {path}: {status}", flush=True)
    n = len(results)
    count = {s: sum(1 for r in results if r["stage"] in stages)
             for s, stages in (("load", ("load", "build", "run")), ("build", ("build", "run")), ("run", ("run",)))}
    skipped = [r for r in results if r.get("skipped")]
    warned = [r for r in results if r.get("warnings")]
    print(f"\n{args.set}: {n} configs; loaded {count['load']}, built {count['build']}, ran {count['run']} "
          f"(not run by choice: {len(skipped)}; with unknown-key warnings: {len(warned)})")
    for r in results:
        if r.get("error"):
            print(f"  FAILED at {r['stage']}: {r['config']}: {r['error'][:200]}")
    for r in skipped:
        print(f"  not run: {r['config']}: {r['skipped']}")
    if args.out:
        Path(args.out).write_text(json.dumps({"set": args.set, "ref": configs["ref"], "commit": configs["commit"],
                                              "counts": count, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
