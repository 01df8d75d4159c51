"""PaddleClas's eight data augmentations against its standard pipeline, at small scale, with error bars.

    nice -n 5 python benchmarks/augment_study.py --json build/augment_study.json --figures docs/images
    python benchmarks/augment_study.py --quick        # end-to-end smoke run (tests/test_augment_study.py)
    # the seeds as separate processes, then one report:
    for s in 0 1 2; do nice -n 5 python benchmarks/augment_study.py --seeds $s --json build/s$s.json & done; wait
    python benchmarks/augment_study.py --from-json build/s0.json build/s1.json build/s2.json --figures docs/images

Task: Fashion-MNIST (Zalando's article photographs, 28x28 greyscale, 10 classes; MIT licence), read
from the files of Debian's ``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``
puts them in /usr/share/datasets/fashion-mnist; nothing is downloaded at run time). Split:
  * validation: 200 images per class of the official training set (fixed seed) — used only while
    developing the study (``--evaluate-on val``), never by the table;
  * training: ``--train-per-class`` images per class of the remaining official training images,
    drawn afresh for every seed (stratified);
  * test: the official 10,000-image test set, evaluated once per run, after the last epoch.

Every run trains the same model (``--model``: by default ``StudyResNet8``, a small ResNet built from
the zoo's ResNet blocks and registered like a plugin backbone, see register_study_model) from scratch
through hubcls's own product path: a PaddleClas-shaped config (ImageNetDataset lists of PNG files, ``transform_ops`` /
``batch_transform_ops`` with PaddleClas's op names) validated by ``load_config`` and trained by
``hubcls.engine.Trainer`` with the data loader training uses. A seed fixes the training subset, the
initial weights and the data order, so the nine pipelines of one seed differ only in augmentation
and the comparison with the standard pipeline is paired.

Augmentations use the parameters of PaddleClas's ``ppcls/configs/ImageNet/DataAugment/ResNet50_*.yaml``;
the ones PaddleClas gives in pixels of its 224-pixel crop are scaled by ``size / 224`` (1/8 at the
default 28 pixels): the crop size, the eval resize (256 -> 32), Cutout's ``length``, HideAndSeek's
``grid_sizes`` and GridMask's ``d1``/``d2``. GridMask's probability ramps to its maximum at epoch 240
of PaddleClas's 300; here at the same fraction (80%) of ``--epochs``. The one other departure, shared by
all nine pipelines: RandCropImage's ``scale`` is [0.35, 1] instead of [0.08, 1] (a 28-pixel image
cropped to 8% of its area keeps 8x8 pixels; chosen on the validation split, standard pipeline only).
Optimizer as PaddleClas's configs: Momentum 0.9, cosine lr 0.1, L2 1e-4, batch 64, CELoss.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per run: the 2 cores are shared

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                       "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
SHORT_NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
VAL_PER_CLASS = 200
SPLIT_SEED = 2024

# PaddleClas's ImageNet table (docs/zh_CN/advanced_tutorials/DataAugmentation.md: ResNet50, 300 epochs,
# batch 256, lr 0.1 cosine, l2 1e-4), top-1 in %
PADDLECLAS_IMAGENET = {"standard": 77.31, "AutoAugment": 77.95, "RandAugment": 77.70, "Cutout": 78.01,
                       "RandomErasing": 77.91, "HideAndSeek": 77.43, "GridMask": 77.85, "Mixup": 78.28,
                       "Cutmix": 78.39}
VARIANTS = list(PADDLECLAS_IMAGENET)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
def read_idx(path) -> np.ndarray:
    """An IDX file (optionally gzipped): big-endian header of magic, dims, then uint8 data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} values for dims {dims}")
    return arr.reshape(dims)


def load_fashion_mnist(root=FASHION_MNIST_DIR):
    """{"train": (images (N,28,28) uint8, labels (N,) int64), "test": (...)} from the official files."""
    root = Path(root)
    missing = [n for pair in FASHION_MNIST_FILES.values() for n in pair if not (root / n).is_file()]
    if missing:
        raise SystemExit(f"Fashion-MNIST not found in {root} (missing {', '.join(missing)}); install it with "
                         "`apt-get install dataset-fashion-mnist` or pass --data-dir")
    out = {}
    for split, (img_f, lab_f) in FASHION_MNIST_FILES.items():
        images, labels = read_idx(root / img_f), read_idx(root / lab_f).astype(np.int64)
        if len(images) != len(labels):
            raise SystemExit(f"{root}: {len(images)} {split} images but {len(labels)} labels")
        out[split] = (images, labels)
    return out


