"""Weight files: reading every format PaddleClas shipped, matching keys, saving.

Formats read:
* ``.pdparams`` (paddle.save pickle) in either PaddleClas key scheme - the model's own names (for
  legendary families: the legendary scheme) or one of the schemes registered for the family with
  ``register_key_map`` (release/2.0); detected by which scheme covers the file's keys.
* ``.safetensors``.
* Paddle 1.x static weights (_static.py): per-parameter folders (``save_persistables``), combined
  parameter files (``__params__``, ``params``, ``.pdiparams``), inference-model folders (``__model__``
  + parameters; the program is parsed, never run), and ``.tar``s of any of them, keyed by each
  family's static names (``res2a_branch2a_weights``, ``conv1_bn_scale``, ``fc_0.w_0``).

A classifier of another size (fine-tuning) is skipped with one info line; any other mismatch raises
WeightsError listing the keys.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Set, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    from paddle.nn import Layer

from ..errors import WeightsError
from ._safe_pickle import safe_load
from ._static import (  # noqa: F401 - re-exported: the static readers' long-standing home
    UnnamedTensors,
    apply_static_fold,
    apply_static_numerics,
    is_static_file,
    name_tensors,
    read_lod_tensor,
    read_static_dir,
    read_static_file,
    read_static_tar,
    static_names,
    write_lod_tensor,
)

log = logging.getLogger("hubcls.models")

WEIGHTS_NAME = "model.pdparams"
SAFETENSORS_NAME = "model.safetensors"

# ---------------------------------------------------------------------------------------------
def read_state(path: Union[str, os.PathLike]) -> Dict[str, np.ndarray]:
    """Any supported weight file/directory -> {key: ndarray}."""
    p = Path(path)
    if p.is_dir():
        for name in (SAFETENSORS_NAME, WEIGHTS_NAME):
            if (p / name).is_file():
                return read_state(p / name)
        pd = sorted(p.glob("*.pdparams"))
        if len(pd) == 1:
            return read_state(pd[0])
        return read_static_dir(p)
    if not p.exists():
        raise WeightsError(f"{p}: no such weight file")
    if not p.is_file():  # a FIFO or device (or a symlink to one) would block or never end
        raise WeightsError(f"{p}: not a regular file, expected a weights file")
    name = p.name.lower()
    if is_static_file(p):
        return read_static_file(p)
    if name.endswith(".safetensors"):
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(p)))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own types
            raise WeightsError(f"{p}: not a readable safetensors file ({exc})") from None
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return read_static_tar(p)
    # .pdparams / .pdckpt / anything else: a paddle.save pickle, read by the restricted unpickler
    state = safe_load(p, return_numpy=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict) and "optimizer" in state:
        state = state["model"]  # a hubcls training checkpoint (.pdckpt): its model weights
    if not isinstance(state, dict):
        raise WeightsError(f"{p}: expected a dict of parameters, got {type(state).__name__}")
    bad = [str(k) for k, v in state.items() if not isinstance(v, (np.ndarray, np.generic, int, float))]
    if bad:
        raise WeightsError(f"{p}: not a weights file: {', '.join(bad[:5])} "
                           f"{'is not an array' if len(bad) == 1 else 'are not arrays'}")
    return {k: np.asarray(v) for k, v in state.items()}


def candidate_schemes(model: Layer) -> Dict[str, Dict[str, str]]:
    """scheme -> {model key: file key}; 'native' is the identity."""
    from ._registry import key_maps_for

    keys = list(model.state_dict().keys())
    schemes = {"native": {k: k for k in keys}}
    for scheme, fn in key_maps_for(model).items():
        if scheme == "static":
            continue
        m = fn(model)
        schemes[scheme] = {k: m.get(k, k) for k in keys}
    st = static_names(model)
    if st:
        schemes["static"] = {k: st.get(k, k) for k in keys}
    return schemes


def _strip_prefix(state: Dict[str, np.ndarray], model_keys, wanted=()) -> Dict[str, np.ndarray]:
    # training checkpoints sometimes nest the backbone (backbone./Student./model.); a folder of
    # static files may sit one level down (<Name>_pretrained/conv1_weights)
    if any(k in state for k in model_keys) or any(k in state for k in wanted):
        return state
    for prefix in ("backbone.", "model.", "Student.", "student.", "module."):
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items()}
    if state and all("/" in k for k in state) and len({k.split("/", 1)[0] for k in state}) == 1:
        return {k.split("/", 1)[1]: v for k, v in state.items()}
    return state


def _prepare(model, state):
    """A file's tensors ready for matching: a combined static file named from the model, prefixes
    stripped, and - when the file is in the model's static names - the family's static fold."""
    state = name_tensors(model, state)
    st = static_names(model)
    state = _strip_prefix(state, model.state_dict().keys(), wanted=st.values())
    if st and sum(1 for n in st.values() if n in state) > sum(1 for k in model.state_dict() if k in state):
        state = apply_static_fold(model, state)
    return state


def classifier_keys(model: Layer) -> Set[str]:
    """The state_dict keys of ``model``'s classifier (its ``classifier_name`` layer, else the last Linear)."""
    name = getattr(model, "classifier_name", None)
    if not name:
        last = None
        for n, layer in model.named_sublayers():
            if type(layer).__name__ == "Linear":
                last = n
        name = last
    if not name:
        return set()
    return {k for k in model.state_dict().keys() if k.startswith(name + ".")}


