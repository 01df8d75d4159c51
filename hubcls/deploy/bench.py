"""Side-by-side latency / throughput of the inference backends on one model (``hubcls bench``).

Every backend sees the same preprocessed batch (real photos through the model's eval preprocessing),
gets ``warmup`` untimed runs, then ``iters`` timed runs per batch size. Reported per (backend, batch):
load seconds (export on a cache miss + predictor creation), p50/p90 latency of one batch, images/s
at p50, and the max |logit - dygraph| on that batch (int8 also: top-1 agreement with dygraph).
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence

import numpy as np


def sample_images(n: int, seed: int = 0) -> List[np.ndarray]:
    """``n`` uint8 RGB photos: scikit-image's and scikit-learn's sample photos, cycled with random
    crops/flips so a batch is not n copies; noise images only when neither package is installed."""
    photos = []
    try:
        import skimage.data as sd

        for name in ("chelsea", "astronaut", "coffee", "rocket", "cat", "coins", "camera"):
            fn = getattr(sd, name, None)
            if fn is None:
                continue
            try:
                img = fn()
            except Exception:  # noqa: BLE001 - some skimage images are fetched on demand
                continue
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            photos.append(np.ascontiguousarray(img[:, :, :3]))
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        photos.extend(np.ascontiguousarray(x) for x in load_sample_images().images)
    except ImportError:
        pass
    rng = np.random.default_rng(seed)
    if not photos:
        return [rng.integers(0, 256, (256 + 8 * i, 320, 3), dtype=np.uint8) for i in range(n)]
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        if i >= len(photos):
            h, w = img.shape[:2]
            ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            img = img[y:y + ch, x:x + cw]
            if rng.random() < 0.5:
                img = img[:, ::-1]
        out.append(np.ascontiguousarray(img))
    return out


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def time_backend(backend, batch: np.ndarray, warmup: int, iters: int) -> Dict[str, float]:
    for _ in range(warmup):
        backend(batch)
    lat = []
    for _ in range(iters):
        t = time.perf_counter()
        backend(batch)
        lat.append(time.perf_counter() - t)
    p50 = _percentile(lat, 50)
    return {"p50_ms": 1000 * p50, "p90_ms": 1000 * _percentile(lat, 90), "p99_ms": 1000 * _percentile(lat, 99),
            "img_per_s": len(batch) / p50}


def run_bench(model_name: str, *, batches: Sequence[int] = (1, 8), backends: Sequence[str] = ("dygraph", "inference", "onnxruntime"),
              weights=None, threads: Optional[int] = None, warmup: int = 3, iters: int = 10, calib_images: int = 32,
              device: Optional[str] = None, log=print) -> dict:
    from .. import models
    from ..data import eval_transforms_for
    from ._cache import weights_hash_of_model
    from .backends import available_backends, default_threads, load_backend, resolve_backend_name, resolve_device

    dev = resolve_device(device)
    threads = threads or default_threads()
    t0 = time.time()
    model = models.create_model(model_name, pretrained=weights if weights is not None else False)
    model.eval()
    cfg = model.pretrained_cfg
    build_s = time.time() - t0
    transform = eval_transforms_for(cfg)
    n_max = max(batches)
    imgs = sample_images(max(n_max, calib_images))
    data = np.stack([np.asarray(transform(im), np.float32) for im in imgs])
    calib = data[:calib_images]
    wid = weights_hash_of_model(model)
    avail = available_backends(dev)
    result = {"model": cfg.name, "device": dev, "threads": threads, "warmup": warmup, "iters": iters,
              "weights": "random" if weights in (None, False) else str(weights), "model_build_s": build_s, "rows": []}
    log(f"bench {cfg.name} on {dev}: threads={threads} (HUBCLS_NUM_THREADS / --threads), warm-up={warmup} runs, "
        f"timed={iters} runs per batch size")
    refs = {}
    from .backends import DygraphBackend

    ref_backend = DygraphBackend(model, device=dev, threads=threads)
    for n in batches:
        refs[n] = ref_backend(data[:n])
    for spec in backends:  # "name" or "name:precision" (e.g. openvino:bf16)
        name, _, prec = str(spec).partition(":")
        which = resolve_backend_name(name, dev)
        label = f"{which}:{prec}" if prec else which
        if not avail[which][0]:
            log(f"  {which}: skipped ({avail[which][1]})")
            result["rows"].append({"backend": label, "skipped": avail[which][1]})
            continue
        t = time.time()
        be = load_backend(which, model=model, name=cfg.name, weights_id=wid, device=dev, threads=threads,
                          precision=prec or None, calib_data=(lambda: calib) if which == "int8" else None, warmup=())
        load_s = time.time() - t
        for n in batches:
            batch = np.ascontiguousarray(data[:n])
            row = {"backend": label, "batch": n, "load_s": load_s, **time_backend(be, batch, warmup, iters)}
            out = be(batch)
            row["max_abs_diff"] = float(np.abs(out - refs[n]).max())
            row["top1_agree"] = float(np.mean(out.argmax(1) == refs[n].argmax(1)))
            result["rows"].append(row)
    base = {r["batch"]: r["img_per_s"] for r in result["rows"] if r.get("backend") == "dygraph" and "batch" in r}
    for r in result["rows"]:
        if "batch" in r and r["batch"] in base:
            r["speedup_vs_dygraph"] = r["img_per_s"] / base[r["batch"]]
    return result


def format_table(result: dict) -> str:
    head = f"{'backend':<12} {'batch':>5} {'load s':>7} {'p50 ms':>9} {'p90 ms':>9} {'img/s':>8} {'x dygraph':>9} {'max|dlogit|':>11} {'top1 agree':>10}"
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        if "skipped" in r:
            lines.append(f"{r['backend']:<12} skipped: {r['skipped']}")
            continue
        sp = r.get("speedup_vs_dygraph")
        lines.append(f"{r['backend']:<12} {r['batch']:>5} {r['load_s']:>7.2f} {r['p50_ms']:>9.2f} {r['p90_ms']:>9.2f} "
                     f"{r['img_per_s']:>8.1f} {(f'{sp:.2f}' if sp else '-'):>9} {r['max_abs_diff']:>11.2e} {r['top1_agree']:>10.2f}")
    return "\n".join(lines)