def stratified(labels, per_class, rng, pool=None) -> np.ndarray:
    """``per_class`` indices of every class, drawn from ``pool`` (default: all), sorted."""
    pool = np.arange(len(labels)) if pool is None else np.asarray(pool)
    picked = []
    for c in np.unique(labels[pool]):
        members = pool[labels[pool] == c]
        if len(members) < per_class:
            raise SystemExit(f"class {c} has only {len(members)} images, {per_class} requested")
        picked.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picked))


def split_indices(train_labels, seed, per_class):
    """(val indices, training indices of ``seed``): val is fixed, training is drawn per seed from the rest."""
    val = stratified(train_labels, VAL_PER_CLASS, np.random.default_rng(SPLIT_SEED))
    pool = np.setdiff1d(np.arange(len(train_labels)), val)
    return val, stratified(train_labels, per_class, np.random.default_rng([SPLIT_SEED, seed]), pool)


class ImageFiles:
    """Writes dataset images as PNG files on first use and PaddleClas list files over them."""

    def __init__(self, root: Path, data: dict):
        import cv2

        self._cv2 = cv2
        self.root = Path(root)
        self.data = data
        (self.root / "images").mkdir(parents=True, exist_ok=True)
        labels = self.root / "labels.txt"
        labels.write_text("".join(f"{i} {n}\n" for i, n in enumerate(CLASS_NAMES)), encoding="utf-8")
        self.label_list = str(labels)

    def write_list(self, name: str, split: str, indices) -> str:
        images, labels = self.data[split]
        lines = []
        for i in indices:
            rel = f"images/{split}_{int(i):05d}.png"
            p = self.root / rel
            if not p.exists():
                self._cv2.imwrite(str(p), images[int(i)])
            lines.append(f"{rel} {int(labels[int(i)])}\n")
        path = self.root / f"{name}.txt"
        path.write_text("".join(lines), encoding="utf-8")
        return str(path)


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------
STUDY_MODEL = "StudyResNet8"


def register_study_model():
    """Register ``StudyResNet8`` in hubcls's model registry (as a plugin backbone would be), so configs
    name it in ``Arch.name``. It is built from the zoo's ResNet parts (ConvBNLayer, BasicBlock): a 3x3
    stem at stride 1 and three stages of one BasicBlock (16, 32, 64 channels, strides 1, 2, 2), so a
    28-pixel input ends as a 7x7 map, as a 224-pixel one does in ResNet50 (the zoo's models, built for
    224 pixels, reduce 28 pixels to 1x1). 79k parameters."""
    from hubcls.errors import RegistryError
    from hubcls.models import list_models, register_model
    from hubcls.models._features import Backbone
    from hubcls.models._layers import ConvBNLayer, linear, nn
    from hubcls.models.resnet import BasicBlock

    if STUDY_MODEL in list_models(STUDY_MODEL):
        return

    class StudyResNet8(Backbone):
        classifier_name = "fc"

        def __init__(self, num_classes=1000, widths=(16, 32, 64)):
            super().__init__()
            self.num_classes = num_classes
            self.stem = ConvBNLayer(3, widths[0], 3, act="relu", style="legendary")
            blocks, c, self.feature_info = [], widths[0], []
            for s, w in enumerate(widths):
                stride = 1 if s == 0 else 2
                blocks.append(BasicBlock(c, w, stride, shortcut=(c == w and stride == 1), vd_short=False))
                c = w
                self.feature_info.append(dict(num_chs=w, reduction=2 ** s, module=f"blocks.{s}"))
            self.blocks = nn.Sequential(*blocks)
            self.num_features = c
            self.avg_pool = nn.AdaptiveAvgPool2D(1)
            self.fc = linear(c, num_classes)

        def forward_features(self, x):
            return self.blocks(self.stem(x))

        def forward_head(self, x, pre_logits=False):
            x = self.avg_pool(x).flatten(1)
            return x if pre_logits else self.fc(x)

    try:
        register_model(lambda num_classes=1000, **kw: StudyResNet8(num_classes=num_classes, **kw),
                       name=STUDY_MODEL, origin="benchmarks/augment_study.py")
    except RegistryError:  # registered meanwhile (same process)
        pass


