"""Paddle 1.x static weights: the file formats, and the static parameter names of each family.

Formats read (a directory, a ``.tar``/``.tar.gz`` of one, or a file inside one):

* **per-parameter files** (``fluid.io.save_persistables`` / ``save_params``, and the
  ``<Name>_pretrained.tar`` files of PaddleClas's 2020 zoo): one LoDTensor file per parameter,
  named by its static name (``res2a_branch2a_weights``; a name with ``/`` is a sub-folder).
* **combined parameter files** (``__params__``, ``params``, ``*.pdiparams``; ``save_persistables``
  with ``filename=``, ``save_inference_model(params_filename=...)``): the same LoDTensor records one
  after another, in the order of the program's persistable variables sorted by name (Paddle's
  ``save_vars``/``save_combine``). The names come from the program beside the file when there is
  one, else from the model being loaded (its static names, sorted the same way).
* **inference-model folders**: a program (``__model__``, ``model``, ``*.pdmodel``: a serialized
  ``ProgramDesc``) plus parameters in either layout above. The program is *parsed*, never run: it
  only says which persistable variables exist, with their shapes and dtypes.

A LoDTensor record::

    uint32  lod-tensor version (0)
    uint64  lod_level, then per level: uint64 byte size + that many bytes of size_t offsets
    uint32  tensor version (0)
    int32   size of the TensorDesc protobuf, then the protobuf:
            field 1 (varint) data type (VarType.Type: 5=FP32, 6=FP64, 4=FP16, 3=INT64, 2=INT32, ...)
            field 2 (int64, repeated, packed or not) dims
    raw little-endian data, C order

``ProgramDesc`` (framework.proto) is read by field number - blocks=1; BlockDesc.vars=3;
VarDesc name=1, type=2, persistable=3; VarType type=1, tensor desc=3 (``lod_tensor`` in Paddle 1.x,
``dense_tensor`` today); TensorDesc as above - because the numbers are what stayed stable from
Paddle 1.x to 3.x while the generated modules' field names changed. The reader is bounds-checked:
a hostile file is a WeightsError, never a crash or an unbounded allocation.

Static names of a model's parameters come from (both are collected by :func:`static_names`):

* layers' ``_static_names`` (``ConvBNLayer(static_name=...)``, ``linear(static_names=...)``), and
* a family's ``register_key_map(<family>, fn, scheme="static")`` - usually a table of
  :func:`rename` rules over its state-dict keys.

Where the 2020 program computed something the hubcls layer does not hold as a parameter, a family
registers a :func:`register_static_fold` that turns the static tensors into the model's exactly
(RegNet's conv biases fold into the BatchNorm mean; an inference-time dropout scale folds into
the classifier weight).
"""
from __future__ import annotations

import re
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    import paddle

from ..errors import WeightsError

# ---------------------------------------------------------------------------------------------
# protobuf wire format (only what the two messages above need)
_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32,
           6: np.float64, 20: np.uint8, 21: np.int8}
