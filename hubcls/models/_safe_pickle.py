"""Reading Paddle's pickle files (``.pdparams``, ``.pdopt``, ``.pdckpt``) without running their code.

A pickle is a program: loading one with ``pickle.load`` / ``paddle.load`` calls whatever Python
function the file names, so a weights file from a mirror, a colleague or a model hub can run any
code. This unpickler rebuilds only what ``paddle.save`` writes and refuses every other global with a
:class:`~hubcls.errors.UnsafeFileError` that names the file and the refused ``module.name``:

* NumPy arrays (``numpy[._]core.multiarray._reconstruct`` + ``numpy.ndarray`` + ``numpy.dtype``) of
  plain numeric/bool dtypes (bf16 tensors arrive as uint16 arrays, as paddle.save writes them);
  NumPy scalars (``numpy[._]core.multiarray.scalar``).
* Paddle tensors the way Paddle 2.x/3.x pickle them: a state dict's tensors as plain arrays (plus the
  ``StructuredToParameterName@@`` name table), nested tensors as ``tuple((name, array))``,
  DenseTensors as ``eval('data', {'data': array})`` (only that exact expression is accepted), big
  arrays split by ``UnpackBigParamInfor@@`` (protocol 2/3).
* Paddle's RNG ``GeneratorState`` (in training checkpoints): its state must be ints and a list of ints.
* Plain containers (dict, OrderedDict, list, tuple, set), numbers, strings, bytes, None; Python 2
  pickles (protocol 2 with ``_codecs.encode(..., 'latin1')`` bytes, ``__builtin__`` names).

Nothing is imported on the file's behalf: the allowed names map to small local constructors that
check their arguments; arrays and dtypes are built by this module, not by NumPy's pickle hooks.
Array data is bounded by the file's own size (a file cannot make the loader allocate more array
bytes than it holds), and the file is read from a memory map, so a length inside the stream cannot
make the reader allocate more than the file holds.

The result is what ``paddle.load(path, return_numpy=...)`` returns for the same file.
"""
from __future__ import annotations

import io
import mmap
import os
import pickle
import re
import stat
from collections import OrderedDict
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import UnsafeFileError, WeightsError

NAME_TABLE_KEY = "StructuredToParameterName@@"
BIG_PARAM_KEY = "UnpackBigParamInfor@@"  # (sic) Paddle's spelling

# dtype codes a Paddle tensor can have (bool, ints, floats incl. fp16; bf16 is stored as uint16)
_DTYPE_KINDS = "biufc"


class _Refused(Exception):
    """Raised inside the unpickler; turned into UnsafeFileError (which names the file) outside."""


class _Malformed(Exception):
    """An allowed global called with arguments paddle.save never writes."""


# ---------------------------------------------------------------------------------------------
# stand-ins the pickle stream builds; _finish() turns them into real NumPy/Paddle objects
class _DType:
    """``numpy.dtype(spec, align, copy)`` + BUILD(state) -> a plain numeric dtype."""

    __slots__ = ("dtype",)

    def __init__(self, spec, align=False, copy=True):
        if not isinstance(spec, str) or not re.fullmatch(r"[biufc]\d{1,2}|bool|b1", spec):
            raise _Malformed(f"dtype {spec!r} is not a plain numeric dtype")
        dt = np.dtype(spec)
        if dt.kind not in _DTYPE_KINDS or dt.hasobject:
            raise _Malformed(f"dtype {spec!r} is not a plain numeric dtype")
        self.dtype = dt

    def __setstate__(self, state):
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise _Malformed(f"dtype state {state!r:.80}")
        order = state[1]
        if order not in ("<", ">", "|", "=") or any(s is not None for s in state[2:5]):
            raise _Malformed(f"dtype state {state!r:.80}")
        if len(state) == 9 and state[8] is not None:
            raise _Malformed("dtype with metadata")
        if order in ("<", ">") and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(order)


class _NDArrayClass:
    """What ``numpy.ndarray`` resolves to: only usable as _reconstruct's first argument."""


_NDARRAY = _NDArrayClass()


