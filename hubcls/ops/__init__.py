"""Python face of the C++/CUDA core (hubcls._C).

Each op validates its inputs here, dispatches to the CPU or CUDA kernel, and has a NumPy/PIL
reference implementation in ``hubcls.ops.reference`` that the tests compare it with.
"""
from __future__ import annotations

from .. import _C


def core_build_info() -> dict:
    """Build configuration of the compiled core (same dict as ``hubcls._C.build_info()``)."""
    return dict(_C.build_info())
