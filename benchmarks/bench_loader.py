"""JPEG files -> training batches, per core: the decode floors, hubcls's loader, PaddleClas's loader.

One process, the same generated JPEG files for everybody, one thread each (OMP_NUM_THREADS=1,
cv2.setNumThreads(1), 0 loader workers), CPU time of this process per image (the cores are shared
with other jobs: CPU time does not count the time we wait for them; the load average is printed).
Every contestant runs one pass per round, in turn, so load changes hit all alike; the best of
``--rounds`` passes (after one warm-up pass each) counts.

Floors, measured on the same bytes in memory:
  * ``cv2 decode``        cv2.imdecode (libjpeg-turbo, full decode) — the floor of any loader that
                          decodes whole images;
  * ``PIL decode``        Image.open + load (Pillow's libjpeg-turbo);
  * ``cv2 decode+resize`` cv2.imdecode, the sample's random crop, cv2.resize to 224 (what a loader
                          that decodes everything must do at least; the target for large photos);
  * ``cv2 decode 1/8``    cv2.imdecode IMREAD_REDUCED_COLOR_8: the whole scan entropy-decoded, the
                          inverse DCT at 1/8 (DC only) — about what reading every row of the file
                          costs, whatever is cropped; the crop-aware decoder skips only the rows
                          below its crop, so this bounds it on photos where Huffman decoding dominates.
Loaders (DecodeImage -> RandCropImage 224 -> RandFlipImage -> NormalizeImage -> ToCHWImage, batch 64,
files read from disk (page cache) each pass, batches end as paddle Tensors — hubcls's NumPy batches
through paddle.from_dlpack, zero-copy; the cost of paddle.to_tensor is printed on its own line):
  * ``hubcls``            hubcls.data.build_dataloader (crop-aware + DCT-scaled JPEG decode);
  * ``hubcls exact``      the same with ``scaled_decode: false`` (crop-aware only: full-decode pixels);
  * ``hubcls eager``      the same with HUBCLS_JPEG_DECODER=0 (decode whole images, then the kernel);
  * ``hubcls scalar kernel`` the same with the portable resize row kernel (hubcls.ops.using_cpu_isa
                          ("scalar")) instead of the SIMD level picked at run time;
  * ``PaddleClas``        pip paddleclas's own ops in a paddle.io.Dataset + paddle.io.DataLoader;
  * ``hubcls eval``       the eval op list (ResizeImage resize_short 256 + CropImage 224), the
                          preprocessing hub.Module.predict / serve / infer run (``eval eager``: whole
                          images decoded first, as before).

    python benchmarks/bench_loader.py                       # 256 ImageNet-size + 16 4000x3000 JPEGs
    python benchmarks/bench_loader.py --images 512 --large 32 --rounds 5 --workers 2

Targets (issue 16.1): hubcls >= 1.0x the cv2 decode floor on ImageNet-size JPEGs, >= 3x PaddleClas;
on 4000x3000 photos >= 4x cv2 decode+resize. Needs pip paddleclas (tests/install_peers.sh),
scikit-image and scikit-learn (their sample photos are the image content).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # per-core figures: before NumPy/OpenMP/Paddle load

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def ops(scaled=True, eval_ops=False):
    """The train op list (RandCrop 224 + flip) or, with eval_ops, the eval one every prediction path
    runs (ResizeImage resize_short 256 + CropImage 224)."""
    decode = {"to_rgb": True, "channel_first": False}
    if not scaled:
        decode["scaled_decode"] = False
    geo = [{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}}] if eval_ops else \
        [{"RandCropImage": {"size": 224}}, {"RandFlipImage": {"flip_code": 1}}]
    return [{"DecodeImage": decode}, *geo,
            {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": MEAN, "std": STD, "order": ""}}, {"ToCHWImage": None}]


PADDLECLAS_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"RandCropImage": {"size": 224}},
                  {"RandFlipImage": {"flip_code": 1}},
                  {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": MEAN, "std": STD, "order": ""}},
                  {"ToCHWImage": None}]


# ---------------------------------------------------------------------------------------------- data
def source_photos():
    """Real photographs shipped with scikit-image / scikit-learn (no download)."""
    out = []
    try:
        import skimage.data as sd

        for name in ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle"):
            try:
                a = getattr(sd, name)()
                a = a[0] if isinstance(a, tuple) else a
                if a.ndim == 3 and a.shape[2] == 3:
                    out.append(np.ascontiguousarray(a))
            except Exception:  # noqa: BLE001 - an image that needs a download is skipped
                pass
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        out.extend(np.ascontiguousarray(a) for a in load_sample_images().images)
    except Exception:  # noqa: BLE001
        pass
    if not out:
        raise SystemExit("needs scikit-image or scikit-learn for photo content (pip install -e '.[test]')")
    return out


def make_jpegs(root: Path, n: int, size, *, seed=0, grain=0.0, quality=90):
    """n JPEGs of about ``size`` (w, h; 30% portrait) cut from the sample photos (random crop of
    >= 60% of a photo, resized), optional sensor-like grain, + a PaddleClas list file."""
    import cv2

    photos = source_photos()
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        p = photos[i % len(photos)]
        h, w = p.shape[:2]
        f = rng.uniform(0.6, 1.0)
        ch, cw = int(h * f), int(w * f)
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        tw, th = size if rng.random() < 0.7 else size[::-1]
        img = cv2.resize(p[y:y + ch, x:x + cw], (tw, th), interpolation=cv2.INTER_AREA if tw < cw else cv2.INTER_CUBIC)
        if grain:
            img = np.clip(img + rng.normal(0, grain, img.shape), 0, 255).astype(np.uint8)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        rel = f"img/{i:05d}.jpg"
        cv2.imwrite(str(root / rel), np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        lines.append(f"{rel} {i % 10}")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root / "list.txt"


def read_list(root, lst):
    items = [line.rsplit(" ", 1) for line in Path(lst).read_text().split("\n") if line]
    return [(Path(root) / rel).read_bytes() for rel, _ in items]


# ---------------------------------------------------------------------------------------------- timing
def interleaved_cpu_ms(contestants, n_images, rounds):
    """{name: best CPU ms per image}: every contestant runs once per round, in turn (so a change in
    the machine's load hits all of them alike), after one warm-up call each; the best round counts."""
    for fn in contestants.values():
        fn()
    best = {name: float("inf") for name in contestants}
    for _ in range(rounds):
        for name, fn in contestants.items():
            c0 = time.process_time()
            fn()
            best[name] = min(best[name], (time.process_time() - c0) / n_images * 1e3)
    return best


def floor_passes(datas, seed=0):
    import cv2
    from PIL import Image

    from hubcls.data.transforms import RandCropImage

    arrs = [np.frombuffer(d, np.uint8) for d in datas]
    rc = RandCropImage(224)

    def cv2_decode():
        for a in arrs:
            cv2.imdecode(a, cv2.IMREAD_COLOR)

    def pil_decode():
        for d in datas:
            Image.open(io.BytesIO(d)).load()

    def cv2_decode_8():
        for a in arrs:
            cv2.imdecode(a, cv2.IMREAD_REDUCED_COLOR_8)

    def cv2_decode_resize():
        rng = np.random.default_rng(seed)
        for a in arrs:
            img = cv2.imdecode(a, cv2.IMREAD_COLOR)
            i, j, w, h = rc.draw(img.shape[:2], rng)
            cv2.resize(img[j:j + h, i:i + w], (224, 224), interpolation=cv2.INTER_LINEAR)

    return {"cv2 decode": cv2_decode, "PIL decode": pil_decode, "cv2 decode+resize": cv2_decode_resize,
            "cv2 decode 1/8": cv2_decode_8}


class _Env:
    """Sets environment variables for the duration of a call (HUBCLS_JPEG_DECODER=0 for 'eager')."""

    def __init__(self, **env):
        self.env = env

    def __enter__(self):
        self.old = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)

    def __exit__(self, *exc):
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def hubcls_loader(root, lst, batch_size, workers, *, scaled=True, eager=False, eval_ops=False, isa=None):
    """-> (one pass over the data, close). Batches end as paddle Tensors through DLPack (zero-copy on
    the CPU; paddle.to_tensor would add a copy, measured on its own line)."""
    import paddle

    from hubcls.data import build_dataloader

    cfg = {"DataLoader": {"Train": {
        "dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(lst),
                    "transform_ops": ops(scaled, eval_ops)},
        "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False, "shuffle": True},
        "loader": {"num_workers": workers, "use_shared_memory": True}}}}
    env = _Env(HUBCLS_JPEG_DECODER="0") if eager else _Env()
    with env:  # worker processes inherit it
        loader = build_dataloader(cfg, "Train", seed=0)
    loader.pipeline.num_threads = 1
    epoch = [0]

    def run():
        from hubcls.ops import cpu_isa, using_cpu_isa

        with env, using_cpu_isa(isa or cpu_isa()):
            loader.set_epoch(epoch[0])
            epoch[0] += 1
            n = 0
            for b in loader:
                n += int(paddle.from_dlpack(b["image"]).shape[0])
            return n
    return run, loader.close


