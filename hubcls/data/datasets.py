"""Datasets: PaddleClas file lists, multi-label lists, ImageFolder, Flowers102 and the demo set.

A dataset here is a light index — it never decodes. ``dataset.source(i)`` is what the decoder
reads (a file path), ``dataset.labels`` the targets (int64 (N,) class ids, or float32 (N, K)
for multi-label), ``class_names`` a list of names or None, ``num_classes`` an int.

Config (PaddleClas's ``DataLoader.<Train|Eval>.dataset``)::

    dataset: {name: ImageNetDataset, image_root: ./data/, cls_label_path: ./data/train_list.txt}

File formats (PaddleClas):

* ImageNetDataset: one ``relative/path.jpg<delimiter>label`` per line (delimiter default ' ';
  hubcls splits on the *last* delimiter, so paths may contain spaces).
* MultiLabelDataset: ``relative/path.jpg<TAB>0,1,0,...,1`` — a 0/1 vector of length K per line.
* Label names (optional, ``label_list``): ``<id> <name>`` per line (PaddleClas label-list style).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError
from ..registry import Registry

DATASETS = Registry("dataset", group="hubcls.datasets")
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")


def read_label_names(path: Union[str, Path]) -> List[str]:
    """PaddleClas label list (``<id> <name>`` lines, ids 0..K-1 in any order) -> names by id."""
    names = {}
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            head, _, rest = line.partition(" ")
            try:
                names[int(head)] = rest.strip()
            except ValueError:
                raise ConfigError(f"{path}:{ln}: expected '<id> <name>', got {line!r}") from None
    if sorted(names) != list(range(len(names))):
        raise ConfigError(f"{path}: class ids must be 0..{len(names) - 1} without gaps")
    return [names[i] for i in range(len(names))]


class Dataset:
    """Base: ``images`` (list of paths), ``labels`` (np.ndarray), ``class_names``."""

    multilabel = False

    def __init__(self, images: Sequence[str], labels, class_names: Optional[List[str]] = None,
                 num_classes: Optional[int] = None):
        self.images = list(images)
        self.labels = np.asarray(labels, dtype=np.float32 if self.multilabel else np.int64)
        if len(self.images) != len(self.labels):
            raise ConfigError(f"{type(self).__name__}: {len(self.images)} images but {len(self.labels)} labels")
        self.class_names = list(class_names) if class_names is not None else None
        if num_classes is None:
            if self.class_names is not None:
                num_classes = len(self.class_names)
            elif self.multilabel:
                num_classes = int(self.labels.shape[1]) if self.labels.ndim == 2 else 0
            else:
                num_classes = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.num_classes = int(num_classes)
        if not self.multilabel and len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ConfigError(f"{type(self).__name__}: labels must lie in [0, {self.num_classes}), "
                              f"got [{self.labels.min()}, {self.labels.max()}]")

    def __len__(self):
        return len(self.images)

    def source(self, i: int) -> str:
        """Where sample ``i`` comes from (a path, or a name for generated data)."""
        return self.images[i]

    def label(self, i: int) -> Union[int, np.ndarray]:
        """Class id of sample ``i`` (a float32 0/1 vector for multi-label data)."""
        return self.labels[i]

    @property
    def class_num(self) -> int:
        """``num_classes`` under PaddleClas's name."""
        return self.num_classes

    def __repr__(self):
        return f"{type(self).__name__}({len(self)} images, {self.num_classes} classes)"


def _read_list(path, image_root, delimiter, multilabel):
    if not os.path.isfile(path):
        raise ConfigError(f"cls_label_path {path!r} does not exist")
    images, labels = [], []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if multilabel:
                parts = line.split("\t")
                if len(parts) < 2:
                    raise ConfigError(f"{path}:{ln}: expected 'path<TAB>0,1,...', got {line!r}")
                rel, lab = "\t".join(parts[:-1]), parts[-1]
                try:
                    vec = [int(v) for v in lab.split(",")]
                except ValueError:
                    raise ConfigError(f"{path}:{ln}: labels must be comma-separated 0/1 values, got {lab!r}") from None
                if any(v not in (0, 1) for v in vec):
                    raise ConfigError(f"{path}:{ln}: multi-label targets must be 0 or 1, got {lab!r}")
                if labels and len(vec) != len(labels[0]):
                    raise ConfigError(f"{path}:{ln}: {len(vec)} labels, earlier lines have {len(labels[0])}")
                labels.append(vec)
            else:
                rel, sep, lab = line.strip().rpartition(delimiter)
                if not sep or not rel:
                    raise ConfigError(f"{path}:{ln}: expected 'path{delimiter}label', got {line!r}")
                try:
                    labels.append(int(lab))
                except ValueError:
                    raise ConfigError(f"{path}:{ln}: label {lab!r} is not an integer") from None
            images.append(os.path.join(image_root, rel.strip()))
    if not images:
        raise ConfigError(f"{path}: the list is empty")
    return images, labels


