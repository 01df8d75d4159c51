"""A small in-memory dataset + loader with the hubcls.data loader interface (set_epoch, len, dict
batches with image/label/index, rank/world_size sharding, per-(seed, epoch) shuffles).

Used by engine tests, the training benchmark and the distillation study where decoding files would
only add noise; real training reads files through hubcls.data.build_dataloader.
"""
from __future__ import annotations

import numpy as np


class ArrayDataset:
    def __init__(self, images: np.ndarray, labels: np.ndarray, class_names=None):
        self.images = np.ascontiguousarray(images, dtype=np.float32)
        self.labels = np.asarray(labels)
        n_cls = int(self.labels.max()) + 1 if self.labels.ndim == 1 else self.labels.shape[1]
        self.class_names = list(class_names) if class_names else [f"class_{i}" for i in range(n_cls)]
        self.num_classes = len(self.class_names)

    def __len__(self):
        return len(self.images)


class ArrayLoader:
    """Batches of an ArrayDataset; with ``world_size`` > 1 each rank gets an interleaved shard of the
    same global permutation (padded by wrapping, like a distributed sampler)."""

    def __init__(self, dataset: ArrayDataset, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, augment=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.augment = augment  # fn(images, rng) -> images, seeded per (seed, epoch, batch)
        self.epoch = 0
        self.num_classes = dataset.num_classes

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def _indices(self):
        n = len(self.dataset)
        idx = np.arange(n)
        if self.shuffle:
            idx = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        per_rank = -(-n // self.world_size)
        total = per_rank * self.world_size
        if total > n:
            idx = np.concatenate([idx, idx[: total - n]])
        return idx[self.rank::self.world_size]

    def __len__(self):
        n = -(-len(self.dataset) // self.world_size)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        idx = self._indices()
        for b in range(len(self)):
            sel = idx[b * self.batch_size:(b + 1) * self.batch_size]
            img = self.dataset.images[sel]
            if self.augment is not None:
                img = self.augment(img, np.random.default_rng([self.seed, self.epoch, int(sel[0])]))
            yield {"image": img, "label": self.dataset.labels[sel], "index": sel.astype(np.int64)}


def blobs(n: int = 96, num_classes: int = 4, size: int = 16, seed: int = 0, channels: int = 3):
    """Images whose class is a coloured blob position (learnable in a few steps by a tiny CNN)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    imgs = rng.normal(0, 0.3, (n, channels, size, size)).astype(np.float32)
    half = size // 2
    for i, c in enumerate(labels):
        y, x = divmod(int(c) % 4, 2)
        imgs[i, int(c) % channels, y * half:(y + 1) * half, x * half:(x + 1) * half] += 1.5
    return ArrayDataset(imgs, labels.astype(np.int64))


def tiny_net(num_classes: int = 4, width: int = 8, bn: bool = True, dropout: float = 0.0, in_ch: int = 3):
    """A 2-stage CNN with the zoo's stage layout (stem / blocks / fc and ``feature_info``)."""
    from .._paddle import import_paddle

    nn = import_paddle().nn

    class TinyNet(nn.Layer):
        def __init__(self):
            super().__init__()
            self.num_classes = num_classes
            norm = (lambda c: nn.BatchNorm2D(c)) if bn else (lambda c: nn.Identity())
            self.stem = nn.Sequential(nn.Conv2D(in_ch, width, 3, padding=1), norm(width), nn.ReLU())
            self.blocks = nn.Sequential(
                nn.Sequential(nn.Conv2D(width, width, 3, padding=1, stride=2), norm(width), nn.ReLU()),
                nn.Sequential(nn.Conv2D(width, 2 * width, 3, padding=1, stride=2), norm(2 * width), nn.ReLU()),
            )
            self.feature_info = [dict(num_chs=width, reduction=2, module="blocks.0"),
                                 dict(num_chs=2 * width, reduction=4, module="blocks.1")]
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(2 * width, num_classes)

        def forward(self, x):
            x = self.blocks(self.stem(x))
            return self.fc(self.drop(x.mean(axis=[2, 3])))

    return TinyNet()