# ----------------------------------------------------------------------------------------------
# pipelines (PaddleClas op names and parameters)
# ----------------------------------------------------------------------------------------------
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}}


def px(value, size):
    """A length PaddleClas gives in pixels of its 224-pixel crop, at ``size`` pixels (at least 1)."""
    return max(1, int(round(value * size / 224.0)))


def augmentations(size: int, epochs: int) -> dict:
    """name -> (ops between RandFlipImage and NormalizeImage, ops after NormalizeImage, batch ops)."""
    return {
        "standard": ([], [], []),
        "AutoAugment": ([{"AutoAugment": {}}], [], []),
        "RandAugment": ([{"RandAugment": {"num_layers": 2, "magnitude": 5}}], [], []),
        "Cutout": ([], [{"Cutout": {"n_holes": 1, "length": px(112, size)}}], []),
        "RandomErasing": ([], [{"RandomErasing": {"EPSILON": 0.5, "sl": 0.02, "sh": 0.4, "r1": 0.3,
                                                  "mean": [0.0, 0.0, 0.0]}}], []),
        "HideAndSeek": ([], [{"HideAndSeek": {"grid_sizes": [0] + [px(g, size) for g in (16, 32, 44, 56)],
                                              "hide_prob": 0.5}}], []),
        "GridMask": ([], [{"GridMask": {"d1": px(96, size), "d2": px(224, size), "rotate": 1, "ratio": 0.5,
                                        "mode": 0, "prob": 1.0,
                                        "num_epochs": max(1, int(round(epochs * 240 / 300)))}}], []),
        "Mixup": ([], [], [{"MixupOperator": {"alpha": 0.2}}]),
        "Cutmix": ([], [], [{"CutmixOperator": {"alpha": 0.2}}]),
    }


def train_ops(size, crop_scale, before_norm=(), after_norm=()):
    return ([{"DecodeImage": {"to_rgb": True, "channel_first": False}},
             {"RandCropImage": {"size": size, "scale": list(crop_scale)}},
             {"RandFlipImage": {"flip_code": 1}}]
            + list(before_norm) + [dict(NORMALIZE)] + list(after_norm))


def eval_ops(size):
    return [{"DecodeImage": {"to_rgb": True, "channel_first": False}},
            {"ResizeImage": {"resize_short": px(256, size)}},
            {"CropImage": {"size": size}},
            dict(NORMALIZE)]


def make_config(args, variant, train_list, eval_list, label_list, image_root, out_dir, seed):
    before, after, batch = augmentations(args.size, args.epochs)[variant]
    train_ds = {"name": "ImageNetDataset", "image_root": image_root, "cls_label_path": train_list,
                "label_list": label_list,
                "transform_ops": train_ops(args.size, args.crop_scale, before, after)}
    if batch:
        train_ds["batch_transform_ops"] = batch
    eval_ds = {"name": "ImageNetDataset", "image_root": image_root, "cls_label_path": eval_list,
               "label_list": label_list, "transform_ops": eval_ops(args.size)}
    return {
        "Global": {"epochs": args.epochs, "output_dir": out_dir, "output_subdir": False, "seed": seed,
                   "device": "cpu", "eval_during_train": False, "save_interval": 10 ** 6, "report": False,
                   "print_batch_step": 10 ** 6},
        "Arch": {"name": args.model, "class_num": len(CLASS_NAMES)},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": args.lr},
                      "regularizer": {"name": "L2", "coeff": args.l2}},
        "DataLoader": {
            "Train": {"dataset": train_ds, "sampler": {"batch_size": args.batch_size, "drop_last": False,
                                                       "shuffle": True}, "loader": {"num_workers": 0}},
            "Eval": {"dataset": eval_ds, "sampler": {"batch_size": 256, "drop_last": False, "shuffle": False},
                     "loader": {"num_workers": 0}}},
        "Metric": {"Eval": [{"TopkAcc": {"topk": [1]}}]},
    }


