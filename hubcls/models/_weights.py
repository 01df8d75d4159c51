"""Weight files: reading every format PaddleClas shipped, matching keys, saving.

Formats read:
* ``.pdparams`` (paddle.save pickle) in either PaddleClas key scheme - the model's own names (for
  legendary families: the legendary scheme) or one of the schemes registered for the family with
  ``register_key_map`` (release/2.0); detected by which scheme covers the file's keys.
* ``.safetensors``.
* Paddle 1.x static weights (``save_persistables``): a directory, or a ``.tar`` of one, holding one
  file per parameter named by its static name (``res2a_branch2a_weights``, ``fc_0.w_0``). Each file
  is a serialized LoDTensor::

      uint32  lod-tensor version (0)
      uint64  lod_level, then per level: uint64 byte size + that many bytes of size_t offsets
      uint32  tensor version (0)
      int32   size of the TensorDesc protobuf, then the protobuf:
              field 1 (varint) data type (VarType.Type: 5=FP32, 6=FP64, 4=FP16, 3=INT64, 2=INT32, ...)
              field 2 (int64, repeated, packed or not) dims
      raw little-endian data, C order

  (the same layout paddle.base.core.save_dense_tensor writes today; tests check both agree).

A classifier of another size (fine-tuning) is skipped with one info line; any other mismatch raises
WeightsError listing the keys.
"""
from __future__ import annotations

import logging
import struct
import tarfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import WeightsError
from ._safe_pickle import safe_load

log = logging.getLogger("hubcls.models")

WEIGHTS_NAME = "model.pdparams"
SAFETENSORS_NAME = "model.safetensors"

# ---------------------------------------------------------------------------------------------
# Paddle 1.x LoDTensor files
_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32,
           6: np.float64, 20: np.uint8, 21: np.int8}
_DTYPE_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _parse_tensor_desc(desc: bytes):
    dtype, dims, pos = None, [], 0
    while pos < len(desc):
        tag, pos = _varint(desc, pos)
        field, wire = tag >> 3, tag & 7
        if field == 1 and wire == 0:
            dtype, pos = _varint(desc, pos)
        elif field == 2 and wire == 0:
            v, pos = _varint(desc, pos)
            dims.append(_signed64(v))
        elif field == 2 and wire == 2:  # packed
            n, pos = _varint(desc, pos)
            end = pos + n
            while pos < end:
                v, pos = _varint(desc, pos)
                dims.append(_signed64(v))
        elif wire == 0:
            _, pos = _varint(desc, pos)
        elif wire == 2:
            n, pos = _varint(desc, pos)
            pos += n
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    if dtype is None:
        raise ValueError("TensorDesc without data_type")
    return dtype, dims