class _Array:
    """``_reconstruct(ndarray, (0,), b'b')`` + BUILD((version, shape, dtype, fortran, data))."""

    __slots__ = ("array", "budget")

    def __init__(self, budget):
        self.array = None
        self.budget = budget

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Malformed("ndarray state is not a 4/5-tuple")
        if len(state) == 5:
            state = state[1:]  # drop the version
        shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DType):
            raise _Malformed("ndarray state without a dtype")
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise _Malformed(f"ndarray shape {shape!r:.80}")
        if isinstance(raw, str):  # Python 2 pickle read with encoding='latin1'
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)):
            raise _Malformed(f"ndarray data of type {type(raw).__name__}")
        dt = dtype.dtype
        count = 1
        for d in shape:
            count *= d
        if count * dt.itemsize != len(raw):
            raise _Malformed(f"ndarray of shape {shape} {dt} needs {count * dt.itemsize} bytes, data has {len(raw)}")
        self.budget.take(len(raw))
        arr = np.frombuffer(raw, dtype=dt, count=count).reshape(shape, order="F" if fortran else "C")
        # a copy in native byte order (what NumPy's own unpickling returns for a big-endian array)
        self.array = arr.astype(dt.newbyteorder("="), order="K", copy=True)


class _Budget:
    """Array bytes a file may materialise: no more than the file holds (stops memo-reuse blowups)."""

    __slots__ = ("left",)

    def __init__(self, limit):
        self.left = limit

    def take(self, n):
        self.left -= n
        if self.left < 0:
            raise _Malformed("the file builds more array data than it contains (a reused buffer)")


