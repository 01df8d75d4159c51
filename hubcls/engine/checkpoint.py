"""The run directory of ``hubcls train``: checkpoints and model packages, written so that nothing is
lost or left inconsistent, whatever stops the process.

    <run dir>/last.pdckpt   the training state: model, optimizer, LR step, epoch, global step, best
                            metric, EMA, RNG, history (read back by the restricted unpickler)
    <run dir>/last/         model package of the last saved epoch (model.json + model.safetensors)
    <run dir>/best/         model package of the best epoch (EMA weights when EMA is on)
    <run dir>/config.yaml, train_log.jsonl, eval_*.csv, report.html, vdl/ ...

Every file is written to a temporary name, flushed, fsynced and renamed (the directory entry is
fsynced too). ``last.pdckpt`` is written first at each save: it is the commit point, and it holds the
weights the packages are made from, so :func:`reconcile` can rebuild a package that a crash left one
save behind. A failed write removes its temporary file and raises :class:`CheckpointError` naming the
file; what was complete before stays as it was.
"""
from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import List, Optional

import numpy as np

from .._paddle import import_paddle
from ..errors import CheckpointError, ConfigError, HubclsError

LAST = "last.pdckpt"
BEST_DIR = "best"
LAST_DIR = "last"
# the weights file of each package (the names callers used to look up "best/last weights")
BEST_WEIGHTS = f"{BEST_DIR}/model.safetensors"
LAST_WEIGHTS = f"{LAST_DIR}/model.safetensors"
# what a run writes (and --overwrite removes); older runs' names included
RUN_ARTIFACTS = (LAST, "best.pdckpt", BEST_DIR, LAST_DIR, "best_model.pdparams", "last_model.pdparams",
                 "train_log.jsonl", "config.yaml", "eval_per_class.csv", "eval_confusion_matrix.csv",
                 "eval_confusion_matrix.png", "curves.png", "confusion_matrix.png", "report.html", "mistakes", "vdl")
_TEMP = re.compile(r"\.tmp\d+$")


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(str(d), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj, path) -> None:
    """``paddle.save`` to ``path`` atomically: temp file, fsync, rename, fsync of the directory.
    Any failure removes the temp file and raises CheckpointError naming ``path``."""
    paddle = import_paddle()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        paddle.save(obj, str(tmp))
        with open(tmp, "rb") as f:  # the bytes are durable before the rename publishes them
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointError(describe_os_error(exc, path)) from exc
        raise


def describe_os_error(exc: OSError, path) -> str:
    """One line: what could not be written and why (ENOSPC, EFBIG, EACCES... by name)."""
    why = exc.strerror or str(exc) or type(exc).__name__
    code = errno.errorcode.get(exc.errno or 0)
    return f"could not write {path}: {why}" + (f" ({code})" if code else "")


def clean_temp_files(run_dir) -> List[Path]:
    """Remove the temporary files a killed save left in ``run_dir`` and its packages."""
    removed = []
    run_dir = Path(run_dir)
    for d in (run_dir, run_dir / BEST_DIR, run_dir / LAST_DIR):
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if _TEMP.search(p.name) and p.is_file():
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    return removed


def existing_run(run_dir) -> Optional[str]:
    """A description of the run in ``run_dir`` when there is one (None: the directory is free)."""
    run_dir = Path(run_dir)
    last = run_dir / LAST
    if last.is_file():
        return f"{last} exists"
    for name in (f"{BEST_DIR}/model.json", f"{LAST_DIR}/model.json", "best_model.pdparams", "train_log.jsonl"):
        if (run_dir / name).exists():
            return f"{run_dir / name} exists"
    return None


def remove_run(run_dir) -> List[str]:
    """``--overwrite``: delete what a run wrote in ``run_dir`` (only those names; anything else stays)."""
    run_dir = Path(run_dir)
    removed = []
    for name in RUN_ARTIFACTS:
        p = run_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        else:
            continue
        removed.append(name)
    clean_temp_files(run_dir)
    return removed


def rng_state() -> dict:
    paddle = import_paddle()
    return {"python": random.getstate(), "numpy": np.random.get_state(), "paddle": paddle.get_rng_state()}


def set_rng_state(state: Optional[dict]) -> None:
    if not state:
        return
    paddle = import_paddle()
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    try:
        paddle.set_rng_state(state["paddle"])
    except Exception:  # noqa: BLE001 - a checkpoint from another device type: keep per-epoch seeding
        pass


CHECKPOINT_KEYS = ("model", "optimizer", "lr", "epoch", "global_step")


def load_checkpoint(path) -> dict:
    """A training checkpoint, read by the restricted unpickler (a checkpoint is data, never code).
    Anything that is not one (a weights file, another format, a damaged file) is a ConfigError that
    names the file and says what it is instead."""
    from ..models import safe_load

    p = Path(path)
    if p.is_dir():
        p = p / LAST
    if not p.is_file():
        raise ConfigError(f"--resume {path}: not found (expected a {LAST} file or a run directory holding one)")
    if p.suffix in (".safetensors", ".json", ".yaml", ".yml", ".txt", ".jpg", ".png"):
        raise ConfigError(f"--resume {p}: a {p.suffix} file is not a training checkpoint (hubcls writes {LAST} "
                          f"in the run directory); to start from its weights use -o Global.pretrained_model={p}")
    try:
        st = safe_load(p, return_numpy=False)
    except HubclsError as exc:
        raise ConfigError(f"--resume {p}: not a training checkpoint: {exc}") from None
    if not isinstance(st, dict) or any(k not in st for k in CHECKPOINT_KEYS):
        have = sorted(map(str, st))[:6] if isinstance(st, dict) else type(st).__name__
        weights_only = isinstance(st, dict) and st and all(hasattr(v, "shape") for v in st.values())
        hint = (f"it holds model weights only; to start from them use -o Global.pretrained_model={p}"
                if weights_only else f"it has {have}")
        raise ConfigError(f"--resume {p}: not a hubcls training checkpoint (no {', '.join(CHECKPOINT_KEYS)}); {hint}")
    return st


def weights_file_of_run(run_dir) -> Optional[Path]:
    """The weights a run directory stands for: its best package, else last, else an older run's
    best_model.pdparams / last_model.pdparams, else the checkpoint."""
    run_dir = Path(run_dir)
    for cand in (BEST_WEIGHTS, LAST_WEIGHTS, "best_model.pdparams", "last_model.pdparams", LAST):
        if (run_dir / cand).is_file():
            return run_dir / cand
    return None


def load_weights(path) -> dict:
    """Model weights ({key: array}) from a weights file (.safetensors / .pdparams / .pdckpt), a model
    package, or a run directory (its best model, else last). PaddleClas's suffix-less prefixes
    (``output/ResNet50_vd/best_model/ppcls``) find ``PREFIX.pdparams``."""
    from ..models import load_state_dict

    p = Path(path)
    if p.is_dir() and not (p / "model.json").is_file():
        found = weights_file_of_run(p)
        if found is not None:
            p = found
    if not p.exists() and Path(f"{p}.pdparams").is_file():
        p = Path(f"{p}.pdparams")
    if not p.exists():
        raise ConfigError(f"weights {str(path)!r} not found")
    return load_state_dict(p)


def package_epoch(package_dir) -> Optional[int]:
    """The epoch a run's package (best/ or last/) was written for (its manifest's provenance)."""
    try:
        doc = json.loads((Path(package_dir) / "model.json").read_text(encoding="utf-8"))
        return int(doc["provenance"]["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
