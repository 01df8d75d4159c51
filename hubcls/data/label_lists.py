"""Class-name lists: the one reader of label files, and the lists shipped with hubcls.

A label file holds one class name per line, in class-index order. PaddleClas's ``<index> <name>``
lines (``class_id_map_file``, ``label_list.txt``) are accepted too: a leading index that equals the
line's position is dropped, so "0 tench, Tinca tinca" and "tench, Tinca tinca" read the same.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

BUILTIN_DIR = Path(__file__).resolve().parent / "labels"


def read_labels(path: Union[str, os.PathLike]) -> List[str]:
    """One label per line (blank lines skipped); PaddleClas's "<index> <name>" lines lose the index."""
    labels: List[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        labels.append(rest.strip() if head.isdigit() and int(head) == len(labels) and rest.strip() else line)
    return labels


def write_labels(path: Union[str, os.PathLike], labels: Sequence[str]) -> Path:
    """One name per line (what :func:`read_labels` reads back, and PaddleClas's tools read too)."""
    path = Path(path)
    path.write_text("".join(f"{name}\n" for name in labels), encoding="utf-8")
    return path


def builtin_labels(name: str) -> Optional[List[str]]:
    """A list shipped in hubcls/data/labels/ (``"imagenet1k"``), or None."""
    path = BUILTIN_DIR / f"{name}.txt"
    return read_labels(path) if path.is_file() else None


def labels_from(spec: Union[None, str, Sequence[str]]) -> Optional[List[str]]:
    """A list of names, a label file, or the name of a shipped list -> list of names (None if unknown)."""
    if spec is None:
        return None
    if isinstance(spec, (list, tuple)):
        return [str(x) for x in spec]
    path = Path(str(spec)).expanduser()
    if path.is_file():
        return read_labels(path)
    return builtin_labels(str(spec))