_DTYPE_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_DENSE_TENSOR = 7  # VarType.Type LOD_TENSOR (Paddle 1.x) / DENSE_TENSOR (Paddle 3)
_PROGRAM_NAMES = ("__model__", "model")
_PROGRAM_SUFFIX = ".pdmodel"
_COMBINED_NAMES = ("__params__", "params")
_COMBINED_SUFFIX = ".pdiparams"
_IGNORED_SUFFIXES = (".json", ".txt", ".md", ".yaml", ".yml", ".py", ".pdiparams.info", ".info")


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        if shift > 63:
            raise ValueError("varint longer than 64 bits")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(buf: bytes) -> Iterable[Tuple[int, int, Union[int, bytes]]]:
    """(field number, wire type, value) of one message: varints as int, length-delimited as bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            v, pos = _varint(buf, pos)
            yield field, wire, v
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            yield field, wire, buf[pos:pos + n]
            pos += n
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    if pos != len(buf):
        raise ValueError("truncated fixed-width field")


def _parse_tensor_desc(desc: bytes) -> Tuple[int, List[int]]:
    dtype, dims = None, []
    for field, wire, v in _fields(desc):
        if field == 1 and wire == 0:
            dtype = v
        elif field == 2 and wire == 0:
            dims.append(_signed64(v))
        elif field == 2 and wire == 2:  # packed
            pos = 0
            while pos < len(v):
                d, pos = _varint(v, pos)
                dims.append(_signed64(d))
    if dtype is None:
        raise ValueError("TensorDesc without data_type")
    return dtype, dims


@dataclass(frozen=True)
class ProgramVar:
    """A persistable dense-tensor variable of a static program."""

    name: str
    shape: Tuple[int, ...]
    dtype: Optional[int]


def parse_program(data: bytes, source: str = "<program>") -> List[ProgramVar]:
    """The persistable dense-tensor variables (parameters, BN statistics) of a serialized
    ``ProgramDesc``, in declaration order (feed/fetch holders excluded). Nothing is executed."""
    out: List[ProgramVar] = []
    try:
        blocks = [v for f, w, v in _fields(data) if f == 1 and w == 2]
        if not blocks:
            raise ValueError("no blocks")
        seen = set()
        for block in blocks:
            for f, w, var in _fields(block):
                if f != 3 or w != 2:
                    continue
                name, persistable, vtype, tdesc = None, False, None, None
                for vf, vw, vv in _fields(var):
                    if vf == 1 and vw == 2:
                        name = vv.decode("utf-8")
                    elif vf == 3 and vw == 0:
                        persistable = bool(vv)
                    elif vf == 2 and vw == 2:
                        for tf, tw, tv in _fields(vv):
                            if tf == 1 and tw == 0:
                                vtype = tv
                            elif tf == 3 and tw == 2:  # LoDTensorDesc / DenseTensorDesc
                                for lf, lw, lv in _fields(tv):
                                    if lf == 1 and lw == 2:
                                        tdesc = lv
                if (not persistable or vtype != _DENSE_TENSOR or tdesc is None or name is None
                        or name in ("feed", "fetch") or name in seen):
                    continue
                dtype, dims = _parse_tensor_desc(tdesc)
                seen.add(name)
                out.append(ProgramVar(name, tuple(dims), dtype))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{source}: not a Paddle program (ProgramDesc) file ({exc})") from None
    return out


# ---------------------------------------------------------------------------------------------
# LoDTensor records
def _read_record(data: bytes, pos: int, source: str) -> Tuple[np.ndarray, int]:
    try:
        (ver,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if ver != 0:
            raise ValueError(f"unsupported LoDTensor version {ver}")
        (lod_level,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        if lod_level > 16:
            raise ValueError(f"implausible lod level {lod_level}")
        for _ in range(lod_level):
            (n,) = struct.unpack_from("<Q", data, pos)
            pos += 8 + n
        (tver,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if tver != 0:
            raise ValueError(f"unsupported Tensor version {tver}")
        (desc_size,) = struct.unpack_from("<i", data, pos)
        pos += 4
        if desc_size < 0 or pos + desc_size > len(data):
            raise ValueError("truncated TensorDesc")
        dtype_code, dims = _parse_tensor_desc(data[pos:pos + desc_size])
        pos += desc_size
        if dtype_code not in _DTYPES:
            raise ValueError(f"unsupported data type code {dtype_code}")
        if any(d < 0 for d in dims):
            raise ValueError(f"negative dimension in {dims}")
        dtype = np.dtype(_DTYPES[dtype_code]).newbyteorder("<")
        count = int(np.prod(dims, dtype=object)) if dims else 1
        nbytes = count * dtype.itemsize
        if len(data) - pos < nbytes:
            raise ValueError(f"truncated data: need {nbytes} bytes, have {len(data) - pos}")
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=pos).reshape(dims)
        return arr.astype(dtype.newbyteorder("=")), pos + nbytes
    except (struct.error, ValueError) as exc:
        raise WeightsError(f"{source}: not a Paddle 1.x LoDTensor file ({exc})") from None


def read_lod_tensor(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode one Paddle 1.x LoDTensor file (see module docstring) into a NumPy array."""
    arr, end = _read_record(data, 0, source)
    if end != len(data):
        raise WeightsError(f"{source}: {len(data) - end} bytes after the tensor; a combined parameter "
                           f"file needs its program (__model__) or a model to name its tensors")
    return arr


def read_combined(data: bytes, source: str = "<bytes>") -> List[np.ndarray]:
    """Every LoDTensor record of a combined parameter file, in file order."""
    out, pos = [], 0
    while pos < len(data):
        arr, pos = _read_record(data, pos, f"{source} (tensor {len(out)})")
        out.append(arr)
    if not out:
        raise WeightsError(f"{source}: empty parameter file")
    return out


