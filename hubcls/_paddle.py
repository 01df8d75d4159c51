"""One place that imports Paddle, so a missing install gives one clear error."""
from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from types import ModuleType

from .errors import PaddleNotInstalledError

_INSTALL_HINT = (
    "hubcls needs PaddlePaddle, which is not installed. Install the build for your machine:\n"
    "  pip install 'hubcls[cpu]'   # CPU: paddlepaddle\n"
    "  pip install 'hubcls[gpu]'   # CUDA: paddlepaddle-gpu (see paddlepaddle.org.cn for the wheel matching your CUDA)"
)


# Paddle's first import prints this to stderr whenever OMP_NUM_THREADS > 1 (advice for its data-parallel
# OpenBLAS builds; hubcls sets the thread count on purpose): shown only with --verbose / HUBCLS_VERBOSE=1.
_OMP_NOISE = ("WARNING: OMP_NUM_THREADS set to ", "PLEASE USE OMP_NUM_THREADS WISELY.")


def _verbose() -> bool:
    return os.environ.get("HUBCLS_VERBOSE", "0").lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def _without_omp_notice():
    """Hold what Python code writes to sys.stderr inside the block; pass every line on except Paddle's
    OMP_NUM_THREADS notice (so nothing else Paddle says at import is lost)."""
    if "paddle" in sys.modules or _verbose():
        yield
        return
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    finally:  # also when the import fails: its own messages are kept
        kept = [line for line in held.getvalue().splitlines(keepends=True) if not line.startswith(_OMP_NOISE)]
        if kept:
            sys.stderr.write("".join(kept))


def import_paddle() -> ModuleType:
    """Return the ``paddle`` module or raise PaddleNotInstalledError with install instructions."""
    try:
        with warnings.catch_warnings(), _without_omp_notice():
            # Paddle warns about ccache for its C++-extension builder on every import; irrelevant here.
            warnings.filterwarnings("ignore", message=".*ccache.*")
            import paddle  # noqa: WPS433
    except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
        raise PaddleNotInstalledError(_INSTALL_HINT) from exc
    return paddle


def paddle_version() -> str | None:
    """"paddlepaddle[-gpu] <version>" of the installed Paddle distribution, or None."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    for dist in ("paddlepaddle-gpu", "paddlepaddle"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return None


def paddle_device() -> str:
    """'gpu:N' / 'cpu' as Paddle would run now, or 'unavailable' without Paddle."""
    try:
        paddle = import_paddle()
    except PaddleNotInstalledError:
        return "unavailable (Paddle not installed)"
    try:
        if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            return paddle.device.get_device()
    except Exception:  # noqa: BLE001 - a broken CUDA setup should not break `hubcls info`
        pass
    return "cpu"
