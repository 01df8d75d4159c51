"""Accuracy effect of bf16 and INT8 against fp32, measured with the accuracy gate's own figures.

For every reduced-precision candidate ``auto`` may consider (OpenVINO bf16, Paddle Inference bf16 via
oneDNN, onnxruntime INT8) and onnxruntime fp32 as the control, on the same preprocessed images:
top-1 agreement with fp32 (the dygraph model), max |dprob| (largest change of any softmax
probability), the gate's verdict (>= 99% and <= 0.02), and - where the images have labels - top-1
accuracy next to fp32's.

* ``--run DIR``: a trained quick-start run (``hubcls quickstart --output DIR``): its validation set
  (labels known); INT8 is calibrated on 32 of its training images.
* ``--models A,B``: zoo models on real photos (scikit-image / scikit-learn sample photos, random crops
  and flips: ``hubcls.deploy.bench.sample_images``), weights re-drawn so logits spread with std ~1
  (tests/_deploy_helpers.informative_init; official weights cannot be downloaded here). INT8 is
  calibrated on other crops of the photos.

    python benchmarks/precision_study.py --run out/quickstart --models ResNet50_vd,MobileNetV3_large_x1_0 \\
        [--photos 64] [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = (("onnxruntime", "fp32"), ("openvino", "bf16"), ("inference", "bf16"), ("int8", "int8"))


def study(model, name, data, calib, labels=None, threads=None, log=print):
    """Rows of figures for each candidate on ``data`` (float32 NCHW) against the dygraph model."""
    from hubcls.deploy.backends import DygraphBackend, available_backends, cpu_bf16, load_backend
    from hubcls.deploy.gate import accuracy_gate, logits_in_chunks

    size = tuple(data.shape[1:])
    ref = logits_in_chunks(DygraphBackend(model, threads=threads), data)
    avail = available_backends("cpu")
    rows = []
    if labels is not None:
        rows.append({"model": name, "candidate": "dygraph/fp32", "images": len(data),
                     "accuracy": float(np.mean(ref.argmax(1) == labels))})
    for backend, prec in CANDIDATES:
        label = f"{backend}/{prec}"
        if not avail[backend][0]:
            log(f"  {label}: skipped ({avail[backend][1]})")
            continue
        if prec == "bf16" and not cpu_bf16()[0]:
            log(f"  {label}: skipped ({cpu_bf16()[1]})")
            continue
        be = load_backend(backend, model=model, name=name, input_size=size, threads=threads, warmup=(),
                          precision=None if prec == "int8" else prec,
                          calib_data=(lambda: calib) if backend == "int8" else None)
        out = logits_in_chunks(be, data)
        g = accuracy_gate(ref, out, label, f"{len(data)} images")
        row = {"model": name, "candidate": label, "images": g.images, "top1_agreement": g.top1_agreement,
               "max_abs_dprob": g.max_abs_dprob, "gate": "passed" if g.passed else "failed",
               "max_abs_dlogit": float(np.abs(out - ref).max())}
        if labels is not None:
            row["accuracy"] = float(np.mean(out.argmax(1) == labels))
        rows.append(row)
        log("  " + g.line() + (f"; accuracy {100 * row['accuracy']:.2f}%" if labels is not None else ""))
    return rows


def quickstart_rows(run_dir, threads):
    from hubcls.data import read_image
    from hubcls.deploy.pipeline import build_pipeline

    run_dir = Path(run_dir)
    pipe = build_pipeline(str(run_dir), backend="dygraph")
    data_dir = next(p.parent for p in run_dir.rglob("val_list.txt"))

    def load(list_name, limit=None):
        lines = [ln.split() for ln in (data_dir / list_name).read_text().splitlines() if ln.strip()]
        lines = lines[:limit] if limit else lines
        imgs = [read_image(str(data_dir / p)) for p, _ in lines]
        return np.asarray(pipe.transform.batch(imgs), np.float32), np.array([int(c) for _, c in lines])

    x, y = load("val_list.txt")
    rng = np.random.default_rng(0)
    tx, _ = load("train_list.txt")
    calib = tx[rng.permutation(len(tx))[:32]]
    print(f"quick-start run {run_dir}: {pipe.name}, {len(x)} validation images, input {tuple(x.shape[1:])}")
    return study(pipe.model, f"quickstart-{pipe.name}", x, calib, labels=y, threads=threads)


def zoo_rows(name, n, threads):
    import hubcls
    from hubcls.data import eval_transforms_for
    from hubcls.deploy.bench import sample_images

    sys.path.insert(0, str(REPO / "tests"))
    from _deploy_helpers import informative_init

    model = hubcls.create_model(name)
    model.eval()
    tf = eval_transforms_for(model.pretrained_cfg)
    x = np.asarray(tf.batch(sample_images(n, seed=0)), np.float32)
    calib = np.asarray(tf.batch(sample_images(32, seed=11)), np.float32)
    informative_init(model, seed=0, probe=x[:8])
    print(f"{name}: {n} real photos (crops/flips of the scikit-image/scikit-learn samples), informative weights")
    return study(model, name, x, calib, threads=threads)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained quick-start run directory")
    ap.add_argument("--models", default="", help="zoo models to check on real photos, comma-separated")
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    os.environ.setdefault("HUBCLS_HOME", tempfile.mkdtemp(prefix="precision_study_"))
    from hubcls.deploy.backends import cpu_bf16

    print(f"bf16 on this CPU: {cpu_bf16()[1]}")
    rows = []
    if args.run:
        rows += quickstart_rows(args.run, args.threads)
    for name in filter(None, args.models.split(",")):
        rows += zoo_rows(name, args.photos, args.threads)
    print(f"\n{'model':<34} {'candidate':<18} {'images':>6} {'top-1 agr':>9} {'max|dprob|':>10} {'gate':>6} {'accuracy':>8}")
    for r in rows:
        agr = f"{100 * r['top1_agreement']:.1f}%" if "top1_agreement" in r else "-"
        dp = f"{r['max_abs_dprob']:.4f}" if "max_abs_dprob" in r else "-"
        acc = f"{100 * r['accuracy']:.2f}%" if "accuracy" in r else "-"
        print(f"{r['model']:<34} {r['candidate']:<18} {r['images']:>6} {agr:>9} {dp:>10} {r.get('gate', '-'):>6} {acc:>8}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
