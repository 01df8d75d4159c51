"""JPEG files on disk -> training batches: hubcls's loader vs PaddleClas's ops + paddle.io.DataLoader.

Both sides run the same PaddleClas train pipeline (DecodeImage, RandCropImage 224, RandFlipImage,
NormalizeImage, ToCHWImage), the same batch size and the same number of worker processes, in this one
process, over the same generated JPEG files. The PaddleClas side is pip paddleclas's own op classes
(``paddleclas.deploy.python.preprocess``, the same code as ppcls.data.preprocess.ops for these
ops) in a ``paddle.io.Dataset`` driven by ``paddle.io.DataLoader`` — what PaddleClas's
``build_dataloader`` does. Both sides end in a paddle Tensor (hubcls's NumPy batch goes through
``paddle.to_tensor``), so the comparison covers what a training step receives.

    python benchmarks/bench_loader.py --images 512 --workers 2 --batch-size 64 --epochs 2

Prints images/s for each side and the ratio hubcls / PaddleClas. Needs pip paddleclas
(tests/install_peers.sh) and prettytable.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
OPS = [
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"RandCropImage": {"size": 224}},
    {"RandFlipImage": {"flip_code": 1}},
    {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": MEAN, "std": STD, "order": ""}},
    {"ToCHWImage": None},
]


def make_jpegs(root: Path, n: int, seed: int = 0):
    """n photo-like JPEGs of ImageNet-typical sizes (~500x375), quality 90, + a PaddleClas list."""
    import cv2
    from PIL import Image

    from hubcls.data.demo import CLASSES, render_sample

    root.mkdir(parents=True, exist_ok=True)
    lines = []
    rng = np.random.default_rng(seed)
    for i in range(n):
        c = i % 6
        small = render_sample(CLASSES[c], np.random.default_rng([seed, i]), size_range=(120, 160), hue=c / 6)
        w, h = (500, 375) if rng.random() < 0.7 else (375, 500)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img.astype(np.int16) + rng.normal(0, 6, img.shape).astype(np.int16), 0, 255).astype(np.uint8)
        rel = f"img/{i:05d}.jpg"
        (root / "img").mkdir(exist_ok=True)
        Image.fromarray(img).save(root / rel, "JPEG", quality=90)
        lines.append(f"{rel} {c}")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root / "list.txt"


def bench_paddleclas(root, lst, batch_size, workers, epochs):
    import paddle
    from paddleclas.deploy.python import preprocess as P

    class PaddleClasDataset(paddle.io.Dataset):  # PaddleClas's CommonDataset.__getitem__ in essence
        def __init__(self):
            self.items = [l.rsplit(" ", 1) for l in Path(lst).read_text().split("\n") if l]
            self.ops = P.create_operators(OPS)

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            rel, lab = self.items[i]
            with open(os.path.join(root, rel), "rb") as f:
                img = f.read()
            for op in self.ops:
                img = op(img)
            return img, np.int64(lab)

    ds = PaddleClasDataset()
    sampler = paddle.io.DistributedBatchSampler(ds, batch_size=batch_size, shuffle=True, drop_last=False)
    loader = paddle.io.DataLoader(ds, batch_sampler=sampler, num_workers=workers, use_shared_memory=True,
                                  return_list=True)
    return _run(loader, epochs, lambda b: b[0], set_epoch=sampler.set_epoch)


def bench_hubcls(root, lst, batch_size, workers, epochs, decode_threads=1):
    import paddle

    from hubcls.data import build_dataloader

    cfg = {"DataLoader": {"Train": {
        "dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(lst), "transform_ops": OPS},
        "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False, "shuffle": True},
        "loader": {"num_workers": workers, "use_shared_memory": True, "decode_threads": decode_threads}}}}
    loader = build_dataloader(cfg, "Train", seed=0)
    try:
        return _run(loader, epochs, lambda b: paddle.to_tensor(b["image"]), set_epoch=loader.set_epoch)
    finally:
        loader.close()


def _run(loader, epochs, to_tensor, set_epoch):
    # epoch 0 warms up (worker start, page cache); the rest is timed
    n = 0
    t0 = c0 = None
    for epoch in range(epochs + 1):
        set_epoch(epoch)
        if epoch == 1:
            t0, c0 = time.perf_counter(), time.process_time()
        for batch in loader:
            x = to_tensor(batch)
            if epoch >= 1:
                n += int(x.shape[0])
    dt = time.perf_counter() - t0
    # CPU time of this process per image: with 0 workers all the work is here, and unlike wall
    # time it does not suffer from other jobs on a shared machine
    return n / dt, (time.process_time() - c0) / n * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    ap.add_argument("--data", default=None, help="folder for the generated JPEGs (default: a temp dir)")
    ap.add_argument("--decode-threads", type=int, default=1,
                    help="also time hubcls with loader.decode_threads=N (uses more threads than PaddleClas: "
                         "reported on its own line, not in the ratio)")
    args = ap.parse_args(argv)

    tmp = None
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="hubcls_bench_"))
    lst = root / "list.txt"
    if not lst.is_file():
        print(f"writing {args.images} JPEGs to {root} ...", flush=True)
        lst = make_jpegs(root, args.images)
    print(f"{args.images} JPEGs (~500x375, q90) -> RandCrop 224 + flip + normalize + CHW, batch {args.batch_size}, "
          f"{args.epochs} timed epochs; CPU cores: {os.cpu_count()}")
    print(f"{'workers':>8} {'PaddleClas img/s':>17} {'hubcls img/s':>13} {'ratio':>7}   "
          f"{'(0 workers: CPU ms/img PaddleClas / hubcls, ratio)'}")
    for w in args.workers:
        pc, pc_cpu = bench_paddleclas(root, lst, args.batch_size, w, args.epochs)
        hc, hc_cpu = bench_hubcls(root, lst, args.batch_size, w, args.epochs)
        extra = f"   {pc_cpu:.2f} / {hc_cpu:.2f} ms, {pc_cpu / hc_cpu:.2f}x" if w == 0 else ""
        print(f"{w:>8} {pc:>17.1f} {hc:>13.1f} {hc / pc:>6.2f}x{extra}", flush=True)
        if args.decode_threads > 1:
            ht, _ = bench_hubcls(root, lst, args.batch_size, w, args.epochs, args.decode_threads)
            print(f"{'':>8} {'':>17} {ht:>13.1f}   (hubcls with decode_threads={args.decode_threads})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