def train_and_test(cfg) -> dict:
    from hubcls.engine.config import load_config
    from hubcls.engine.trainer import Trainer

    t0, c0 = time.time(), time.process_time()
    trainer = Trainer(load_config(cfg), quiet=True)
    trainer.train()
    _, metrics = trainer.evaluate()
    last = trainer.history[-1] if trainer.history else {}
    return {"top1": float(metrics["top1"]), "train_loss": float(last.get("train_loss", float("nan"))),
            "wall_s": time.time() - t0, "cpu_s": time.process_time() - c0}


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------
def summarize(runs: dict, seeds, train_loss: dict = None) -> dict:
    """runs[variant][seed] = top1 -> per-variant mean/std and the paired comparison with standard
    (``train_loss[variant][seed]``, optional: the last epoch's training loss, averaged too)."""
    try:
        from scipy import stats as sps
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        sps = None
    out = {}
    base = runs.get("standard", {})
    for v, by_seed in runs.items():
        done = [s for s in seeds if s in by_seed]
        accs = [by_seed[s] for s in done]
        if not accs:
            continue
        row = {"mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
               "runs": {str(s): by_seed[s] for s in done}}
        if train_loss and v in train_loss:
            row["train_loss"] = statistics.mean(train_loss[v][s] for s in done)
        paired = [s for s in done if s in base]
        if v != "standard" and paired:
            d = [by_seed[s] - base[s] for s in paired]
            mean_d = statistics.mean(d)
            sd = statistics.stdev(d) if len(d) > 1 else 0.0
            # paired t statistic over seeds (undefined with one pair or identical differences)
            t = mean_d / (sd / math.sqrt(len(d))) if (len(d) > 1 and sd > 0) else None
            p = float(2 * sps.t.sf(abs(t), len(d) - 1)) if (sps is not None and t is not None) else None
            row.update(gain=row["mean"] - statistics.mean(base[s] for s in done if s in base),
                       diff_mean=mean_d, diff_std=sd, t=t, p=p, n_pairs=len(d),
                       wins=sum(x > 0 for x in d), losses=sum(x < 0 for x in d))
        out[v] = row
    return out