def _record_bytes(array: np.ndarray) -> bytes:
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
    return (struct.pack("<IQI", 0, 0, 0) + struct.pack("<i", len(desc)) + desc
            + arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def write_lod_tensor(path: Union[str, Path], array: np.ndarray) -> None:
    """Write ``array`` in the Paddle 1.x LoDTensor layout (unpacked dims, as Paddle writes them)."""
    with open(path, "wb") as f:
        f.write(_record_bytes(array))


def write_combined(path: Union[str, Path], arrays: Sequence[np.ndarray]) -> None:
    """Write a combined parameter file (records back to back; callers order them by name)."""
    with open(path, "wb") as f:
        for a in arrays:
            f.write(_record_bytes(a))


# ---------------------------------------------------------------------------------------------
# folders and tars
class UnnamedTensors(list):
    """A combined parameter file read without its program: tensors in file order, named later
    from the model being loaded (:func:`name_tensors`)."""

    source: str = ""


def _is_program(name: str) -> bool:
    return name in _PROGRAM_NAMES or name.endswith(_PROGRAM_SUFFIX)


def _is_combined(name: str) -> bool:
    return name in _COMBINED_NAMES or name.endswith(_COMBINED_SUFFIX)


def is_static_file(path: Union[str, Path]) -> bool:
    """A program or combined-parameter file (read by :func:`read_static`, not the pickle reader)."""
    return _is_program(Path(path).name) or _is_combined(Path(path).name)


def _strip_top(files: Dict[str, bytes]) -> Dict[str, bytes]:
    """Drop the one folder every member of a tar sits in (``ResNet50_pretrained/...``). Only one
    level: deeper folders are parts of names (``xception_41/entry_flow/conv1/weights``)."""
    if files and all("/" in k for k in files) and len({k.split("/", 1)[0] for k in files}) == 1:
        return {k.split("/", 1)[1]: v for k, v in files.items()}
    return files


def _from_files(files: Mapping[str, Callable[[], bytes]], source: str):
    """Static weights from a folder's files (relative posix path -> reader of its bytes)."""
    names = list(files)
    programs = [n for n in names if "/" not in n and _is_program(n)]
    combined = [n for n in names if "/" not in n and _is_combined(n)]
    if len(programs) > 1 or len(combined) > 1:
        raise WeightsError(f"{source}: several programs or parameter files ({', '.join(programs + combined)}); "
                           f"pass the one to load")
    program = parse_program(files[programs[0]](), f"{source}/{programs[0]}") if programs else None
    if combined:
        return _name_combined(read_combined(files[combined[0]](), f"{source}/{combined[0]}"), program,
                              f"{source}/{combined[0]}")
    if program is not None:
        missing = [v.name for v in program if v.name not in files]
        if missing:
            raise WeightsError(f"{source}: the program's parameters are neither in a combined file nor "
                               f"one file each; missing {len(missing)}: {', '.join(missing[:10])}")
        return {v.name: read_lod_tensor(files[v.name](), f"{source}/{v.name}") for v in program}
    out = {}
    for n in sorted(names):
        if PurePosixPath(n).name.startswith(".") or n.endswith(_IGNORED_SUFFIXES):
            continue
        out[n] = read_lod_tensor(files[n](), f"{source}/{n}")
    if not out:
        raise WeightsError(f"{source}: no parameter files found")
    return out


def _name_combined(arrays: List[np.ndarray], program: Optional[List[ProgramVar]], source: str):
    if program is None:
        out = UnnamedTensors(arrays)
        out.source = source
        return out
    if len(program) != len(arrays):
        raise WeightsError(f"{source}: {len(arrays)} tensors but the program declares {len(program)} "
                           f"persistable variables")
    shapes = [tuple(a.shape) for a in arrays]
    # Paddle's save_vars writes them sorted by name; very old writers kept declaration order
    for order in (sorted(program, key=lambda v: v.name), program):
        if [tuple(v.shape) for v in order] == shapes:
            return {v.name: a for v, a in zip(order, arrays)}
    raise WeightsError(f"{source}: tensor shapes match the program's variables neither in name order "
                       f"nor in declaration order")


def read_static_dir(directory: Union[str, Path]) -> Union[Dict[str, np.ndarray], UnnamedTensors]:
    """A folder of per-parameter files, a combined file, and/or a program (see module docstring)."""
    d = Path(directory)
    files = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(d).parts):
            files[p.relative_to(d).as_posix()] = p.read_bytes
    return _from_files(files, str(d))


def read_static_tar(path: Union[str, Path]) -> Union[Dict[str, np.ndarray], UnnamedTensors]:
    """A ``.tar`` (``.tar.gz``) of a static weights folder, read in memory (nothing is extracted)."""
    files = {}
    try:
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                if not m.isfile():  # links, devices, folders: not data we read
                    continue
                name = PurePosixPath(m.name)
                if name.is_absolute() or ".." in name.parts or any(p.startswith(".") for p in name.parts):
                    continue
                files[name.as_posix().lstrip("./")] = tf.extractfile(m).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise WeightsError(f"{path}: not a readable tar ({exc})") from None
    files = _strip_top(files)
    return _from_files({k: (lambda v=v: v) for k, v in files.items()}, str(path))


