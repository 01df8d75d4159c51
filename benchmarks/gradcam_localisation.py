"""Does Grad-CAM point at the object? Measured on the quick-start model and its demo images, whose
object masks are known (hubcls.data.demo.demo_sample renders each saved image again with its mask).

    python benchmarks/gradcam_localisation.py                       # train the quick-start model (~2 min), measure
    python benchmarks/gradcam_localisation.py --run output/quickstart   # measure a quick-start run you have
    python benchmarks/gradcam_localisation.py --json out.json      # also the figures as JSON (the test reads it)

For each validation image (6 classes x 10), Grad-CAM of the predicted class (``Module.explain``),
mapped onto the original image, against the object's mask:

* energy in object: the heatmap's mass inside the object / its total mass;
* chance: what a heatmap with no information scores (uniform over the network's crop = the
  object's share of the crop); centre prior: a Gaussian at the crop centre (sigma = 1/4 of the side)
  - the demo objects sit near the centre, so this is the bar a map must clear to show it localises;
* pointing game: the heatmap's peak falls inside the object (chance: the object's share of the crop);
* wins: the share of images where Grad-CAM's energy beats chance / the centre prior, with a one-sided
  sign test p-value.

Also on "shifted" scenes: each object moved 22% of the image toward a corner onto fresh background
(the centre prior no longer helps). Printed per Grad-CAM stage (-1: the last, -2, -3: earlier ones;
* marks the default stage Module.explain picks).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def train_quickstart(out: Path, epochs: int = 15) -> Path:
    """The quick-start recipe (hubcls/configs/quickstart.yaml) into ``out``."""
    from hubcls.engine import Trainer
    from hubcls.engine.config import load_config

    data = out / "demo_data"
    cfg = load_config("quickstart", [f"Global.output_dir={out / 'run'}", f"Global.epochs={epochs}",
                                     f"DataLoader.Train.dataset.image_root={data}",
                                     f"DataLoader.Eval.dataset.image_root={data}",
                                     f"Infer.PostProcess.class_id_map_file={data / 'label_list.txt'}"])
    Trainer(cfg, quiet=True).train(overwrite=True)
    return out / "run"


def shifted(img: np.ndarray, mask: np.ndarray, corner: int, rng, frac: float = 0.22):
    """The object moved ``frac`` of the image toward ``corner`` (0..3) onto fresh demo background."""
    import cv2

    from hubcls.data.demo import _background

    h, w = mask.shape
    dx, dy = (1 if corner % 2 else -1) * frac * w, (1 if corner // 2 else -1) * frac * h
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    obj, mk = cv2.warpAffine(img, m, (w, h)), cv2.warpAffine(mask, m, (w, h))
    bg = _background(rng, h, w).astype(np.float32)
    return np.clip(bg * (1 - mk[..., None]) + obj.astype(np.float32) * mk[..., None], 0, 255).astype(np.uint8), mk


def sign_test(wins: int, n: int) -> float:
    """One-sided P(X >= wins) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def measure(module, scenes, stage: int) -> dict:
    from hubcls.data.demo import CLASSES
    from hubcls.hub.explain import crop_box

    rows = []
    for img, mask, cls in scenes:
        e = module.explain([img], channel_order="RGB", stage=stage)[0][0]
        cam, inside = e.heatmap, mask > 0.5
        h, w = mask.shape
        x0, y0, x1, y1 = crop_box(module.pipeline.preprocess_ops, h, w)  # what the network saw
        yy, xx = np.mgrid[0:h, 0:w] + 0.5
        crop = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
        prior = np.exp(-(((xx - cx) / (0.25 * side)) ** 2 + ((yy - cy) / (0.25 * side)) ** 2) / 2) * crop
        peak = np.unravel_index(np.argmax(cam), cam.shape)
        rows.append({
            "energy": float((cam * inside).sum() / max(cam.sum(), 1e-12)),
            "chance": float(inside[crop].mean()),
            "centre": float((prior * inside).sum() / max(prior.sum(), 1e-12)),
            "pointing": bool(inside[peak]),
            "correct": e.label == CLASSES[cls],
        })
    from hubcls.hub.explain import default_stage

    n = len(rows)
    used = stage if stage is not None else default_stage(module.model, module.pipeline.input_size)
    wins_chance = sum(r["energy"] > r["chance"] for r in rows)
    wins_centre = sum(r["energy"] > r["centre"] for r in rows)
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    return {"stage": stage, "stage_used": f"{used}" + ("*" if stage is None else ""), "images": n, "energy_in_object": mean("energy"), "chance": mean("chance"),
            "centre_prior": mean("centre"), "pointing": mean("pointing"), "pointing_chance": mean("chance"),
            "accuracy": mean("correct"), "wins_vs_chance": wins_chance / n, "p_vs_chance": sign_test(wins_chance, n),
            "wins_vs_centre": wins_centre / n, "p_vs_centre": sign_test(wins_centre, n)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="a quick-start run directory (default: train one into a temporary folder)")
    p.add_argument("--epochs", type=int, default=15, help="epochs when training (default: the recipe's 15)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import hubcls.hub as hub
    from hubcls.data.demo import demo_sample

    t0, tmp = time.time(), None
    run = Path(args.run) if args.run else None
    if run is None:
        tmp = tempfile.TemporaryDirectory(prefix="gradcam-")
        run = train_quickstart(Path(tmp.name), args.epochs)
    module = hub.Module(directory=str(run), backend="dygraph")
    num_classes, seed = module.num_classes, 0
    val = [(c, k) for c in range(num_classes) for k in range(40, 50)]  # the recipe's val split: samples 40..49
    plain = [(*demo_sample(c, k, num_classes=num_classes, seed=seed), c) for c, k in val]
    rng = np.random.default_rng(0)
    moved = [(*shifted(img, mask, i % 4, rng), c) for i, (img, mask, c) in enumerate(plain)]
    results = {"model": module.name, "run": str(run), "scenes": {}}
    print(f"Grad-CAM localisation, {module.name} trained on the demo set ({run}); {len(plain)} validation images")
    print(f"{'scenes':8s} {'stage':>5s} {'acc':>5s} {'energy':>7s} {'chance':>7s} {'centre':>7s} {'point':>6s} "
          f"{'wins/chance (p)':>18s} {'wins/centre (p)':>18s}")
    for name, scenes in (("val", plain), ("shifted", moved)):
        results["scenes"][name] = []
        for stage in (None, -1, -2, -3):
            r = measure(module, scenes, stage)
            results["scenes"][name].append(r)
            print(f"{name:8s} {r['stage_used']:>5s} {r['accuracy']:5.2f} {r['energy_in_object']:7.3f} {r['chance']:7.3f} "
                  f"{r['centre_prior']:7.3f} {r['pointing']:6.2f} {r['wins_vs_chance']:8.2f} ({r['p_vs_chance']:.1e})"
                  f" {r['wins_vs_centre']:8.2f} ({r['p_vs_centre']:.1e})")
    results["seconds"] = round(time.time() - t0, 1)
    print(f"({results['seconds']} s; energy: heatmap mass inside the object; chance: the object's share of the "
          f"crop; centre: a centred Gaussian's mass inside the object; point: peak inside the object)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
