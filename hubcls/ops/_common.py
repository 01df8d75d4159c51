"""Input plumbing shared by the op wrappers: array coercion (NumPy, DLPack), image checks, and the
core's enums read by name (the C++ core defines them; nothing here repeats their values)."""
from __future__ import annotations

import math

import numpy as np

from .. import _C

# name -> enum of the core (hubcls._C.OutDType / Interp); the names are the user-facing strings
DTYPES = {name: (code, np.dtype(name).type) for name, code in _C.OutDType.__members__.items()}
DTYPE_CODES = {np.dtype(name): code for name, code in _C.OutDType.__members__.items()}
INTERPOLATIONS = dict(_C.Interp.__members__)
LAYOUTS = ("NCHW", "NHWC")


def as_array(obj, what: str = "input") -> np.ndarray:
    """A NumPy view of `obj` without copying: ndarrays pass through, DLPack producers (Paddle,
    torch, CuPy on CPU) go through np.from_dlpack, other buffers through np.asarray."""
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "__dlpack__"):
        try:
            return np.from_dlpack(obj)
        except (RuntimeError, BufferError, TypeError) as e:
            raise TypeError(f"{what}: cannot view this {type(obj).__name__} as a host array ({e}); "
                            "device tensors need the CUDA build of hubcls") from e
    try:
        return np.asarray(obj)
    except Exception as e:  # pragma: no cover - exotic objects
        raise TypeError(f"{what}: expected a NumPy array or a DLPack tensor, got {type(obj).__name__}") from e


def check_dtype(name: str) -> tuple:
    """(core dtype enum, NumPy scalar type) of a dtype name or NumPy dtype."""
    key = np.dtype(name).name if not isinstance(name, str) else name
    if key not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[key]


def check_layout(layout: str) -> bool:
    """True for NCHW."""
    if not isinstance(layout, str) or layout.upper() not in LAYOUTS:
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return layout.upper() == "NCHW"


def check_num_threads(num_threads) -> int:
    if num_threads is None:
        return 0
    if not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
    return int(num_threads)


def size_hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        try:
            h, w = (int(s) for s in size)
        except (TypeError, ValueError):
            raise ValueError(f"size must be an int or (h, w), got {size!r}") from None
        if any(not float(s).is_integer() for s in size):
            raise ValueError(f"size must be integers, got {size!r}")
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w


def triple(v, name: str) -> tuple[float, float, float]:
    if v is None:
        return None
    try:
        t = (float(v),) * 3 if isinstance(v, (int, float, np.number)) else tuple(float(x) for x in v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a scalar or 3 finite numbers, got {v!r}") from None
    if len(t) == 1:
        t = t * 3
    if len(t) != 3 or not all(math.isfinite(x) for x in t):
        raise ValueError(f"{name} must be a scalar or 3 finite numbers, got {v!r}")
    return t


def check_image(a: np.ndarray, i: int, channels=(1, 3, 4)) -> np.ndarray:
    """A uint8 HW / HWC image as the kernels read it: packed pixels, any row stride (anything else
    is copied once). Raises TypeError / ValueError naming image `i`."""
    if a.dtype != np.uint8:
        raise TypeError(f"image {i} must be uint8, got {a.dtype}")
    if a.ndim not in (2, 3):
        raise ValueError(f"image {i} must be HW or HWC, got shape {a.shape}")
    if a.ndim == 3 and a.shape[2] not in channels:
        allowed = ", ".join(map(str, channels[:-1])) + f" or {channels[-1]}"
        raise ValueError(f"image {i} must have {allowed} channels, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"image {i} is empty (shape {a.shape})")
    c = 1 if a.ndim == 2 else a.shape[2]
    if a.strides[-1] != 1 or (a.ndim == 3 and a.strides[1] != c) or a.strides[0] <= 0:
        a = np.ascontiguousarray(a)
    return a