def read_static_file(path: Union[str, Path]) -> Union[Dict[str, np.ndarray], UnnamedTensors]:
    """A program or combined-parameter file given on its own: its folder is read (the program
    names the parameters next to it)."""
    p = Path(path)
    folder = {q.name: q.read_bytes for q in p.parent.iterdir() if q.is_file()}
    chosen = {k: v for k, v in folder.items() if not (_is_program(k) or _is_combined(k))}
    stem = p.name[:-len(_COMBINED_SUFFIX)] if p.name.endswith(_COMBINED_SUFFIX) else \
        p.name[:-len(_PROGRAM_SUFFIX)] if p.name.endswith(_PROGRAM_SUFFIX) else None
    for k, v in folder.items():
        # the file given, and the program / parameter file that belongs with it
        if k == p.name or (stem is not None and k in (stem + _PROGRAM_SUFFIX, stem + _COMBINED_SUFFIX)):
            chosen[k] = v
        elif stem is None and (_is_program(k) and k in _PROGRAM_NAMES or _is_combined(k) and k in _COMBINED_NAMES):
            chosen[k] = v
    if _is_combined(p.name):  # only the parameters the program names are read, the rest is ignored
        chosen = {k: v for k, v in chosen.items() if _is_program(k) or _is_combined(k)}
    return _from_files(chosen, str(p.parent))


# ---------------------------------------------------------------------------------------------
# static names
_BN_ATTRS = ("weight", "bias", "_mean", "_variance")
BN_SUFFIXES = ("_scale", "_offset", "_mean", "_variance")
Template = Union[str, Callable[[re.Match], str]]
Rule = Tuple[str, Template]


def conv_bn_rules(unit: str, conv: Template, bn: Template, *, conv_attr: str = "_conv",
                  bn_attr: str = "_batch_norm", conv_suffix: str = "_weights",
                  bn_suffixes: Sequence[str] = BN_SUFFIXES) -> List[Rule]:
    """Rename rules for one conv + BN unit. ``unit`` is a regex of the unit's path (groups
    allowed); ``conv`` / ``bn`` are the static base names, as ``re`` templates (``r"conv\\1"``) or
    callables of the match. Conv weight -> ``<conv>_weights``, BN -> ``<bn>_scale`` / ``_offset`` /
    ``_mean`` / ``_variance`` (or the suffixes given)."""
    rules: List[Rule] = [(rf"{unit}\.{conv_attr}\.weight", _suffixed(conv, conv_suffix))]
    return rules + bn_rules(rf"{unit}\.{bn_attr}", bn, bn_suffixes)


def bn_rules(unit: str, bn: Template, bn_suffixes: Sequence[str] = BN_SUFFIXES) -> List[Rule]:
    """Rename rules for a BatchNorm at path regex ``unit`` (``<bn>_scale`` ...)."""
    return [(rf"{unit}\.{attr}", _suffixed(bn, suffix)) for attr, suffix in zip(_BN_ATTRS, bn_suffixes)]


def fc_rules(unit: str, base: Template, weight: str = "_weights", bias: str = "_offset") -> List[Rule]:
    """Rename rules for a layer with weight + bias (Linear, biased conv) at path regex ``unit``."""
    return [(rf"{unit}\.weight", _suffixed(base, weight)), (rf"{unit}\.bias", _suffixed(base, bias))]


def _suffixed(base: Template, suffix: str) -> Template:
    if callable(base):
        return lambda m: base(m) + suffix
    return base + suffix