def paddleclas_loader(root, lst, batch_size, workers):
    import paddle
    from paddleclas.deploy.python import preprocess as P

    class PaddleClasDataset(paddle.io.Dataset):  # PaddleClas's CommonDataset.__getitem__ in essence
        def __init__(self):
            self.items = [line.rsplit(" ", 1) for line in Path(lst).read_text().split("\n") if line]
            self.ops = P.create_operators(PADDLECLAS_OPS)

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
    epoch = [0]

    def run():
        sampler.set_epoch(epoch[0])
        epoch[0] += 1
        n = 0
        for b in loader:
            n += int(b[0].shape[0])
        return n
    return run, lambda: None


def to_tensor_pass(batch_size, n_images):
    """paddle.to_tensor of the loader's batches (what hubcls's trainer does with them today)."""
    import paddle

    x = np.random.default_rng(0).random((batch_size, 3, 224, 224), dtype=np.float32)

    def run():
        for _ in range(max(1, n_images // batch_size)):
            paddle.to_tensor(x)
    return run


def time_loader_wall(make, n_images, rounds):
    """images/s wall clock (worker processes: their CPU time is not this process's)."""
    run, close = make()
    try:
        run()
        best = 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            run()
            best = max(best, n_images / (time.perf_counter() - t0))
        return best
    finally:
        close()


# ---------------------------------------------------------------------------------------------- report
def report(title, n, sizes, bpp, fl, loaders, targets):
    print(f"\n== {title}: {n} JPEGs, mean {np.mean(sizes) / 1e3:.0f} kB ({np.mean(bpp):.2f} bits/pixel); 1 thread, "
          f"CPU ms per image "
          f"(best of rounds), images/s per core = 1000 / ms")
    print(f"{'':<22}{'ms/img':>9}{'img/s/core':>12}")
    for name, ms in list(fl.items()) + list(loaders.items()):
        print(f"{name:<22}{ms:>9.3f}{1e3 / ms:>12.1f}")
    print("  (paddle.to_tensor: the copy hubcls's trainer adds per image today; the hubcls rows convert through "
          "DLPack, zero-copy)")
    print("ratios (images/s, higher is better for hubcls):")
    for a, b, target in targets:
        if a in loaders and (b in fl or b in loaders):
            r = (fl.get(b) or loaders[b]) / loaders[a]
            verdict = "" if target is None else (f"   target >= {target:g}x: " + ("met" if r >= target else "NOT met"))
            print(f"  {a} / {b:<20} {r:6.2f}x{verdict}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256, help="ImageNet-size (500x375, q90) JPEGs")
    ap.add_argument("--large", type=int, default=16, help="4000x3000 (q90) photos; 0 skips them")
    ap.add_argument("--large-grain", type=float, default=6.0,
                    help="sensor-like noise (std, 0-255) on the upscaled large photos: sets their bits per pixel "
                         "(6: ~1.8 bpp, ~2.7 MB, like a camera's q90 file; the sample photos alone are too smooth)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="timed passes per figure (the best counts)")
    ap.add_argument("--workers", type=int, nargs="*", default=[],
                    help="also time both loaders with N worker processes (wall-clock images/s)")
    ap.add_argument("--no-paddleclas", action="store_true", help="skip the PaddleClas loader")
    ap.add_argument("--data", default=None,
                    help="folder for the generated JPEGs, kept and reused (default: a temp dir, removed at the end)")
    args = ap.parse_args(argv)

    import cv2

    cv2.setNumThreads(1)
    from hubcls import _C

    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="hubcls_bench_loader_"))
    print(f"hubcls core: {_C.build_info().get('jpeg') or 'no libjpeg-turbo (eager decode)'}; "
          f"CPU cores: {os.cpu_count()}; load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    sets = [("ImageNet-size 500x375 q90", root / "imagenet", args.images, (500, 375), 0.0)]
    if args.large:
        sets.append(("photos 4000x3000 q90", root / "large", args.large, (4000, 3000), args.large_grain))
    try:
        for title, folder, n, size, grain in sets:
            lst = folder / "list.txt"
            if not lst.is_file():
                print(f"writing {n} JPEGs ({size[0]}x{size[1]}) to {folder} ...", flush=True)
                make_jpegs(folder, n, size, grain=grain)
            datas = read_list(folder, lst)
            bs = args.batch_size
            made = {"hubcls": hubcls_loader(folder, lst, bs, 0),
                    # the same with the portable row kernel instead of the one the CPU dispatches to
                    "hubcls scalar kernel": hubcls_loader(folder, lst, bs, 0, isa="scalar"),
                    "hubcls exact": hubcls_loader(folder, lst, bs, 0, scaled=False),
                    "hubcls eager": hubcls_loader(folder, lst, bs, 0, eager=True),
                    # the eval preprocessing hub.Module.predict / serve / infer run (same pipeline code)
                    "hubcls eval": hubcls_loader(folder, lst, bs, 0, eval_ops=True),
                    "hubcls eval eager": hubcls_loader(folder, lst, bs, 0, eager=True, eval_ops=True)}
            if not args.no_paddleclas:
                made["PaddleClas"] = paddleclas_loader(folder, lst, bs, 0)
            try:
                fl_fns = floor_passes(datas)
                times = interleaved_cpu_ms({**fl_fns, **{k: run for k, (run, _) in made.items()},
                                            "  (paddle.to_tensor)": to_tensor_pass(bs, n)}, n, args.rounds)
            finally:
                for _, close in made.values():
                    close()
            fl = {k: times[k] for k in fl_fns}
            loaders = {k: times[k] for k in times if k not in fl}
            large = size[0] > 1000
            targets = [("hubcls", "cv2 decode", None if large else 1.0), ("hubcls", "cv2 decode+resize", 4.0 if large else None),
                       ("hubcls", "PaddleClas", None if large else 3.0), ("hubcls", "cv2 decode 1/8", None),
                       ("hubcls", "hubcls eager", None), ("hubcls", "hubcls scalar kernel", None),
                       ("hubcls exact", "cv2 decode", None), ("hubcls eager", "cv2 decode", None),
                       ("hubcls eval", "cv2 decode", None), ("hubcls eval", "hubcls eval eager", None),
                       ("PaddleClas", "cv2 decode", None)]
            report(title, n, [len(d) for d in datas], [8 * len(d) / (size[0] * size[1]) for d in datas], fl, loaders,
                   targets)
            for w in args.workers:
                hc = time_loader_wall(lambda f=folder, li=lst, w=w: hubcls_loader(f, li, args.batch_size, w), n, args.rounds)
                pc = time_loader_wall(lambda f=folder, li=lst, w=w: paddleclas_loader(f, li, args.batch_size, w), n,
                                      args.rounds) if not args.no_paddleclas else float("nan")
                print(f"  {w} workers, wall clock: hubcls {hc:.1f} img/s, PaddleClas {pc:.1f} img/s, {hc / pc:.2f}x")
    finally:
        if not args.data:  # a temp folder: ~55 MB of JPEGs per run
            shutil.rmtree(root, ignore_errors=True)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