class _GeneratorState:
    """Paddle's RNG state (``paddle.base.libpaddle.GeneratorState``) as NEWOBJ + BUILD(state)."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) >= 1
                and all(isinstance(s, int) or s is None
                        or (isinstance(s, list) and all(isinstance(i, int) for i in s)) for s in state)):
            raise _Malformed("GeneratorState with a non-integer state")
        self.state = state


# ---------------------------------------------------------------------------------------------
# the allowed globals: (module, name) -> factory(unpickler) -> callable the stream may use
def _reconstruct_factory(u):
    def _reconstruct(cls, shape, typecode):
        if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
            raise _Malformed("numpy _reconstruct of something other than a plain ndarray")
        return _Array(u.budget)

    return _reconstruct


def _scalar_factory(u):
    def _scalar(dtype, raw=None):
        if not isinstance(dtype, _DType):
            raise _Malformed("numpy scalar without a dtype")
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != dtype.dtype.itemsize:
            raise _Malformed("numpy scalar data does not match its dtype")
        u.budget.take(len(raw))
        return np.frombuffer(raw, dtype=dtype.dtype, count=1)[0]

    return _scalar


def _dense_tensor_eval(expr, env=None, *rest):
    # paddle.save writes a DenseTensor as eval('data', {'data': array}); nothing else is evaluated
    if rest or expr != "data" or not isinstance(env, dict) or set(env) != {"data"}:
        raise _Malformed("builtins.eval of something other than paddle's eval('data', {'data': array})")
    return env["data"]


def _codecs_encode(text, encoding="utf-8", errors="strict"):
    # protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, 'latin1')
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise _Malformed("_codecs.encode with a codec other than latin1")
    return text.encode("latin1")


def _const(obj):
    return lambda u: obj


_NUMPY_CORES = ("numpy.core.multiarray", "numpy._core.multiarray")
_ALLOWED = {
    **{(m, "_reconstruct"): _reconstruct_factory for m in _NUMPY_CORES},
    **{(m, "scalar"): _scalar_factory for m in _NUMPY_CORES},
    ("numpy", "ndarray"): _const(_NDARRAY),
    ("numpy", "dtype"): _const(_DType),
    ("collections", "OrderedDict"): _const(OrderedDict),
    ("builtins", "tuple"): _const(tuple),
    ("builtins", "list"): _const(list),
    ("builtins", "dict"): _const(dict),
    ("builtins", "set"): _const(set),
    ("builtins", "frozenset"): _const(frozenset),
    ("builtins", "bytearray"): _const(bytearray),
    ("builtins", "complex"): _const(complex),
    ("builtins", "eval"): _const(_dense_tensor_eval),
    ("_codecs", "encode"): _const(_codecs_encode),
}
# Python 2 spellings (pickle's own fix_imports table does this mapping in the default find_class)
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
_GENERATOR_STATE = re.compile(r"paddle\.(base|fluid)\.(libpaddle|core_avx|core_noavx|core)")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data):
        # an mmap is read in place (no copy of the whole file); bytes through a BytesIO view
        super().__init__(data if isinstance(data, mmap.mmap) else io.BytesIO(data), encoding="latin1")
        self.budget = _Budget(len(data))

    def find_class(self, module, name):
        module = _PY2_MODULES.get(module, module)
        factory = _ALLOWED.get((module, name))
        if factory is not None:
            return factory(self)
        if name == "GeneratorState" and _GENERATOR_STATE.fullmatch(module):
            return _GeneratorState
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {pid!r:.60}")


# ---------------------------------------------------------------------------------------------
def _finish(obj, seen=None) -> Any:
    """Replace the stand-ins by real objects (arrays, dtypes, GeneratorState) throughout."""
    if seen is None:
        seen = {}
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        return obj
    key = id(obj)
    if key in seen:
        if seen[key] is _IN_PROGRESS:
            raise _Malformed("a container that contains itself")
        return seen[key]
    seen[key] = _IN_PROGRESS
    if isinstance(obj, _Array):
        if not isinstance(obj.array, np.ndarray):
            raise _Malformed("an ndarray without data")
        out = obj.array
    elif isinstance(obj, _DType):
        out = obj.dtype
    elif isinstance(obj, _GeneratorState):
        out = _real_generator_state(obj)
    elif isinstance(obj, bytearray):
        out = obj
    elif type(obj) in (dict, OrderedDict):
        out = type(obj)((_finish(k, seen), _finish(v, seen)) for k, v in obj.items())
    elif type(obj) in (list, tuple, set, frozenset):
        out = type(obj)(_finish(v, seen) for v in obj)
    else:
        raise _Malformed(f"an object of type {type(obj).__name__}")
    seen[key] = out
    return out


_IN_PROGRESS = object()


def _real_generator_state(stub):
    state = getattr(stub, "state", None)
    if state is None:
        raise _Malformed("GeneratorState without state")
    try:
        from .._paddle import import_paddle

        cls = type(import_paddle().get_rng_state()[0])
        real = cls.__new__(cls)
        real.__setstate__(state)
        return real
    except Exception:  # noqa: BLE001 - another Paddle build's layout: keep the validated stub
        return stub


def _unpack_big_params(obj: dict) -> dict:
    """Paddle's protocol-2/3 split of >1 GiB arrays (io_utils._pack_loaded_dict)."""
    info = obj.get(BIG_PARAM_KEY)
    if not isinstance(info, dict):
        raise _Malformed(f"{BIG_PARAM_KEY} is not a dict")
    for key, rec in info.items():
        try:
            parts = [obj.pop(part) for part in rec["slices"]]
            obj[key] = np.concatenate(parts).reshape(tuple(rec["OriginShape"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise _Malformed(f"{BIG_PARAM_KEY} entry {key!r}: {exc}") from None
    del obj[BIG_PARAM_KEY]
    return obj


def _is_named_tensor(x) -> bool:  # Paddle 2.1+: a tensor pickled as tuple((name, ndarray))
    return isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], np.ndarray)


def _walk(obj, pred, fn):
    if pred(obj):
        return fn(obj)
    if type(obj) in (dict, OrderedDict):
        return type(obj)((k, _walk(v, pred, fn)) for k, v in obj.items())
    if type(obj) in (list, tuple):
        return type(obj)(_walk(v, pred, fn) for v in obj)
    return obj


def _contains(obj, pred) -> bool:
    if pred(obj):
        return True
    if type(obj) in (dict, OrderedDict):
        return any(_contains(v, pred) for v in obj.values())
    if type(obj) in (list, tuple):
        return any(_contains(v, pred) for v in obj)
    return False


def _as_paddle(obj, return_numpy: bool):
    """Paddle.load's post-processing: name table dropped, tensors as arrays or Paddle tensors."""
    if isinstance(obj, dict):
        if BIG_PARAM_KEY in obj:
            obj = _unpack_big_params(obj)
        if NAME_TABLE_KEY in obj:  # paddle 2.0 state dict: its arrays are the tensors
            obj.pop(NAME_TABLE_KEY)
            if return_numpy:
                return obj
            to_tensor = _tensor_maker()
            return type(obj)((k, to_tensor(v) if isinstance(v, np.ndarray) else v) for k, v in obj.items())
    if _contains(obj, _is_named_tensor):
        if return_numpy:
            return _walk(obj, _is_named_tensor, lambda t: t[1])
        to_tensor = _tensor_maker()
        return _walk(obj, _is_named_tensor, lambda t: to_tensor(t[1], t[0]))
    if return_numpy:
        return obj
    to_tensor = _tensor_maker()
    return _walk(obj, lambda x: isinstance(x, np.ndarray), to_tensor)


def _tensor_maker():
    from .._paddle import import_paddle

    paddle = import_paddle()

    def to_tensor(arr, name=None):
        t = paddle.to_tensor(arr)
        if name:
            t.name = name
        return t

    return to_tensor


# ---------------------------------------------------------------------------------------------
def safe_loads(data: Union[bytes, bytearray, memoryview, mmap.mmap], source: str = "<bytes>",
               return_numpy: bool = True) -> Any:
    """:func:`safe_load` for bytes (or an mmap) already in memory."""
    try:
        raw = _RestrictedUnpickler(data).load()
        return _as_paddle(_finish(raw), return_numpy)
    except _Refused as exc:
        raise UnsafeFileError(
            f"{source}: refused to load: the file's pickle asks for {exc}, which paddle.save never "
            f"writes (allowed: arrays, tensors, numbers, strings, containers). A pickle that names "
            f"other Python objects can run code when loaded, so hubcls does not load it. If you "
            f"trust its origin, convert it once to .safetensors in a separate, disposable "
            f"environment; see docs/security.md", source=source, refused=str(exc)) from None
    except _Malformed as exc:
        raise UnsafeFileError(f"{source}: not a valid Paddle pickle ({exc}); refused",
                              source=source, refused=None) from None
    except UnsafeFileError:
        raise
    except RecursionError:
        raise WeightsError(f"{source}: not a readable .pdparams/.pdckpt file (nested too deeply)") from None
    except Exception as exc:  # noqa: BLE001 - truncated / corrupt streams raise many types
        raise WeightsError(f"{source}: not a readable .pdparams/.pdckpt file ({type(exc).__name__}: {exc})") from None


def safe_load(path: Union[str, os.PathLike], return_numpy: bool = True) -> Any:
    """Load a ``paddle.save`` file (``.pdparams``/``.pdopt``/``.pdckpt``) without running code.

    Returns what ``paddle.load(path, return_numpy=return_numpy)`` would: with ``return_numpy``
    tensors come back as NumPy arrays, otherwise as Paddle tensors. Anything the file asks for
    beyond arrays, tensors, numbers, strings and containers raises UnsafeFileError naming the file
    and the refused global.
    """
    p = Path(os.fspath(path))
    try:
        # non-blocking open + fstat of that descriptor: a FIFO or device (which would block or
        # never end) is refused without a check-then-open race
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise WeightsError(f"{p}: no such file") from None
    except OSError as exc:
        raise WeightsError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise WeightsError(f"{p}: not a regular file, expected a .pdparams/.pdopt/.pdckpt file")
        if st.st_size == 0:
            return safe_loads(b"", source=str(p), return_numpy=return_numpy)
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
            return safe_loads(mm, source=str(p), return_numpy=return_numpy)
    except OSError as exc:
        raise WeightsError(f"{p}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
