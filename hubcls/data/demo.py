"""An offline demo dataset that hubcls renders itself: photographic-looking scenes of one object
each (circle, square, triangle, star, ring, cross, hexagon, crescent) with jittered size,
position, rotation and shading, on muted textured backgrounds with distractor strokes, saved as
JPEG. Two cues carry the class: the shape, and the object's hue (each class has its own hue band,
jittered) — so a small CNN picks it up within a few epochs.

Deterministic from the seed (same bytes on every machine with the same OpenCV/Pillow JPEG
encoder), needs only NumPy + OpenCV + Pillow, and a small CNN learns it in a few epochs — it is
what the quick start trains on::

    paths = make_demo_dataset("./demo_data", num_classes=6, train_per_class=40, val_per_class=10)
    # ./demo_data/images/<class>/<nnnn>.jpg, train_list.txt, val_list.txt, label_list.txt
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

CLASSES = ("circle", "square", "triangle", "star", "ring", "cross", "hexagon", "crescent")
_VERSION = 3


def _smooth_noise(rng, h, w, cells, channels=3):
    import cv2

    grid = rng.random((cells, cells, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)  # cv2 drops a single channel


def _background(rng, h, w):
    import cv2

    # muted scene colours: a grey level plus a little tint, low-frequency variation, texture, grain
    base = rng.uniform(60, 200) + rng.uniform(-25, 25, size=3)
    spread = rng.uniform(15, 40)
    img = base + (_smooth_noise(rng, h, w, int(rng.integers(3, 6))) - 0.5) * 2 * spread
    img += (_smooth_noise(rng, h, w, int(rng.integers(12, 24)), 1) - 0.5) * rng.uniform(8, 24)  # texture
    img += rng.normal(0, rng.uniform(2, 5), size=(h, w, 1))  # sensor grain
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 3))):  # distractor strokes
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(img, p1, p2, color, int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


def _polygon(cx, cy, radii, angle):
    n = len(radii)
    pts = [(cx + r * math.cos(angle + 2 * math.pi * k / n), cy + r * math.sin(angle + 2 * math.pi * k / n))
           for k, r in enumerate(radii)]
    return np.round(np.asarray(pts) * 16).astype(np.int32)  # 4 fractional bits (cv2 shift=4)


def _mask(shape_name, rng, h, w):
    import cv2

    m = np.zeros((h, w), np.uint8)
    r = rng.uniform(0.26, 0.36) * min(h, w)
    cx = w / 2 + rng.uniform(-0.1, 0.1) * w
    cy = h / 2 + rng.uniform(-0.1, 0.1) * h
    a = rng.uniform(0, 2 * math.pi)
    aa = cv2.LINE_AA
    if shape_name == "circle":
        cv2.circle(m, (int(cx * 16), int(cy * 16)), int(r * 16), 255, -1, aa, 4)
    elif shape_name == "ring":
        cv2.circle(m, (int(cx * 16), int(cy * 16)), int(r * 0.8 * 16), 255, max(3, int(r * 0.4)), aa, 4)
    elif shape_name == "square":
        cv2.fillPoly(m, [_polygon(cx, cy, [r * 1.05] * 4, a)], 255, aa, 4)
    elif shape_name == "triangle":
        cv2.fillPoly(m, [_polygon(cx, cy, [r * 1.15] * 3, a)], 255, aa, 4)
    elif shape_name == "hexagon":
        cv2.fillPoly(m, [_polygon(cx, cy, [r] * 6, a)], 255, aa, 4)
    elif shape_name == "star":
        cv2.fillPoly(m, [_polygon(cx, cy, [r * 1.15, r * 0.45] * 5, a)], 255, aa, 4)
    elif shape_name == "cross":
        t = 0.3
        pts = [(t, 1), (t, t), (1, t), (1, -t), (t, -t), (t, -1), (-t, -1), (-t, -t), (-1, -t), (-1, t), (-t, t), (-t, 1)]
        ca, sa = math.cos(a), math.sin(a)
        poly = [(cx + r * (x * ca - y * sa), cy + r * (x * sa + y * ca)) for x, y in pts]
        cv2.fillPoly(m, [np.round(np.asarray(poly) * 16).astype(np.int32)], 255, aa, 4)
    elif shape_name == "crescent":
        cv2.circle(m, (int(cx * 16), int(cy * 16)), int(r * 16), 255, -1, aa, 4)
        off = 0.55 * r
        cv2.circle(m, (int((cx + off * math.cos(a)) * 16), int((cy + off * math.sin(a)) * 16)),
                   int(r * 0.85 * 16), 0, -1, aa, 4)
    else:  # pragma: no cover
        raise ValueError(shape_name)
    return m.astype(np.float32) / 255.0, (cx, cy, r)


def render_sample(shape_name: str, rng: np.random.Generator, size_range: Tuple[int, int] = (112, 176),
                  hue: Optional[float] = None,
                  return_mask: bool = False) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """One uint8 HxWx3 RGB scene with one object of class ``shape_name``. ``hue`` (0..1) is the
    centre of the object's colour (each class of the demo set has its own, jittered; the shape is
    the other cue); None draws any colour. ``return_mask``: also the object's float32 HxW coverage
    (1 inside, anti-aliased edge) - where the object is, for localisation checks (Grad-CAM)."""
    import colorsys

    import cv2

    h = int(rng.integers(size_range[0], size_range[1] + 1))
    w = int(rng.integers(size_range[0], size_range[1] + 1))
    bg = _background(rng, h, w).astype(np.float32)
    mask, (cx, cy, r) = _mask(shape_name, rng, h, w)
    # object colour: far from the local background mean so the shape stays visible
    bg_mean = bg.reshape(-1, 3).mean(0)
    def draw_color():
        hh = rng.random() if hue is None else (hue + rng.normal(0, 0.035)) % 1.0
        return 255 * np.asarray(colorsys.hsv_to_rgb(hh, rng.uniform(0.55, 0.95), rng.uniform(0.45, 0.95)))

    color = draw_color()
    for _ in range(20):
        if np.abs(color - bg_mean).sum() > 150:
            break
        color = draw_color()
    # shading: a light direction across the object, plus a little surface texture
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    la = rng.uniform(0, 2 * math.pi)
    shade = 1.0 + 0.35 * ((xx - cx) * math.cos(la) + (yy - cy) * math.sin(la)) / max(r, 1.0)
    tex = 1.0 + (_smooth_noise(rng, h, w, 16, 1)[:, :, 0] - 0.5) * 0.2
    obj = np.clip(color[None, None, :] * (shade * tex)[:, :, None], 0, 255)
    m = mask[:, :, None]
    img = bg * (1 - m) + obj * m
    if rng.random() < 0.5:  # mild defocus
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return (img, mask) if return_mask else img


def _sample_rng(seed: int, class_index: int, k: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(class_index), int(k)])))


def demo_sample(class_index: int, k: int, *, num_classes: int = 6, seed: int = 0,
                size_range: Tuple[int, int] = (112, 176)) -> Tuple[np.ndarray, np.ndarray]:
    """Sample ``k`` of class ``class_index`` of the demo set made with these parameters, rendered
    again: (uint8 RGB image, float32 object mask). The image equals the one make_demo_dataset saved
    before JPEG encoding, so the mask says where the object of each saved file is."""
    rng = _sample_rng(seed, class_index, k)
    return render_sample(CLASSES[class_index], rng, size_range, hue=class_index / num_classes, return_mask=True)


def make_demo_dataset(root: Union[str, Path], *, num_classes: int = 6, train_per_class: int = 40,
                      val_per_class: int = 10, seed: int = 0, size_range: Tuple[int, int] = (112, 176),
                      quality: int = 90, progress: bool = False) -> Dict[str, str]:
    """Render the demo set into ``root``; returns {"root", "train_list", "val_list", "label_list"}.

    Lists are PaddleClas format (``images/<class>/<nnnn>.jpg <id>``); the label list is
    ``<id> <name>`` lines. Sample k of class c is rendered from SeedSequence([seed, c, k]).
    """
    from PIL import Image

    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be in [2, {len(CLASSES)}], got {num_classes}")
    if train_per_class < 1 or val_per_class < 0:
        raise ValueError("train_per_class must be >= 1 and val_per_class >= 0")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    train, val = [], []
    total = num_classes * (train_per_class + val_per_class)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="rendering demo dataset", unit="img")
    for c in range(num_classes):
        name = CLASSES[c]
        (root / "images" / name).mkdir(exist_ok=True)
        for k in range(train_per_class + val_per_class):
            img = render_sample(name, _sample_rng(seed, c, k), size_range, hue=c / num_classes)
            rel = f"images/{name}/{k:04d}.jpg"
            Image.fromarray(img).save(root / rel, "JPEG", quality=quality)
            (train if k < train_per_class else val).append(f"{rel} {c}")
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    paths = {"root": str(root), "train_list": str(root / "train_list.txt"),
             "val_list": str(root / "val_list.txt"), "label_list": str(root / "label_list.txt")}
    (root / "train_list.txt").write_text("\n".join(train) + "\n")
    (root / "val_list.txt").write_text("\n".join(val) + ("\n" if val else ""))
    (root / "label_list.txt").write_text("".join(f"{c} {CLASSES[c]}\n" for c in range(num_classes)))
    return paths


def ensure_demo_dataset(root: Union[str, Path], **kw: Any) -> Dict[str, str]:
    """make_demo_dataset once: a marker file records the parameters; a file lock makes concurrent
    callers (several ranks) wait for one writer."""
    from filelock import FileLock

    params = dict(num_classes=6, train_per_class=40, val_per_class=10, seed=0)
    params.update(kw)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "demo_dataset.json"
    want = dict(params, version=_VERSION)
    with FileLock(str(root / ".demo.lock")):
        if marker.is_file():
            try:
                if json.loads(marker.read_text()) == want:
                    return {"root": str(root), "train_list": str(root / "train_list.txt"),
                            "val_list": str(root / "val_list.txt"), "label_list": str(root / "label_list.txt")}
            except ValueError:
                pass
        paths = make_demo_dataset(root, progress=True, **params)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(want))
        os.replace(tmp, marker)
    return paths
