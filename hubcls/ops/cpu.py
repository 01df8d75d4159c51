"""Which CPU kernels run: the C++ core is compiled once per instruction-set level (scalar, avx2,
avx512) and picks the best one this CPU supports at run time. ``HUBCLS_CPU_ISA=avx2`` (or
``scalar``) in the environment caps the level for a process; :func:`set_cpu_isa` changes it (tests
and benchmarks use it to run every level on one machine)."""
from __future__ import annotations

import contextlib
import os
import warnings

from .. import _C

ISAS = tuple(_C.Isa.__members__)  # ("scalar", "avx2", "avx512"), lowest first

_env = os.environ.get("HUBCLS_CPU_ISA")
if _env and _env not in ISAS:
    warnings.warn(f"HUBCLS_CPU_ISA={_env!r} is not one of {', '.join(ISAS)}; ignored", RuntimeWarning, stacklevel=2)


def cpu_isa() -> str:
    """The instruction-set level the CPU kernels use now."""
    return _C.active_isa().name


def supported_cpu_isas() -> list[str]:
    """Levels this build has kernels for and this CPU can run, lowest first."""
    return [isa.name for isa in _C.supported_isas()]


def set_cpu_isa(name: str) -> None:
    """Use the kernels of level `name` from now on (process-wide). ValueError if this build or CPU
    cannot run it."""
    if name not in ISAS:
        raise ValueError(f"CPU ISA must be one of {', '.join(ISAS)}, got {name!r}")
    _C.set_active_isa(_C.Isa.__members__[name])


@contextlib.contextmanager
def using_cpu_isa(name: str):
    """Run the block with the kernels of level `name`, then restore the previous level."""
    prev = cpu_isa()
    set_cpu_isa(name)
    try:
        yield
    finally:
        set_cpu_isa(prev)