def markdown_table(summary: dict, n_seeds: int) -> str:
    pc = PADDLECLAS_IMAGENET
    lines = [f"| pipeline | top-1 %, mean ± std ({n_seeds} seeds) | gain vs standard | paired diff ± std "
             f"| t (p) | wins | train loss | PaddleClas ImageNet gain |",
             "|---|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        r = summary.get(v)
        if r is None:
            continue
        acc = f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}"
        loss = f"{r['train_loss']:.3f}" if "train_loss" in r else "—"
        if v == "standard" or "t" not in r:  # the baseline itself, or no standard run to pair with
            lines.append(f"| {v} | {acc} | — | — | — | — | {loss} | "
                         + (f"({pc[v]:.2f} top-1) |" if v == "standard" else f"{pc[v] - pc['standard']:+.2f} |"))
            continue
        t = r["t"]
        ts = "—" if t is None else f"{t:+.2f}"
        if r.get("p") is not None:
            ts += f" ({r['p']:.2f})"
        lines.append(f"| {v} | {acc} | {100 * r['gain']:+.2f} | {100 * r['diff_mean']:+.2f} ± "
                     f"{100 * r['diff_std']:.2f} | {ts} | {r['wins']}/{r['n_pairs']} | {loss} | {pc[v] - pc['standard']:+.2f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------
def plot_bars(summary: dict, path, title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [v for v in VARIANTS if v in summary]
    means = np.array([100 * summary[v]["mean"] for v in names])
    stds = np.array([100 * summary[v]["std"] for v in names])
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
    y = np.arange(len(names))[::-1]
    colors = ["#888888"] + ["#3b75af" if summary[v].get("gain", 0) >= 0 else "#d1603d" for v in names[1:]]
    ax.barh(y, means, xerr=stds, color=colors, alpha=0.85, capsize=3)
    for yi, v in zip(y, names):
        pts = [100 * a for a in summary[v]["runs"].values()]
        ax.plot(pts, [yi] * len(pts), "k.", ms=4)
    ax.axvline(means[0], color="#555555", lw=0.8, ls="--")
    lo = min(means - stds) - 1.0
    hi = max(means + stds) + 0.5
    ax.set_xlim(lo, hi)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlabel("test top-1 (%), mean ± std over seeds; dots: single seeds")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_grid(args, files: "ImageFiles", train_idx, path, n_images=6):
    """Each pipeline (rows) on the same training images (columns), drawn by the training data loader."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hubcls.cli.data import _caption, _denormalize
    from hubcls.data.loader import build_dataloader

    labels = files.data["train"][1]
    chosen = []
    for c in range(len(CLASS_NAMES)):  # one image of each of the first n classes
        chosen.append(int(train_idx[labels[train_idx] == c][0]))
        if len(chosen) == n_images:
            break
    preview = files.write_list("preview", "train", chosen)
    rows = []
    for v in VARIANTS:
        cfg = make_config(args, v, preview, preview, files.label_list, str(files.root), str(files.root / "out"), 0)
        cfg["DataLoader"]["Train"]["sampler"].update(batch_size=len(chosen), shuffle=False)
        loader = build_dataloader(cfg, "Train", seed=0)
        name = v
        for epoch in range(args.epochs, 0, -1):  # the last epoch: GridMask at full probability
            loader.set_epoch(epoch)
            batch = next(iter(loader))
            targets = np.asarray(batch["label"])
            # Mixup/Cutmix with alpha 0.2 mostly draw a weight near 0 or 1; go back to the latest
            # epoch whose batch is visibly mixed (the row says which)
            if targets.ndim == 1 or targets.max(axis=1).min() < 0.8:
                if epoch != args.epochs:
                    name = f"{v}\n(epoch {epoch})"
                break
        soft = targets.ndim == 2  # Mixup/Cutmix: the mixed targets go under the tiles
        caps = [_caption(lab, SHORT_NAMES) for lab in batch["label"]] if soft else None
        rows.append((name, _denormalize(batch["image"], loader.pipeline), caps))
    fig, axes = plt.subplots(len(rows), len(chosen), figsize=(1.1 * len(chosen) + 1.2, 1.1 * len(rows)), dpi=100)
    for r, (v, tiles, caps) in enumerate(rows):
        for c in range(len(chosen)):
            ax = axes[r, c]
            ax.imshow(tiles[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if caps:
                ax.set_xlabel(caps[c].replace(" + ", "\n"), fontsize=5.5, labelpad=1)
            if c == 0:
                ax.set_ylabel(v, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0:
                ax.set_title(CLASS_NAMES[labels[chosen[c]]], fontsize=7)
    fig.tight_layout(pad=0.3)
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 seed, 1 epoch, 10 images per class, 200 test images (no meaningful numbers)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--train-per-class", type=int, default=100)
    ap.add_argument("--model", default=STUDY_MODEL, help="any zoo name, or the study's own StudyResNet8")
    ap.add_argument("--size", type=int, default=28, help="training crop (PaddleClas: 224)")
    ap.add_argument("--crop-scale", type=float, nargs=2, default=[0.35, 1.0],
                    help="RandCropImage.scale of every pipeline (PaddleClas: 0.08 1.0; 0.35 chosen on the val split)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--only", nargs="+", choices=VARIANTS, default=None, help="run only these pipelines")
    ap.add_argument("--evaluate-on", choices=["test", "val"], default="test",
                    help="val: the development split (for choosing settings); test: the held-out set")
    ap.add_argument("--test-limit", type=int, default=None, help="evaluate on this many images (stratified)")
    ap.add_argument("--data-dir", default=FASHION_MNIST_DIR)
    ap.add_argument("--work-dir", default=None, help="PNG files and run directories (default: a temp dir, removed)")
    ap.add_argument("--json", default=None, help="write the results here (after every run)")
    ap.add_argument("--resume", action="store_true", help="skip the runs already in --json")
    ap.add_argument("--figures", default=None, help="write augment_grid.png and augment_bars.png into this folder")
    ap.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                    help="train nothing: merge the runs of these --json files and report on them")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.train_per_class = args.seeds[:1], 1, 10
        args.test_limit = args.test_limit or 200
    return args


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    register_study_model()
    data = load_fashion_mnist(args.data_dir)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="augment_study_"))
    files = ImageFiles(work, data)
    variants = args.only or VARIANTS
    train_labels = data["train"][1]
    val_idx, _ = split_indices(train_labels, 0, 1)
    if args.evaluate_on == "val":
        eval_split, eval_idx = "train", val_idx
    else:
        eval_split, eval_idx = "test", np.arange(len(data["test"][1]))
    if args.test_limit and args.test_limit < len(eval_idx):
        per = max(1, args.test_limit // len(CLASS_NAMES))
        sub = stratified(files.data[eval_split][1], per, np.random.default_rng(SPLIT_SEED), eval_idx)
        eval_idx = sub
    eval_list = files.write_list(f"eval_{args.evaluate_on}", eval_split, eval_idx)

    results = {"settings": {k: v for k, v in vars(args).items() if k not in ("json", "resume", "figures", "from_json")},
               "eval_images": int(len(eval_idx)), "runs": {}, "load_avg_start": os.getloadavg()}
    if args.resume and args.json and Path(args.json).is_file():
        old = json.loads(Path(args.json).read_text())
        results["runs"] = old.get("runs", {})
    if args.from_json:  # report on runs made earlier (e.g. seeds run as separate processes)
        for f in args.from_json:
            part = json.loads(Path(f).read_text())
            diff = {k: (v, part["settings"].get(k)) for k, v in results["settings"].items()
                    if k not in ("seeds", "only") and part["settings"].get(k) != v}
            if diff:
                raise SystemExit(f"{f} was run with other settings: {diff}")
            results["runs"].update(part["runs"])
        args.seeds = sorted({int(k.rsplit("/", 1)[1]) for k in results["runs"]})
        variants = []
    print(f"Fashion-MNIST: {args.train_per_class} training images per class, {len(eval_idx)} {args.evaluate_on} "
          f"images; {args.model} at {args.size}px, {args.epochs} epochs, seeds {args.seeds}; work dir {work}",
          flush=True)
    first_train_idx = None
    try:
        for seed in args.seeds:
            _, train_idx = split_indices(train_labels, seed, args.train_per_class)
            if first_train_idx is None:
                first_train_idx = train_idx
            train_list = files.write_list(f"train_seed{seed}", "train", train_idx)
            for v in variants:
                key = f"{v}/{seed}"
                if key in results["runs"]:
                    continue
                cfg = make_config(args, v, train_list, eval_list, files.label_list, str(work),
                                  str(work / "runs" / v / str(seed)), seed)
                r = train_and_test(cfg)
                results["runs"][key] = r
                print(f"seed {seed} {v:<14} top-1 {100 * r['top1']:6.2f}  train loss {r['train_loss']:.3f}  "
                      f"[{r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU]", flush=True)
                shutil.rmtree(work / "runs" / v / str(seed), ignore_errors=True)  # checkpoints are not kept
                if args.json:
                    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                    Path(args.json).write_text(json.dumps(results, indent=1))
        by_variant, losses = {}, {}
        for key, r in results["runs"].items():
            v, s = key.rsplit("/", 1)
            by_variant.setdefault(v, {})[int(s)] = r["top1"]
            losses.setdefault(v, {})[int(s)] = r["train_loss"]
        summary = summarize({v: by_variant[v] for v in VARIANTS if v in by_variant}, args.seeds, losses)
        results["summary"] = summary
        results["wall_s"] = time.time() - t_start
        results["cpu_s"] = sum(r["cpu_s"] for r in results["runs"].values())
        if args.from_json:  # the time the runs took, not this report's
            results["wall_s"] = sum(r["wall_s"] for r in results["runs"].values())
        results["load_avg_end"] = os.getloadavg()
        table = markdown_table(summary, len(args.seeds))
        print()
        print(table)
        if args.from_json:
            print(f"\n{len(results['runs'])} runs: CPU time {results['cpu_s'] / 60:.1f} min, wall time summed over "
                  f"the runs {results['wall_s'] / 60:.1f} min (runs of parallel processes overlap)")
        else:
            print(f"\nwall time {results['wall_s'] / 60:.1f} min, CPU time of the runs {results['cpu_s'] / 60:.1f} min, "
                  f"load average at the start {', '.join(f'{x:.2f}' for x in results['load_avg_start'])}, "
                  f"at the end {', '.join(f'{x:.2f}' for x in results['load_avg_end'])}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        if args.figures:
            fig_dir = Path(args.figures)
            fig_dir.mkdir(parents=True, exist_ok=True)
            plot_bars(summary, fig_dir / "augment_bars.png",
                      f"{args.model}, Fashion-MNIST, {args.train_per_class}/class, {args.epochs} epochs, "
                      f"{len(args.seeds)} seeds")
            if first_train_idx is None:
                first_train_idx = split_indices(train_labels, args.seeds[0], args.train_per_class)[1]
            plot_grid(args, files, first_train_idx, fig_dir / "augment_grid.png")
            print(f"figures: {fig_dir / 'augment_grid.png'}, {fig_dir / 'augment_bars.png'}")
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