def read_lod_tensor(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode one Paddle 1.x LoDTensor file (see module docstring) into a NumPy array."""
    try:
        pos = 0
        (ver,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if ver != 0:
            raise ValueError(f"unsupported LoDTensor version {ver}")
        (lod_level,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        for _ in range(lod_level):
            (n,) = struct.unpack_from("<Q", data, pos)
            pos += 8 + n
        (tver,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if tver != 0:
            raise ValueError(f"unsupported Tensor version {tver}")
        (desc_size,) = struct.unpack_from("<i", data, pos)
        pos += 4
        dtype_code, dims = _parse_tensor_desc(data[pos:pos + desc_size])
        pos += desc_size
        if dtype_code not in _DTYPES:
            raise ValueError(f"unsupported data type code {dtype_code}")
        dtype = np.dtype(_DTYPES[dtype_code]).newbyteorder("<")
        count = int(np.prod(dims)) if dims else 1
        nbytes = count * dtype.itemsize
        if len(data) - pos < nbytes:
            raise ValueError(f"truncated data: need {nbytes} bytes, have {len(data) - pos}")
        return np.frombuffer(data, dtype=dtype, count=count, offset=pos).reshape(dims).astype(dtype.newbyteorder("="))
    except (struct.error, ValueError) as exc:
        raise WeightsError(f"{source}: not a Paddle 1.x LoDTensor file ({exc})") from None


def write_lod_tensor(path, array: np.ndarray) -> None:
    """Write ``array`` in the Paddle 1.x LoDTensor layout (unpacked dims, as Paddle writes them)."""
    arr = np.ascontiguousarray(array)
    code = _DTYPE_CODES.get(arr.dtype)
    if code is None:
        raise ValueError(f"dtype {arr.dtype} has no Paddle code")

    def varint(v):
        v &= (1 << 64) - 1
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    desc = b"\x08" + varint(code) + b"".join(b"\x10" + varint(d) for d in arr.shape)
    with open(path, "wb") as f:
        f.write(struct.pack("<IQI", 0, 0, 0))
        f.write(struct.pack("<i", len(desc)))
        f.write(desc)
        f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def read_static_dir(directory) -> Dict[str, np.ndarray]:
    d = Path(directory)
    out = {}
    for p in sorted(d.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix not in (".json", ".txt", ".md", ".yaml"):
            out[p.name] = read_lod_tensor(p.read_bytes(), source=str(p))
    if not out:
        raise WeightsError(f"{d}: no parameter files found")
    return out


def read_static_tar(path) -> Dict[str, np.ndarray]:
    """A static-weights tar (``<Name>_pretrained/`` holding one file per parameter)."""
    out = {}
    try:
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                if not m.isfile():
                    continue
                base = m.name.rsplit("/", 1)[-1]
                if base.startswith(".") or base.endswith((".json", ".txt", ".md")):
                    continue
                out[base] = read_lod_tensor(tf.extractfile(m).read(), source=f"{path}:{m.name}")
    except tarfile.TarError as exc:
        raise WeightsError(f"{path}: not a readable tar ({exc})") from None
    if not out:
        raise WeightsError(f"{path}: no parameter files in the tar")
    return out


# ---------------------------------------------------------------------------------------------
def read_state(path) -> Dict[str, np.ndarray]:
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


def static_names(model) -> Dict[str, str]:
    """model state key -> Paddle 1.x static name, from layers' ``_static_names`` (see _layers.py)
    plus a registered ``scheme="static"`` key map."""
    from ._registry import key_maps_for

    out = {}
    for prefix, layer in model.named_sublayers(include_self=True):
        names = getattr(layer, "_static_names", None)
        if names:
            for sub, static in names.items():
                out[f"{prefix}.{sub}" if prefix else sub] = static
    fn = key_maps_for(model).get("static")
    if fn is not None:
        out.update(fn(model))
    return out


def candidate_schemes(model) -> Dict[str, Dict[str, str]]:
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


def _strip_prefix(state: Dict[str, np.ndarray], model_keys) -> Dict[str, np.ndarray]:
    # training checkpoints sometimes nest the backbone (backbone./Student./model.)
    if any(k in state for k in model_keys):
        return state
    for prefix in ("backbone.", "model.", "Student.", "student.", "module."):
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items()}
    return state


def classifier_keys(model) -> set:
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


def match_state(model, state: Dict[str, np.ndarray], source: str = "weights"):
    """-> (scheme, {model key: array}, skipped classifier keys). Raises WeightsError on mismatch."""
    model_sd = model.state_dict()
    state = _strip_prefix(state, model_sd.keys())
    file_keys = set(state)
    schemes = candidate_schemes(model)
    best, best_hits = None, -1
    for scheme, mapping in schemes.items():
        hits = sum(1 for fk in mapping.values() if fk in file_keys)
        if hits > best_hits:
            best, best_hits = scheme, hits
    mapping = schemes[best]
    missing = [k for k, fk in mapping.items() if fk not in file_keys]
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


def head_num_classes(model, state: Dict[str, np.ndarray]) -> Optional[int]:
    """The class count of the classifier in ``state`` (a weights file read for ``model``'s
    architecture, in any key scheme it loads), or None when the file has no such classifier."""
    cls_keys = classifier_keys(model)
    if not cls_keys:
        return None
    state = _strip_prefix(state, model.state_dict().keys())
    file_keys = set(state)
    best = max(candidate_schemes(model).values(), key=lambda m: sum(1 for fk in m.values() if fk in file_keys))
    shapes = {k.rsplit(".", 1)[-1]: tuple(state[best[k]].shape) for k in cls_keys if best.get(k) in file_keys}
    if len(shapes.get("bias", ())) == 1:
        return int(shapes["bias"][0])
    w = shapes.get("weight")
    if w is None:
        return None
    return int(w[1]) if len(w) == 2 else int(w[0])  # Linear: (in, out); 1x1 conv: (out, in, 1, 1)


def load_pretrained(model, path, source: Optional[str] = None, state: Optional[Dict[str, np.ndarray]] = None):
    """Load weights from ``path`` into ``model`` (``state``: ``path`` already read); returns the
    detected key scheme."""
    source = source or str(path)
    state = read_state(path) if state is None else state
    scheme, matched, skipped = match_state(model, state, source=source)
    model_sd = model.state_dict()
    for k, arr in matched.items():
        target = model_sd[k]
        arr = np.asarray(arr)
        if str(target.dtype).endswith(("float32", "float64", "float16")):
            arr = arr.astype(np.dtype(str(target.dtype).split(".")[-1].replace("paddle.", "")), copy=False)
        target.set_value(arr)
    if skipped:
        k0, got, want = skipped[0]
        log.info("%s: classifier %s has shape %s in the file and %s in the model; it keeps its "
                 "fresh initialisation (fine-tuning)", source, k0.rsplit(".", 1)[0], list(got), list(want))
    log.debug("%s: loaded %d tensors (key scheme %s)", source, len(matched), scheme)
    return scheme


# ---------------------------------------------------------------------------------------------
def save_pretrained(model, directory, **kwargs):
    """Write a model package (see _package.py): model.json + model.safetensors (+ model.pdparams)."""
    from ._package import save_pretrained as _save

    return _save(model, directory, **kwargs)
