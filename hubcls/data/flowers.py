"""Oxford Flowers-102: download the official files and write PaddleClas lists.

    paths = download_flowers102("./data/flowers102")
    # ./data/flowers102/{jpg/, imagelabels.mat, setid.mat, train_list.txt, val_list.txt, test_list.txt}

Downloads go through hubcls's one downloader (hubcls._download: cache, resume, lock, offline
mode); ``base_url`` (or ``HUBCLS_FLOWERS102_URL``) points at a mirror holding the same three files.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Dict, Optional, Union

from ..errors import DownloadError

FLOWERS102_BASE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FLOWERS102_FILES = ("102flowers.tgz", "imagelabels.mat", "setid.mat")
_ENV_URL = "HUBCLS_FLOWERS102_URL"


def _safe_extract(tgz: Path, dest: Path) -> None:
    with tarfile.open(tgz, "r:*") as tf:
        for m in tf.getmembers():
            target = (dest / m.name).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep) and target != dest.resolve():
                raise DownloadError(f"{tgz}: refusing to extract {m.name!r} outside {dest}")
            if m.issym() or m.islnk():
                raise DownloadError(f"{tgz}: refusing to extract link {m.name!r}")
        try:
            tf.extractall(dest, filter="data")
        except TypeError:  # Python < 3.12 without extraction filters; members were checked above
            tf.extractall(dest)


def _check_tar(path) -> None:  # a download enters the cache only if it lists as a tar
    with tarfile.open(path, "r:*") as tf:
        tf.getmembers()


def _check_mat(path) -> None:
    import scipy.io

    scipy.io.loadmat(str(path))


def write_flowers102_lists(root: Union[str, Path]) -> Dict[str, str]:
    """PaddleClas lists (``jpg/image_00001.jpg <label-1>``) for the train/valid/test splits."""
    import numpy as np
    import scipy.io

    root = Path(root)
    labels = np.asarray(scipy.io.loadmat(str(root / "imagelabels.mat"))["labels"]).ravel()
    setid = scipy.io.loadmat(str(root / "setid.mat"))
    out = {}
    for split, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        ids = np.asarray(setid[key]).ravel()
        lines = [f"jpg/image_{int(i):05d}.jpg {int(labels[int(i) - 1]) - 1}" for i in ids]
        path = root / f"{split}_list.txt"
        path.write_text("\n".join(lines) + "\n")
        out[f"{split}_list"] = str(path)
    return out


def download_flowers102(root: Union[str, Path], *, base_url: Optional[str] = None, progress: bool = True,
                        timeout: float = 60.0) -> Dict[str, str]:
    """Fetch 102flowers.tgz, imagelabels.mat and setid.mat into ``root`` (cached, resumable),
    extract the images to ``root/jpg`` and write PaddleClas lists. Returns the paths."""
    from .._download import download

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = (base_url or os.environ.get(_ENV_URL) or FLOWERS102_BASE).rstrip("/") + "/"
    local = {}
    for name in FLOWERS102_FILES:
        check = _check_tar if name.endswith(".tgz") else _check_mat
        local[name] = download(base + name, dest=root / name, progress=progress, timeout=timeout, validate=check)
    if not (root / "jpg").is_dir() or not any((root / "jpg").iterdir()):
        _safe_extract(local["102flowers.tgz"], root)
    if not (root / "jpg").is_dir():
        raise DownloadError(f"{local['102flowers.tgz']} has no jpg/ folder: not the Flowers-102 archive")
    paths = write_flowers102_lists(root)
    paths.update(root=str(root), image_root=str(root))
    return paths
