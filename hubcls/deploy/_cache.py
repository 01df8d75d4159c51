"""On-disk cache of exported programs (Paddle Inference / ONNX / INT8) under HUBCLS_HOME.

One directory per (model name, weights hash, artefact kind, input-shape policy, tool versions): a
stale cache is never used because every version that changes the artefact is in the key, and a
cache entry is written to a temporary directory and renamed into place only when complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional


def hubcls_home() -> Path:
    """HUBCLS_HOME, else $XDG_CACHE_HOME/hubcls, else ~/.cache/hubcls."""
    home = os.environ.get("HUBCLS_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "hubcls"


def _dist_version(dist: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def tool_versions(kind: str) -> Dict[str, Optional[str]]:
    """Versions of everything that shapes an artefact of ``kind`` ("inference", "onnx", "int8", ...)."""
    from .. import __version__

    versions = {
        "hubcls": __version__,
        "paddle": _dist_version("paddlepaddle-gpu") or _dist_version("paddlepaddle"),
    }
    if kind.startswith("onnx") or kind.endswith("onnx"):
        versions["paddle2onnx"] = _dist_version("paddle2onnx")
        versions["onnxruntime"] = _dist_version("onnxruntime-gpu") or _dist_version("onnxruntime")
    if kind.startswith("auto-choice"):  # a choice is only as good as the runtimes it timed
        versions.update(paddle2onnx=_dist_version("paddle2onnx"), openvino=_dist_version("openvino"),
                        onnxruntime=_dist_version("onnxruntime-gpu") or _dist_version("onnxruntime"))
    return versions


def weights_hash_of_model(model) -> str:
    """Content hash of a model's state dict (names, shapes, dtypes and values)."""
    h = hashlib.blake2b(digest_size=16)
    for key, value in sorted(model.state_dict().items()):
        arr = value.numpy()
        h.update(key.encode())
        h.update(str(arr.shape).encode() + str(arr.dtype).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def weights_hash_of_file(path) -> str:
    """Content hash of a weights file, remembered next to the cache by (path, size, mtime)."""
    path = Path(path)
    st = path.stat()
    memo_file = hubcls_home() / "deploy" / "file_hashes.json"
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo = {}
    try:
        memo = json.loads(memo_file.read_text())
        if stamp in memo:
            return memo[stamp]
    except (OSError, ValueError):
        pass
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    try:
        memo[stamp] = digest
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, memo_file)
    except OSError:
        pass
    return digest


def cache_key(name: str, weights_id: str, kind: str, input_size, dynamic_batch: bool = True, extra=None) -> dict:
    return {
        "model": name,
        "weights": weights_id,
        "kind": kind,
        "input": {"shape": [None if dynamic_batch else 1, *[int(s) for s in input_size]]},
        "versions": tool_versions(kind),
        "extra": extra or {},
    }


def cache_dir_for(key: dict, root: Optional[Path] = None) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in key["model"])[:60]
    return Path(root or hubcls_home() / "deploy") / f"{safe}-{key['kind']}-{digest}"


def cached(key: dict, build: Callable[[Path], None], root: Optional[Path] = None, marker: str = "cache_key.json") -> Path:
    """Return the cache directory for ``key``, calling ``build(tmp_dir)`` to fill it on a miss.

    Concurrent processes are serialised with a file lock; the entry appears atomically (rename)."""
    from filelock import FileLock

    target = cache_dir_for(key, root)
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / marker).is_file():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        try:
            build(tmp)
            (tmp / marker).write_text(json.dumps(key, indent=2, sort_keys=True))
            if target.exists():  # a half-written entry from a crashed run
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
