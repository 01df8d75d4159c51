"""INT8 post-training quantisation on a real task: accuracy change and speed-up (docs/deployment.md).

Task: scikit-learn's handwritten digits (1797 8x8 images, 10 classes) upscaled to 64x64 RGB, split
70/30 (stratified, fixed seed). A zoo model is fine-tuned from scratch on the training split with plain
dygraph code, then exported with hubcls.deploy (Paddle program -> ONNX) and quantised with
``quantize_onnx_int8`` calibrated on N training images. Reported: test accuracy of dygraph fp32,
onnxruntime fp32 and onnxruntime int8, int8/fp32 top-1 agreement, and latency at batch 1 and 8.

    OMP_NUM_THREADS=1 python benchmarks/int8_study.py --model ResNet18 --epochs 4 --calib 64 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load_digits_rgb(size: int):
    import cv2
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    imgs = (d.images / 16.0 * 255.0).clip(0, 255).astype(np.uint8)
    imgs = np.stack([cv2.resize(i, (size, size), interpolation=cv2.INTER_LINEAR) for i in imgs])
    imgs = np.repeat(imgs[..., None], 3, axis=3)  # HWC RGB
    return train_test_split(imgs, d.target.astype(np.int64), test_size=0.3, random_state=0, stratify=d.target)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ResNet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--calib", type=int, default=64, help="calibration images (from the training split)")
    ap.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import paddle

    import hubcls
    from hubcls.data import eval_transforms_for
    from hubcls.deploy import export_model, quantize_onnx_int8
    from hubcls.deploy.backends import OnnxRuntimeBackend
    from hubcls.deploy.bench import time_backend

    paddle.seed(0)
    np.random.seed(0)
    xtr, xte, ytr, yte = load_digits_rgb(args.size)
    model = hubcls.create_model(args.model, num_classes=10)
    cfg = model.pretrained_cfg.with_(input_size=args.size, resize_short=args.size, num_classes=10, label_list=None)
    tf = eval_transforms_for(cfg)
    prep = lambda imgs: np.stack([np.asarray(tf(i), np.float32) for i in imgs])  # noqa: E731
    ptr, pte = prep(xtr), prep(xte)

    opt = paddle.optimizer.Adam(learning_rate=1e-3, parameters=model.parameters())
    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        order = np.random.permutation(len(ptr))
        for s in range(0, len(order), 32):
            idx = order[s:s + 32]
            loss = paddle.nn.functional.cross_entropy(model(paddle.to_tensor(ptr[idx])), paddle.to_tensor(ytr[idx]))
            loss.backward()
            opt.step()
            opt.clear_grad()
        print(f"epoch {ep + 1}/{args.epochs} loss {float(loss):.4f} ({time.time() - t0:.0f}s)", file=sys.stderr)
    model.eval()
    with paddle.no_grad():
        ref = np.concatenate([model(paddle.to_tensor(pte[s:s + 64])).numpy() for s in range(0, len(pte), 64)])

    out = Path(tempfile.mkdtemp(prefix="int8_study_"))
    calib = ptr[np.random.default_rng(1).permutation(len(ptr))[:args.calib]]
    export_model(model, out, cfg=cfg, onnx=True, int8_calib=None)
    t = time.time()
    quantize_onnx_int8(out / "model.onnx", out / "model_int8.onnx", calib, method=args.method)
    quant_s = time.time() - t
    fp32 = OnnxRuntimeBackend(out / "model.onnx", threads=args.threads)
    int8 = OnnxRuntimeBackend(out / "model_int8.onnx", threads=args.threads, precision="int8")
    lf = np.concatenate([fp32(pte[s:s + 64]) for s in range(0, len(pte), 64)])
    lq = np.concatenate([int8(pte[s:s + 64]) for s in range(0, len(pte), 64)])
    acc = lambda logits: float(np.mean(logits.argmax(1) == yte))  # noqa: E731
    res = {
        "model": args.model, "task": f"sklearn digits {args.size}x{args.size} RGB, {len(ytr)} train / {len(yte)} test",
        "epochs": args.epochs, "calibration_images": args.calib, "method": args.method, "threads": args.threads,
        "quantize_s": quant_s,
        "acc_dygraph_fp32": acc(ref), "acc_onnxruntime_fp32": acc(lf), "acc_int8": acc(lq),
        "int8_top1_agreement_vs_fp32": float(np.mean(lq.argmax(1) == lf.argmax(1))),
        "max_abs_logit_fp32_vs_dygraph": float(np.abs(lf - ref).max()),
        "size_mb_fp32": os.path.getsize(out / "model.onnx") / 2**20,
        "size_mb_int8": os.path.getsize(out / "model_int8.onnx") / 2**20,
        "speed": {},
    }
    for n in (1, 8):
        b = np.ascontiguousarray(pte[:n])
        f, q = time_backend(fp32, b, 3, args.iters), time_backend(int8, b, 3, args.iters)
        res["speed"][f"batch{n}"] = {"fp32_p50_ms": f["p50_ms"], "int8_p50_ms": q["p50_ms"],
                                     "speedup": f["p50_ms"] / q["p50_ms"]}
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
