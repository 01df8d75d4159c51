"""What DCT-scaled JPEG decoding changes: pixels and the predictions of a trained model.

hubcls decodes a JPEG only where the crop needs it and, by default, lets libjpeg-turbo's inverse DCT
scale it by 1/2, 1/4 or 1/8 while the scaled crop still covers the output (``scaled_decode``). The
crop-aware part alone gives exactly full decode's pixels; the DCT scaling is a different low-pass
filter than the resampler's, so pixels change. This study runs one trained model's eval pipeline
over the same JPEGs three ways and compares:

  * ``exact``   ``scaled_decode: false`` (crop-aware decode, full-decode pixels — what PaddleClas's
                cv2 pipeline computes, up to the fused kernel's rounding);
  * ``scaled``  the default (DCT scaling where it applies);
  * ``eager``   HUBCLS_JPEG_DECODER=0 (decode whole images with OpenCV, then the kernel) — a check:
                must equal ``exact`` bit for bit.

It reports, per image set: the share of images decoded DCT-scaled, the model input difference
(max / mean in 0..255 pixel units), top-1 accuracy of each way, top-1 agreement and the max / mean
absolute difference of the softmax probabilities. Image sets: the demo validation images as they
are (small: few are large enough to be scaled), and the same images upscaled (bicubic) by each
``--upscale`` factor and re-encoded at quality 90 — photos larger than the model's input, the case
where DCT scaling kicks in (and where full decode + cv2's bilinear resize aliases).

    hubcls quickstart --no-pretrained                     # trains the model (~3-7 min on 2 cores)
    python benchmarks/scaled_decode_study.py --run output/quickstart --val-per-class 100

The model and its eval preprocessing are the quick-start run's (MobileNetV3_small_x0_35, 64x64
input, resize_short 73 + centre crop 64). Validation images are freshly rendered demo images (a
seed the training never saw).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def load_run(run: Path):
    import yaml

    from hubcls.models import create_model

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    weights = run / "best_model.pdparams"
    model = create_model(cfg["Arch"]["name"], pretrained=str(weights))
    model.eval()
    ops = cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"]
    return model, ops


def val_set(root: Path, per_class: int, seed: int):
    from hubcls.data import make_demo_dataset

    paths = make_demo_dataset(root, num_classes=6, train_per_class=1, val_per_class=per_class, seed=seed)
    items = [line.rsplit(" ", 1) for line in Path(paths["val_list"]).read_text().split("\n") if line]
    return [str(root / rel) for rel, _ in items], np.array([int(c) for _, c in items])


def upscaled(files, factor: int, out_dir: Path):
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    res = []
    for i, f in enumerate(files):
        img = cv2.imread(f, cv2.IMREAD_COLOR)
        big = cv2.resize(img, (img.shape[1] * factor, img.shape[0] * factor), interpolation=cv2.INTER_CUBIC)
        p = out_dir / f"{i:05d}.jpg"
        cv2.imwrite(str(p), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        res.append(str(p))
    return res


def run_way(ops, files, *, scaled: bool, eager: bool):
    """-> (model inputs (N, 3, H, W), share of images decoded DCT-scaled)"""
    from hubcls.data.rng import sample_rng
    from hubcls.data.transforms import build_transforms
    from hubcls.ops import jpeg as J

    ops = [dict(o) if isinstance(o, dict) else o for o in ops]
    (name, params), = ops[0].items()
    assert name == "DecodeImage"
    ops[0] = {"DecodeImage": dict(params or {}, scaled_decode=scaled)}
    pipe = build_transforms(ops, num_threads=1)
    counted = []
    real = J.jpeg_decode_resize

    def counting(*a, **kw):  # record the scale each image was decoded at
        out, rep = real(*a, **kw)
        counted.extend(int(d) for d in rep.scale_denom)
        return out, rep

    old = os.environ.get(J.ENV_DISABLE)
    if eager:
        os.environ[J.ENV_DISABLE] = "0"
    J.jpeg_decode_resize = counting
    try:
        xs = []
        for k in range(0, len(files), 64):
            chunk = files[k:k + 64]
            x, keep = pipe.run_batch(chunk, [sample_rng(0, 0, k + i) for i in range(len(chunk))])
            assert len(keep) == len(chunk)
            xs.append(np.array(x))
    finally:
        J.jpeg_decode_resize = real
        if eager:
            if old is None:
                os.environ.pop(J.ENV_DISABLE, None)
            else:
                os.environ[J.ENV_DISABLE] = old
    share = float(np.mean(np.asarray(counted) > 1)) if counted else 0.0
    return np.concatenate(xs), share


def predict(model, x):
    import paddle

    with paddle.no_grad():
        logits = model(paddle.to_tensor(x)).numpy()
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="output/quickstart", help="the quick-start run directory")
    ap.add_argument("--val-per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234, help="seed of the freshly rendered validation images")
    ap.add_argument("--upscale", type=int, nargs="*", default=[4, 8])
    ap.add_argument("--work", default=None, help="folder for the generated images (default: a temp dir)")
    args = ap.parse_args(argv)

    from hubcls.ops import jpeg as J

    if not J.jpeg_decoder_available():
        raise SystemExit("this hubcls core has no libjpeg-turbo decoder: nothing to compare")
    model, ops = load_run(Path(args.run))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="hubcls_scaled_study_"))
    files, labels = val_set(work / "val", args.val_per_class, args.seed)
    sets = [("demo val (112-176 px)", files)]
    for f in args.upscale:
        sets.append((f"demo val x{f} ({112 * f}-{176 * f} px)", upscaled(files, f, work / f"x{f}")))
    print(f"model: {args.run} ({len(labels)} validation images, {len(set(labels.tolist()))} classes); "
          f"eval ops: {[next(iter(o)) for o in ops]}")
    print(f"{'image set':<28}{'scaled':>7}{'px max':>8}{'px mean':>9}{'acc exact':>10}{'acc scaled':>11}"
          f"{'agree':>7}{'|dp| max':>9}{'|dp| mean':>10}")
    for title, fs in sets:
        x_exact, _ = run_way(ops, fs, scaled=False, eager=False)
        x_eager, _ = run_way(ops, fs, scaled=False, eager=True)
        x_scaled, share = run_way(ops, fs, scaled=True, eager=False)
        assert np.array_equal(x_exact, x_eager), "crop-aware decode must equal full decode bit for bit"
        # model inputs back to pixel units: (x * std + mean) * 255
        std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
        dpx = np.abs(x_scaled - x_exact) * std * 255
        p_exact, p_scaled = predict(model, x_exact), predict(model, x_scaled)
        acc_e = float(np.mean(p_exact.argmax(1) == labels))
        acc_s = float(np.mean(p_scaled.argmax(1) == labels))
        agree = float(np.mean(p_exact.argmax(1) == p_scaled.argmax(1)))
        dp = np.abs(p_exact - p_scaled)
        print(f"{title:<28}{share:>7.0%}{dpx.max():>8.1f}{dpx.mean():>9.2f}{acc_e:>10.3f}{acc_s:>11.3f}"
              f"{agree:>7.1%}{dp.max():>9.3f}{dp.mean():>10.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
