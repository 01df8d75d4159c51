"""Distillation evidence on a task that runs anywhere: scikit-learn's digits, upscaled to 16x16.

    python -m hubcls.engine._digits_study --seeds 0 1 2 --epochs 30

A teacher (TinyNet width 32) is trained on the whole 1300-image pool with labels. Students (TinyNet
width 4, ~1.6k parameters) see only ``--labelled`` labelled images and train for the same number
of epochs, as:
  label-only      CE on the labelled images
  SSLD            JS divergence to the frozen teacher on the labelled images (no labels used)
  SSLD+CE         JS divergence + CE
  SSLD+unlabelled JS divergence on the labelled images plus, every step, a batch of the remaining
                  pool images without their labels
Test accuracy on 497 held-out images, mean ± std over seeds (seed: split, init, data order).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np


def load_digits16():
    import cv2
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.stack([cv2.resize(im.astype(np.float32) / 16.0, (16, 16), interpolation=cv2.INTER_LINEAR) for im in d.images])
    x = ((imgs - 0.5) / 0.5)[:, None].repeat(3, axis=1).astype(np.float32)
    return x, d.target.astype(np.int64)


def shift_augment(img, rng):
    # random +-1 pixel translation per batch: a mild augmentation shared by every variant
    dy, dx = rng.integers(-1, 2, size=2)
    return np.roll(img, (int(dy), int(dx)), axis=(2, 3))


def _cfg(out, epochs, lr, seed, distill=None, n_cls=10):
    from .config import load_config

    c = {"Global": {"epochs": epochs, "output_dir": out, "seed": seed, "report": False, "device": "cpu",
                    "eval_during_train": False, "save_interval": 10 ** 6},
         "Arch": {"name": "TinyNet", "class_num": n_cls},
         "Loss": {"Train": [{"CELoss": {}}]},
         "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": lr},
                       "regularizer": {"name": "L2", "coeff": 5e-4}},
         "Metric": {"Eval": [{"TopkAcc": {"topk": [1]}}]}}
    if distill:
        c["Distillation"] = dict({"teacher": {"name": "TinyNet"}}, **distill)
    return load_config(c, validate=False)


def run(seeds=(0, 1, 2), epochs=30, labelled=200, teacher_epochs=30, student_width=8, quiet=True,
        distill_weight=1.0, only=None):
    from .._paddle import import_paddle
    from ._synthetic import ArrayDataset, ArrayLoader, tiny_net
    from .distill import DistillTrainer
    from .trainer import Trainer

    paddle = import_paddle()
    x, y = load_digits16()
    rng = np.random.default_rng(1234)
    perm = rng.permutation(len(x))
    test, pool = perm[:497], perm[497:]
    test_loader = ArrayLoader(ArrayDataset(x[test], y[test]), 128, shuffle=False)
    out = tempfile.mkdtemp(prefix="digits_study_")

    def acc(trainer):
        trainer.eval_loader = test_loader
        return trainer.evaluate()[1]["top1"]

    # the teacher: labels of the whole pool
    paddle.seed(100)
    t0 = time.time()
    teacher = tiny_net(10, width=32)
    tt = Trainer(_cfg(out, teacher_epochs, 0.1, 100), model=teacher, quiet=quiet,
                 train_loader=ArrayLoader(ArrayDataset(x[pool], y[pool]), 64, seed=100, augment=shift_augment))
    tt.train()
    teacher_acc = acc(tt)
    print(f"teacher (TinyNet w32, {len(pool)} labelled images, {teacher_epochs} epochs): test top-1 {teacher_acc:.4f} "
          f"[{time.time() - t0:.0f}s]", flush=True)

    variants = {
        "label-only": None,
        "SSLD": {"loss": "JSDiv", "label_weight": 0.0, "weight": distill_weight},
        "SSLD+CE": {"loss": "JSDiv", "label_weight": 1.0, "weight": distill_weight},
        "SSLD+unlabelled": {"loss": "JSDiv", "label_weight": 0.0, "weight": distill_weight, "unlabelled": True},
        "SSLD+CE+unlabelled": {"loss": "JSDiv", "label_weight": 1.0, "weight": distill_weight, "unlabelled": True},
    }
    if only:
        variants = {k: v for k, v in variants.items() if k in only}
    results = {k: [] for k in variants}
    for seed in seeds:
        srng = np.random.default_rng(seed)
        p = srng.permutation(pool)
        lab, unl = p[:labelled], p[labelled:]
        for name, dv in variants.items():
            paddle.seed(seed)
            student = tiny_net(10, width=student_width)
            train_loader = ArrayLoader(ArrayDataset(x[lab], y[lab]), 32, seed=seed, augment=shift_augment)
            if dv is None:
                tr = Trainer(_cfg(out, epochs, 0.1, seed), model=student, train_loader=train_loader, quiet=quiet)
            else:
                dv = dict(dv)
                use_unl = dv.pop("unlabelled", False)
                unl_loader = ArrayLoader(ArrayDataset(x[unl], np.zeros(len(unl), np.int64), [str(i) for i in range(10)]),
                                         32, seed=seed + 7, augment=shift_augment) if use_unl else None
                tr = DistillTrainer(_cfg(out, epochs, 0.1, seed, dv), model=student, teacher=teacher,
                                    train_loader=train_loader, unlabeled_loader=unl_loader, quiet=quiet)
            tr.train()
            a = acc(tr)
            results[name].append(a)
            print(f"seed {seed} {name:<16} test top-1 {a:.4f}", flush=True)
    import shutil

    shutil.rmtree(out, ignore_errors=True)  # checkpoints of the study runs are not kept
    summary = {k: {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "runs": v}
               for k, v in results.items()}
    return {"teacher_top1": teacher_acc, "students": summary, "seeds": list(seeds), "epochs": epochs,
            "labelled": labelled, "unlabelled": len(pool) - labelled, "test": len(test)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--labelled", type=int, default=200)
    ap.add_argument("--teacher-epochs", type=int, default=30)
    ap.add_argument("--distill-weight", type=float, default=1.0, help="Distillation.weight of the SSLD variants")
    ap.add_argument("--only", nargs="*", default=None, help="run only these variants")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    r = run(a.seeds, a.epochs, a.labelled, a.teacher_epochs, distill_weight=a.distill_weight, only=a.only)
    print(f"\n| student (TinyNet w8), {r['labelled']} labelled images, {r['epochs']} epochs, distill weight {a.distill_weight} | test top-1 (mean ± std, {len(r['seeds'])} seeds) |")
    print("|---|---|")
    for k, v in r["students"].items():
        print(f"| {k} | {v['mean']:.4f} ± {v['std']:.4f} |")
    print(f"| (teacher, TinyNet w32, all {r['labelled'] + r['unlabelled']} labels) | {r['teacher_top1']:.4f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
