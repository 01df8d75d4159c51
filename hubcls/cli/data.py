"""``hubcls data``: look at and prepare data.

    hubcls data preview -c CONFIG [-m Train] [-n 16] [-o grid.png] [--epoch 0] [--seed 0] [-O key=value ...]
    hubcls data demo DIR [--classes 6] [--train-per-class 40] [--val-per-class 10] [--seed 0]
    hubcls data flowers102 DIR [--base-url URL]
"""
from __future__ import annotations

import argparse
import math


def _load_config(path, overrides):
    try:
        from ..engine.config import load_config
    except ImportError:  # pragma: no cover - engine not installed
        load_config = None
    if load_config is not None:
        return load_config(path, overrides or [], validate=False)
    import yaml

    from ..errors import ConfigError

    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f) or {}
    if overrides:
        raise ConfigError("-O overrides need hubcls.engine (not available)")
    return cfg


def _denormalize(batch, pipeline):
    """Model input -> uint8 HWC for display, undoing NormalizeImage/ToCHWImage."""
    import numpy as np

    from ..data.transforms import NormalizeImage

    imgs = np.asarray(batch, dtype=np.float32)
    if pipeline.output_layout == "CHW":
        imgs = imgs.transpose(0, 2, 3, 1)
    norm = next((o for o in pipeline.ops if isinstance(o, NormalizeImage)), None)
    if norm is not None:
        imgs = (imgs[..., :3] * np.asarray(norm.std, np.float32) + np.asarray(norm.mean, np.float32)) / norm.scale
    return np.clip(np.rint(imgs), 0, 255).astype(np.uint8)


def _caption(label, names):
    import numpy as np

    def name(k):
        return names[k] if names and k < len(names) else str(k)

    label = np.asarray(label)
    if label.ndim == 0:
        return name(int(label))
    order = np.argsort(-label)[:2]
    parts = [f"{name(int(k))} {label[k]:.2f}".replace(" 0.", " .") for k in order if label[k] > 0.005]
    return " + ".join(parts) if parts else "-"


def make_grid(images, captions, cols=None, tile=None):
    """uint8 HWC tiles with a caption strip under each -> one uint8 RGB grid image."""
    import cv2
    import numpy as np

    n = len(images)
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    th, tw = tile or images[0].shape[:2]
    if tile is None and max(th, tw) < 160:  # small crops: enlarge for legibility
        f = 160.0 / max(th, tw)
        th, tw = int(round(th * f)), int(round(tw * f))
    cap_h = max(16, th // 8)
    grid = np.full((rows * (th + cap_h), cols * tw, 3), 255, np.uint8)
    scale = cap_h / 30.0
    for i, (img, cap) in enumerate(zip(images, captions)):
        r, c = divmod(i, cols)
        if img.shape[:2] != (th, tw):
            img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_LINEAR)
        y, x = r * (th + cap_h), c * tw
        grid[y:y + th, x:x + tw] = img
        s = scale
        while s > 0.25 and cv2.getTextSize(cap, cv2.FONT_HERSHEY_SIMPLEX, s, 1)[0][0] > tw - 4:
            s *= 0.9  # shrink the caption to fit its tile
        cv2.putText(grid, cap, (x + 2, y + th + int(cap_h * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, s, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return grid


def _preview(args) -> int:
    from PIL import Image

    from ..data.loader import build_dataloader
    from ._common import split_output_override

    split_output_override(args, "data preview")
    args.output = args.output or "preview.png"
    if args.old_mode:
        from ._common import warn

        warn("data preview", f"-m {args.old_mode} is deprecated; use --mode {args.old_mode} (-m names a model elsewhere)")
    args.mode = args.mode or args.old_mode or "Train"
    cfg = _load_config(args.config, args.override)
    dl_cfg = cfg.get("DataLoader", {}).get(args.mode)
    if isinstance(dl_cfg, dict):
        # a preview draws n samples in-process: no workers to start
        dl_cfg.setdefault("sampler", {})["batch_size"] = args.num
        dl_cfg.setdefault("loader", {})["num_workers"] = 0
    loader = build_dataloader(cfg, args.mode, seed=args.seed)
    loader.set_epoch(args.epoch)
    batch = next(iter(loader))
    tiles = _denormalize(batch["image"], loader.pipeline)
    names = loader.dataset.class_names
    caps = [f"#{int(i)} {_caption(l, names)}" for i, l in zip(batch["index"], batch["label"])]
    grid = make_grid(list(tiles), caps)
    Image.fromarray(grid).save(args.output)
    print(f"wrote {args.output}: {len(tiles)} {args.mode} samples (epoch {args.epoch}, seed {args.seed}), "
          f"{grid.shape[1]}x{grid.shape[0]} px")
    print(loader.pipeline.describe())
    return 0


def _demo(args) -> int:
    from ..data.demo import make_demo_dataset

    paths = make_demo_dataset(args.root, num_classes=args.classes, train_per_class=args.train_per_class,
                              val_per_class=args.val_per_class, seed=args.seed, progress=True)
    for k, v in paths.items():
        print(f"{k:<11}{v}")
    return 0


def _flowers(args) -> int:
    from ..data.flowers import download_flowers102

    paths = download_flowers102(args.root, base_url=args.base_url)
    for k, v in paths.items():
        print(f"{k:<11}{v}")
    return 0


def register(sub):
    from ._common import add_override_arg, add_parser

    p = add_parser(sub, "data", help="preview augmented samples, generate the demo set, fetch Flowers-102",
                   examples=["hubcls data preview -c quickstart --output preview.png",
                             "hubcls data demo ./demo_data --classes 4",
                             "hubcls data flowers102 ./flowers --base-url https://mirror.example/flowers"])
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    pv = add_parser(dsub, "preview", help="PNG grid of augmented samples with their labels",
                    examples=["hubcls data preview -c quickstart --output preview.png -n 32",
                              "hubcls data preview -c quickstart --mode Eval -o DataLoader.Eval.dataset.val_per_class=2"])
    pv.add_argument("-c", "--config", required=True, help="YAML config (path or shipped name)")
    pv.add_argument("--mode", default=None, help="DataLoader section (Train, Eval, ...; default Train)")
    pv.add_argument("-m", dest="old_mode", default=None, help=argparse.SUPPRESS)  # -m is a model elsewhere
    pv.add_argument("-n", "--num", type=int, default=16, help="number of samples")
    pv.add_argument("--output", "--out", dest="output", default=None, help="output PNG (default preview.png)")
    pv.add_argument("--epoch", type=int, default=0, help="epoch whose random draws to show")
    pv.add_argument("--seed", type=int, default=0)
    add_override_arg(pv)
    pv.add_argument("-O", dest="old_override", action="append", default=[], help=argparse.SUPPRESS)
    pv.set_defaults(func=_preview)
    dm = dsub.add_parser("demo", help="render the offline demo dataset")
    dm.add_argument("root")
    dm.add_argument("--classes", type=int, default=6)
    dm.add_argument("--train-per-class", type=int, default=40)
    dm.add_argument("--val-per-class", type=int, default=10)
    dm.add_argument("--seed", type=int, default=0)
    dm.set_defaults(func=_demo)
    fl = dsub.add_parser("flowers102", help="download Oxford Flowers-102 and write PaddleClas lists")
    fl.add_argument("root")
    fl.add_argument("--base-url", default=None, help="mirror holding 102flowers.tgz, imagelabels.mat, setid.mat")
    fl.set_defaults(func=_flowers)
    p.set_defaults(func=lambda args: (p.print_help() or 0))
