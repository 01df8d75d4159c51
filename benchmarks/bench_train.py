"""`hubcls train` vs PaddleClas 2.6's trainer (ppcls.engine.engine.Engine) on the same data, model,
batch, transforms and threads: training images/s and peak RSS, side by side in one run.

PaddleClas's engine is not in the `paddleclas` wheel (it ships only ppcls.arch/utils), so point
--ppcls-root at a PaddleClas source tree (release 2.6 / develop: the folder that contains ppcls/).
Shims needed under Paddle 3.3.1 (applied in the PaddleClas child only): `visualdl` (logging, unused)
and `easydict` (a dict with attribute access) are stubbed when not installed.

    python benchmarks/bench_train.py --ppcls-root /path/to/PaddleClas --threads 2 --epochs 3

Each trainer runs in its own child process (fresh interpreter, so peak RSS is its own, read with
wait4); images/s counts the epochs after the first (warm-up excluded), in wall-clock time and per
CPU-second of the process (the latter is not skewed by other jobs sharing the cores). The order
alternates over --repeats and the median is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

TRANSFORMS = lambda size: [  # noqa: E731 - the same op list for both trainers (PaddleClas spelling)
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"RandCropImage": {"size": size}},
    {"RandFlipImage": {"flip_code": 1}},
    {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "order": ""}},
]  # no ToCHWImage: both datasets transpose HWC -> CHW themselves


def common_config(a, data, out):
    return {
        "Global": {"checkpoints": None, "pretrained_model": None, "output_dir": str(out), "device": "cpu",
                   "save_interval": 1000, "eval_during_train": False, "eval_interval": 1000, "epochs": a.epochs,
                   "print_batch_step": 1000, "use_visualdl": False, "image_shape": [3, a.size, a.size],
                   "save_inference_dir": str(out / "inference"), "seed": 0, "report": False},
        "Arch": {"name": a.model, "class_num": a.classes},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.05},
                      "regularizer": {"name": "L2", "coeff": 4e-5}},
        "DataLoader": {
            "Train": {"dataset": {"name": "ImageNetDataset", "image_root": data["root"], "cls_label_path": data["train_list"],
                                  "transform_ops": TRANSFORMS(a.size)},
                      "sampler": {"name": "DistributedBatchSampler", "batch_size": a.batch, "drop_last": True, "shuffle": True},
                      "loader": {"num_workers": a.workers, "use_shared_memory": False}},
        },
        "Metric": {"Train": [{"TopkAcc": {"topk": [1]}}]},
    }


def child_hubcls(a, cfg):
    from hubcls.engine.config import load_config
    from hubcls.engine.trainer import Trainer

    t = Trainer(load_config(cfg), quiet=True)
    times = []
    orig = t.train_epoch

    def timed(epoch):
        s, c = time.perf_counter(), time.process_time()
        r = orig(epoch)
        times.append((time.perf_counter() - s, time.process_time() - c))
        return r

    t.train_epoch = timed
    t.train()
    return times, len(t.train_loader) * a.batch


def child_ppcls(a, cfg):
    sys.path.insert(0, a.ppcls_root)
    try:
        import visualdl  # noqa: F401
    except ImportError:
        sys.modules["visualdl"] = types.SimpleNamespace(LogWriter=None)
    try:
        import easydict  # noqa: F401
    except ImportError:
        class EasyDict(dict):
            __getattr__ = dict.__getitem__

            def __setattr__(self, k, v):
                self[k] = v

        sys.modules["easydict"] = types.SimpleNamespace(EasyDict=EasyDict)
    from ppcls.engine.engine import Engine
    from ppcls.utils.config import AttrDict, create_attr_dict

    cfg = dict(cfg)
    cfg["Global"] = {k: v for k, v in cfg["Global"].items() if k not in ("seed", "report")}
    cfg["profiler_options"] = None  # tools/train.py sets it from the command line
    cfg = AttrDict(cfg)
    create_attr_dict(cfg)
    engine = Engine(cfg, mode="train")
    times = []
    orig = engine.train_epoch_func

    def timed(eng, epoch_id, print_batch_step):
        s, c = time.perf_counter(), time.process_time()
        r = orig(eng, epoch_id, print_batch_step)
        times.append((time.perf_counter() - s, time.process_time() - c))
        return r

    engine.train_epoch_func = timed
    engine.train()
    return times, len(engine.train_dataloader) * a.batch


def run_child(a, which, data, out):
    cmd = [sys.executable, __file__, "--child", which, "--data-json", json.dumps(data), "--out", str(out)] + a.passthrough
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads), CPU_NUM="1")
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = p.stdout.read(), p.stderr.read()
    if p.returncode != 0:
        raise SystemExit(f"{which} child failed ({p.returncode}):\n{stderr[-3000:]}")
    line = [l for l in stdout.splitlines() if l.startswith("RESULT ")][-1]
    res = json.loads(line[7:])
    res["peak_rss_mb"] = ru.ru_maxrss / 1024  # Linux: KiB
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ppcls-root", required=False, help="folder containing PaddleClas's ppcls/ package")
    ap.add_argument("--model", default="MobileNetV3_small_x0_35")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--per-class", type=int, default=48)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--child", choices=["hubcls", "ppcls"])
    ap.add_argument("--data-json")
    ap.add_argument("--out")
    a = ap.parse_args()
    a.passthrough = [f"--{k.replace('_', '-')}={getattr(a, k)}" for k in
                     ("model", "size", "batch", "epochs", "classes", "workers", "threads")] + \
                    ([f"--ppcls-root={a.ppcls_root}"] if a.ppcls_root else [])
    if a.child:
        data = json.loads(a.data_json)
        cfg = common_config(a, data, Path(a.out))
        times, n = (child_hubcls if a.child == "hubcls" else child_ppcls)(a, cfg)
        steady = times[1:] or times
        print("RESULT " + json.dumps({"epoch_times": [w for w, _ in times], "images_per_epoch": n,
                                      "images_per_s": n * len(steady) / sum(w for w, _ in steady),
                                      "images_per_cpu_s": n * len(steady) / sum(c for _, c in steady)}), flush=True)
        return
    if not a.ppcls_root or not (Path(a.ppcls_root) / "ppcls" / "engine" / "engine.py").is_file():
        raise SystemExit("--ppcls-root must point at a PaddleClas source tree (the folder containing ppcls/engine/engine.py)")
    from hubcls.data import make_demo_dataset

    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        tmp = Path(tmp)
        data = make_demo_dataset(tmp / "data", num_classes=a.classes, train_per_class=a.per_class, val_per_class=0)
        results = {"hubcls": [], "ppcls": []}
        for r in range(a.repeats):
            order = ["hubcls", "ppcls"] if r % 2 == 0 else ["ppcls", "hubcls"]
            for which in order:
                res = run_child(a, which, data, tmp / f"{which}{r}")
                results[which].append(res)
                print(f"  {which:<7} run {r}: {res['images_per_s']:.1f} img/s, {res['images_per_cpu_s']:.1f} img/CPU-s, "
                      f"peak RSS {res['peak_rss_mb']:.0f} MB, "
                      f"epoch times {', '.join(f'{t:.1f}' for t in res['epoch_times'])} s", flush=True)
    med = {k: (statistics.median(x["images_per_s"] for x in v), statistics.median(x["peak_rss_mb"] for x in v),
               statistics.median(x["images_per_cpu_s"] for x in v)) for k, v in results.items()}
    print(f"\n{a.model} {a.size}px, batch {a.batch}, {a.epochs} epochs x {a.classes * a.per_class} images, "
          f"{a.threads} threads, {a.workers} loader workers, median of {a.repeats}")
    print(f"{'':<8}{'img/s':>10}{'img/CPU-s':>12}{'peak RSS MB':>14}")
    for k, (ips, rss, ipc) in med.items():
        print(f"{k:<8}{ips:>10.1f}{ipc:>12.1f}{rss:>14.0f}")
    print(f"speed ratio hubcls/ppcls: {med['hubcls'][0] / med['ppcls'][0]:.2f}x wall, "
          f"{med['hubcls'][2] / med['ppcls'][2]:.2f}x per CPU-second (robust to other load on the machine)   "
          f"memory ratio hubcls/ppcls: {med['hubcls'][1] / med['ppcls'][1]:.2f}x")


if __name__ == "__main__":
    main()