def rename(keys: Iterable[str], rules: Sequence[Rule]) -> Dict[str, str]:
    """{key: static name} for each key that fully matches a rule (the first one that does)."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out = {}
    for key in keys:
        for pat, rep in compiled:
            m = pat.fullmatch(key)
            if m:
                out[key] = rep(m) if callable(rep) else m.expand(rep)
                break
    return out


def static_map(rules: Sequence[Rule]) -> Callable:
    """A ``scheme="static"`` key map from rename rules:
    ``register_key_map("DarkNet", static_map(RULES), scheme="static")``."""
    compiled = list(rules)

    def key_map(model) -> Dict[str, str]:
        return rename(model.state_dict().keys(), compiled)

    return key_map


def static_names(model: "paddle.nn.Layer") -> Dict[str, str]:
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


# ---------------------------------------------------------------------------------------------
# folds: static tensors the hubcls layer holds differently
@dataclass(frozen=True)
class StaticFold:
    """How a family meets a 2020 static program: ``fold(model, state) -> state`` rewrites the static
    tensors before matching; ``extra(model)`` lists the static names a fold consumes that have no
    parameter of their own (to name a combined file read without its program); ``absent(model)``
    the static names of parameters the 2020 program did not have (the fold supplies them);
    ``numerics(model) -> kwargs`` switches the model to the program's arithmetic where it differs
    from PaddleClas 2.x (the kwargs are recorded in ``model.arch_kwargs``, so a saved package
    keeps them)."""

    fold: Optional[Callable] = None
    extra: Optional[Callable] = None
    numerics: Optional[Callable] = None
    absent: Optional[Callable] = None


_FOLDS: Dict[str, StaticFold] = {}


def register_static_fold(family: str, fold: Optional[Callable] = None, *, extra: Optional[Callable] = None,
                         numerics: Optional[Callable] = None, absent: Optional[Callable] = None) -> None:
    """Register how ``family`` (class name or ``key_family``) loads 2020 static weights exactly."""
    from ..errors import RegistryError

    key = family.lower()
    new = StaticFold(fold, extra, numerics, absent)
    if key in _FOLDS and _FOLDS[key] != new:
        raise RegistryError(f"duplicate static fold for family {family!r}")
    _FOLDS[key] = new


def _fold_for(model) -> Optional[StaticFold]:
    family = getattr(model, "key_family", None) or type(model).__name__
    return _FOLDS.get(family.lower())


def apply_static_fold(model: "paddle.nn.Layer", state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The family's fold applied to a static ``state`` (unchanged when it has none)."""
    f = _fold_for(model)
    return f.fold(model, dict(state)) if f is not None and f.fold is not None else state


def apply_static_numerics(model: "paddle.nn.Layer") -> Dict[str, object]:
    """Switch ``model`` to its family's 2020 static arithmetic; returns the kwargs that did it."""
    f = _fold_for(model)
    if f is None or f.numerics is None:
        return {}
    kwargs = dict(f.numerics(model))
    if isinstance(getattr(model, "arch_kwargs", None), dict):
        model.arch_kwargs.update(kwargs)
    return kwargs


def all_static_names(model: "paddle.nn.Layer") -> List[str]:
    """Every static name a complete static file of ``model`` holds (parameters + folded extras)."""
    names = list(static_names(model).values())
    f = _fold_for(model)
    if f is not None and f.extra is not None:
        names += list(f.extra(model))
    if f is not None and f.absent is not None:
        gone = set(f.absent(model))
        names = [n for n in names if n not in gone]
    return names


def name_tensors(model: "paddle.nn.Layer", state: Union[Dict[str, np.ndarray], UnnamedTensors]
                 ) -> Dict[str, np.ndarray]:
    """Give an :class:`UnnamedTensors` (a combined file without its program) the names of the
    model's static parameters in Paddle's save order (sorted by name); dicts pass through."""
    if not isinstance(state, UnnamedTensors):
        return state
    names = sorted(all_static_names(model))
    source = state.source or "combined parameter file"
    if not names:
        raise WeightsError(f"{source}: no program beside it and {type(model).__name__} has no Paddle 1.x "
                           f"static names to name its {len(state)} tensors with")
    if len(names) != len(state):
        raise WeightsError(f"{source}: {len(state)} tensors, but {type(model).__name__} has {len(names)} "
                           f"static parameters; put the program (__model__) beside it, or pick the "
                           f"architecture the file was saved from")
    return dict(zip(names, state))


def folded_bn_mean(state: Dict[str, np.ndarray], bias: str, mean: str) -> None:
    """A conv bias followed by BatchNorm is the same as no bias and ``mean - bias``: fold it."""
    if bias in state and mean in state:
        state[mean] = (state[mean] - state.pop(bias)).astype(state[mean].dtype)


def scale_tensor(state: Dict[str, np.ndarray], name: str, factor: float) -> None:
    """Multiply a static tensor in place of the state (an inference-time scale folded into weights)."""
    if name in state:
        state[name] = (state[name] * factor).astype(state[name].dtype)


__all__ = [
    "ProgramVar", "UnnamedTensors", "StaticFold", "parse_program", "read_lod_tensor", "read_combined",
    "write_lod_tensor", "write_combined", "read_static_dir", "read_static_tar", "read_static_file",
    "is_static_file", "static_names", "static_map", "rename", "conv_bn_rules", "bn_rules", "fc_rules",
    "register_static_fold", "apply_static_fold", "apply_static_numerics", "all_static_names", "name_tensors", "folded_bn_mean",
    "scale_tensor",
]