@DATASETS.register(name="ImageNetDataset")
class ImageNetDataset(Dataset):
    """PaddleClas file list: ``relative/path.jpg label`` lines under ``image_root``."""

    def __init__(self, image_root, cls_label_path, delimiter=" ", label_list=None, class_num=None,
                 transform_ops=None, **_ignored):
        self.image_root = str(image_root)
        self.cls_label_path = str(cls_label_path)
        images, labels = _read_list(cls_label_path, image_root, delimiter or " ", self.multilabel)
        names = read_label_names(label_list) if label_list else None
        super().__init__(images, labels, names, class_num)


@DATASETS.register(name="MultiLabelDataset")
class MultiLabelDataset(ImageNetDataset):
    """PaddleClas multi-label list: ``relative/path.jpg<TAB>0,1,0,...`` (one 0/1 per class)."""
    multilabel = True


@DATASETS.register(name="ImageFolder")
class ImageFolder(Dataset):
    """``root/<class name>/*.jpg``: classes are the sub-folders, sorted by name."""

    def __init__(self, image_root, extensions=IMG_EXTENSIONS, class_num=None, **_ignored):
        root = Path(image_root)
        if not root.is_dir():
            raise ConfigError(f"ImageFolder: image_root {str(root)!r} is not a directory")
        classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise ConfigError(f"ImageFolder: {root} has no class sub-folders")
        exts = tuple(e.lower() for e in extensions)
        images, labels = [], []
        for k, c in enumerate(classes):
            for dirpath, dirnames, files in os.walk(root / c, followlinks=True):
                dirnames.sort()
                for fn in sorted(files):
                    if fn.lower().endswith(exts) and not fn.startswith("."):
                        images.append(os.path.join(dirpath, fn))
                        labels.append(k)
        if not images:
            raise ConfigError(f"ImageFolder: no images with extensions {exts} under {root}")
        self.image_root = str(root)
        super().__init__(images, labels, classes, class_num)


FLOWERS102_SPLITS = {"train": "trnid", "val": "valid", "valid": "valid", "test": "tstid"}


@DATASETS.register(name="Flowers102")
class Flowers102(Dataset):
    """Oxford Flowers-102 from its official files (``imagelabels.mat``, ``setid.mat``, ``jpg/``) in
    ``image_root``, split ``train`` (trnid), ``val``/``valid`` (valid) or ``test`` (tstid); labels
    are 0-based (official 1..102 minus one), as PaddleClas's list generator writes them.
    With ``cls_label_path`` it reads a PaddleClas list instead."""

    def __init__(self, image_root, cls_label_path=None, split="train", class_num=None, **_ignored):
        root = Path(image_root)
        if cls_label_path:
            images, labels = _read_list(cls_label_path, str(root), " ", False)
        else:
            if split not in FLOWERS102_SPLITS:
                raise ConfigError(f"Flowers102.split must be one of {sorted(FLOWERS102_SPLITS)}, got {split!r}")
            try:
                import scipy.io
            except ImportError:  # pragma: no cover
                raise ConfigError("Flowers102 from the official .mat files needs scipy (pip install scipy)") from None
            for fn in ("imagelabels.mat", "setid.mat"):
                if not (root / fn).is_file():
                    raise ConfigError(f"Flowers102: {root / fn} is missing (hubcls.data.download_flowers102 "
                                      "fetches the official files)")
            all_labels = np.asarray(scipy.io.loadmat(str(root / "imagelabels.mat"))["labels"]).ravel()
            ids = np.asarray(scipy.io.loadmat(str(root / "setid.mat"))[FLOWERS102_SPLITS[split]]).ravel()
            images = [str(root / "jpg" / f"image_{int(i):05d}.jpg") for i in ids]
            labels = [int(all_labels[int(i) - 1]) - 1 for i in ids]
        self.image_root = str(root)
        super().__init__(images, labels, None, class_num or 102)


@DATASETS.register(name="DemoDataset")
class DemoDataset(ImageNetDataset):
    """The offline demo set (hubcls.data.make_demo_dataset). Generated into ``image_root`` on first
    use (seeded, so every rank/process writes the same files; a file lock serialises them)."""

    def __init__(self, image_root, cls_label_path=None, split="train", seed=0, num_classes=None,
                 train_per_class=None, val_per_class=None, **_ignored):
        from .demo import ensure_demo_dataset

        kw = {k: v for k, v in dict(seed=seed, num_classes=num_classes, train_per_class=train_per_class,
                                    val_per_class=val_per_class).items() if v is not None}
        paths = ensure_demo_dataset(image_root, **kw)
        if split not in ("train", "val"):
            raise ConfigError(f"DemoDataset.split must be 'train' or 'val', got {split!r}")
        super().__init__(image_root, cls_label_path or paths[f"{split}_list"], label_list=paths["label_list"])


def build_dataset(cfg: dict, where: str = "dataset") -> Dataset:
    """``{name: ..., **params}`` -> dataset."""
    if not isinstance(cfg, dict) or "name" not in cfg:
        raise ConfigError(f"{where} must be a mapping with a 'name' (one of {DATASETS.names()}), got {cfg!r}")
    params = {k: v for k, v in cfg.items() if k != "name"}
    return DATASETS.build(cfg["name"], params, where=where, name_path=f"{where}.name")