def match_state(model: Layer, state: Dict[str, np.ndarray], source: str = "weights",
                missing_ok: Iterable[str] = ()) -> Tuple[str, Dict[str, np.ndarray], List[Tuple[str, Any, Any]]]:
    """-> (scheme, {model key: array}, skipped classifier keys). Raises WeightsError on mismatch.
    ``missing_ok``: model keys the file may lack (they keep their current values)."""
    model_sd = model.state_dict()
    state = _prepare(model, state)
    file_keys = set(state)
    schemes = candidate_schemes(model)
    best, best_hits = None, -1
    for scheme, mapping in schemes.items():
        hits = sum(1 for fk in mapping.values() if fk in file_keys)
        if hits > best_hits:
            best, best_hits = scheme, hits
    mapping = schemes[best]
    missing_ok = set(missing_ok)
    missing = [k for k, fk in mapping.items() if fk not in file_keys and k not in missing_ok]
    used = set(mapping.values())
    unexpected = sorted(file_keys - used)
    cls_keys = classifier_keys(model)
    shape_bad, skipped, out = [], [], {}
    for k, fk in mapping.items():
        if fk not in file_keys:
            continue
        want = tuple(model_sd[k].shape)
        got = tuple(state[fk].shape)
        if want != got:
            if k in cls_keys:
                skipped.append((k, got, want))
                continue
            shape_bad.append(f"{k} (file {fk}: {list(got)}, model: {list(want)})")
            continue
        out[k] = state[fk]
    problems = []
    if missing:
        problems.append(f"missing from the file ({len(missing)}): {', '.join(missing[:20])}"
                        + (" ..." if len(missing) > 20 else ""))
    if unexpected:
        problems.append(f"not in the model ({len(unexpected)}): {', '.join(unexpected[:20])}"
                        + (" ..." if len(unexpected) > 20 else ""))
    if shape_bad:
        problems.append(f"shape mismatch ({len(shape_bad)}): {'; '.join(shape_bad[:20])}")
    if problems:
        raise WeightsError(f"{source} does not match {type(model).__name__} "
                           f"(best key scheme: {best}, {best_hits}/{len(mapping)} keys found):\n  "
                           + "\n  ".join(problems))
    return best, out, skipped


def head_num_classes(model: Layer, state: Dict[str, np.ndarray]) -> Optional[int]:
    """The class count of the classifier in ``state`` (a weights file read for ``model``'s
    architecture, in any key scheme it loads), or None when the file has no such classifier."""
    cls_keys = classifier_keys(model)
    if not cls_keys:
        return None
    state = _prepare(model, state)
    file_keys = set(state)
    best = max(candidate_schemes(model).values(), key=lambda m: sum(1 for fk in m.values() if fk in file_keys))
    shapes = {k.rsplit(".", 1)[-1]: tuple(state[best[k]].shape) for k in cls_keys if best.get(k) in file_keys}
    if len(shapes.get("bias", ())) == 1:
        return int(shapes["bias"][0])
    w = shapes.get("weight")
    if w is None:
        return None
    return int(w[1]) if len(w) == 2 else int(w[0])  # Linear: (in, out); 1x1 conv: (out, in, 1, 1)


def load_pretrained(model: Layer, path: Union[str, os.PathLike], source: Optional[str] = None,
                    state: Optional[Dict[str, np.ndarray]] = None, missing_ok: Iterable[str] = ()) -> str:
    """Load weights from ``path`` into ``model`` (``state``: ``path`` already read); returns the
    detected key scheme. ``missing_ok``: model keys the file may lack (a detection backbone's
    classifier, which it drops, and its fresh deformable-conv offsets)."""
    source = source or str(path)
    state = read_state(path) if state is None else state
    scheme, matched, skipped = match_state(model, state, source=source, missing_ok=missing_ok)
    model_sd = model.state_dict()
    for k, arr in matched.items():
        target = model_sd[k]
        arr = np.asarray(arr)
        if str(target.dtype).endswith(("float32", "float64", "float16")):
            arr = arr.astype(np.dtype(str(target.dtype).split(".")[-1].replace("paddle.", "")), copy=False)
        target.set_value(arr)
    if scheme == "static":
        numerics = apply_static_numerics(model)
        if numerics:
            log.info("%s: Paddle 1.x static weights; %s set to compute as the 2020 static program did (%s)",
                     source, type(model).__name__, ", ".join(f"{k}={v}" for k, v in numerics.items()))
    if skipped:
        k0, got, want = skipped[0]
        log.info("%s: classifier %s has shape %s in the file and %s in the model; it keeps its "
                 "fresh initialisation (fine-tuning)", source, k0.rsplit(".", 1)[0], list(got), list(want))
    log.debug("%s: loaded %d tensors (key scheme %s)", source, len(matched), scheme)
    return scheme


# ---------------------------------------------------------------------------------------------
def save_pretrained(model: Layer, directory: Union[str, os.PathLike], **kwargs: Any) -> Path:
    """Write a model package (see _package.py): model.json + model.safetensors (+ model.pdparams)."""
    from ._package import save_pretrained as _save

    return _save(model, directory, **kwargs)
