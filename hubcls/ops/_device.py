"""CUDA dispatch plumbing: recognise device arrays (``__cuda_array_interface__``, or DLPack with a
CUDA device via CuPy / torch), find their device and the producer's stream, and allocate outputs
with the producer's framework so they stay on the device. No framework is imported unless the
caller's object comes from it; Paddle is never imported here."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from .. import _C

_DLPACK_CUDA = {2, 13}  # kDLCUDA, kDLCUDAManaged


@dataclass
class DeviceArray:
    obj: object
    ptr: int
    shape: tuple
    strides: tuple  # bytes
    dtype: np.dtype
    device: int
    stream: int

    @property
    def c_contiguous(self) -> bool:
        expect, acc = [], self.dtype.itemsize
        for s in reversed(self.shape):
            expect.append(acc)
            acc *= s
        return all(st == e or dim == 1 for st, e, dim in zip(self.strides, reversed(expect), self.shape))


def has_cuda() -> bool:
    """This build has the CUDA kernels (whether a GPU is present is another matter)."""
    return hasattr(_C, "resize_crop_normalize_cuda")


def _framework(obj) -> str:
    return type(obj).__module__.split(".")[0]


def _current_stream(obj, device: int) -> int:
    fw = _framework(obj)
    if fw == "torch":
        import torch

        return int(torch.cuda.current_stream(device).cuda_stream)
    if fw == "cupy":
        import cupy

        with cupy.cuda.Device(device):
            return int(cupy.cuda.get_current_stream().ptr)
    return 0


def _via_dlpack(obj):
    """A CAI-capable view of a CUDA DLPack tensor (e.g. Paddle's), via CuPy or torch."""
    if "cupy" in sys.modules or _importable("cupy"):
        import cupy

        return cupy.from_dlpack(obj)
    if "torch" in sys.modules or _importable("torch"):
        import torch

        return torch.from_dlpack(obj)
    raise TypeError("CUDA DLPack tensors need CuPy or torch installed to be viewed by hubcls")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def device_array(obj) -> DeviceArray | None:
    """DeviceArray for CUDA arrays, None for host objects."""
    if isinstance(obj, np.ndarray):
        return None
    try:
        cai = obj.__cuda_array_interface__
    except (AttributeError, RuntimeError, TypeError):
        cai = None
    if cai is None:
        dev = getattr(obj, "__dlpack_device__", None)
        if dev is None:
            return None
        try:
            kind = int(dev()[0])
        except Exception:
            return None
        if kind not in _DLPACK_CUDA:
            return None
        view = _via_dlpack(obj)
        d = device_array(view)
        d.obj = view
        return d
    if not has_cuda():
        raise RuntimeError("this hubcls build has no CUDA kernels (rebuild with a CUDA toolkit: HUBCLS_CUDA=ON)")
    dtype = np.dtype(cai["typestr"])
    shape = tuple(int(s) for s in cai["shape"])
    strides = cai.get("strides")
    if strides is None:
        acc, st = dtype.itemsize, []
        for s in reversed(shape):
            st.append(acc)
            acc *= s
        strides = tuple(reversed(st))
    ptr = int(cai["data"][0])
    device = int(_C.cuda_pointer_device(ptr)) if ptr else 0
    stream = cai.get("stream")
    stream = _current_stream(obj, device) if stream is None else int(stream)
    return DeviceArray(obj, ptr, shape, tuple(int(s) for s in strides), dtype, device, stream)


def device_empty(like: DeviceArray, shape, dtype):
    """An uninitialised device array of `like`'s framework and device."""
    fw = _framework(like.obj)
    if fw == "torch":
        import torch

        tdt = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16, np.dtype(np.uint8): torch.uint8}
        return torch.empty(tuple(shape), dtype=tdt[np.dtype(dtype)], device=f"cuda:{like.device}")
    if fw == "cupy":
        import cupy

        with cupy.cuda.Device(like.device):
            return cupy.empty(tuple(shape), dtype=dtype)
    raise TypeError(f"cannot allocate a device output for a {type(like.obj).__name__}; pass out= (a CUDA array)")


def check_out(out, shape, dtype, device: int) -> DeviceArray:
    d = device_array(out)
    if d is None:
        raise ValueError("out must be a CUDA array when the inputs are on the GPU")
    if d.shape != tuple(shape) or d.dtype != np.dtype(dtype) or not d.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {np.dtype(dtype).name} CUDA array of shape {tuple(shape)}")
    if d.device != device:
        raise ValueError(f"out is on cuda:{d.device}, the inputs on cuda:{device}")
    return d


@dataclass
class DeviceImage:
    """One uint8 HW / HWC image on the device: pointer and geometry (row stride in bytes)."""
    ptr: int
    h: int
    w: int
    c: int
    row_stride: int
    array: DeviceArray


def device_images(images, channels=(1, 3, 4)):
    """None for host inputs; else (DeviceArray of the first input, [DeviceImage], kind) where kind
    is "list" (a list of images), "batch" (an NHWC batch: the pointer steps by the batch stride) or
    "single" (one HW / HWC image). Every image is checked: uint8, one device, 1..4 channels as
    allowed, non-empty, packed pixels."""
    if isinstance(images, (list, tuple)):
        if not images:
            return None
        arrs = [device_array(im) for im in images]
        if all(a is None for a in arrs):
            return None
        if any(a is None for a in arrs):
            raise TypeError("images mix host and CUDA arrays; put them all on one device")
        d0, kind = arrs[0], "list"
        views = [(a, a.shape, a.strides) for a in arrs]
    else:
        d0 = device_array(images)
        if d0 is None:
            return None
        kind = "batch" if len(d0.shape) == 4 else "single"
        # one shape for the whole batch: validate it once, then step the pointer
        views = [(d0, d0.shape[1:], d0.strides[1:])] if kind == "batch" else [(d0, d0.shape, d0.strides)]
    out = []
    for i, (a, shape, strides) in enumerate(views):
        if a.dtype != np.uint8:
            raise TypeError(f"image {i} must be uint8, got {a.dtype}")
        if a.device != d0.device:
            raise ValueError(f"image {i} is on cuda:{a.device}, image 0 on cuda:{d0.device}")
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in channels):
            raise ValueError(f"image {i} must be HW or HWC with {'/'.join(map(str, channels))} channels, got shape {shape}")
        if shape[0] == 0 or shape[1] == 0:
            raise ValueError(f"image {i} is empty (shape {shape})")
        c = 1 if len(shape) == 2 else shape[2]
        if strides[-1] != 1 or (len(shape) == 3 and strides[1] != c) or strides[0] < shape[1] * c:
            raise ValueError(f"image {i}: CUDA images need packed pixels (make it contiguous)")
        out.append(DeviceImage(a.ptr, shape[0], shape[1], c, strides[0], a))
    if kind == "batch":
        im = out[0]
        out = [DeviceImage(d0.ptr + i * d0.strides[0], im.h, im.w, im.c, im.row_stride, d0) for i in range(d0.shape[0])]
    return d0, out, kind
