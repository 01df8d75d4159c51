"""One place that imports Paddle, so a missing install gives one clear error."""
from __future__ import annotations

import warnings
from types import ModuleType

from .errors import PaddleNotInstalledError

_INSTALL_HINT = (
    "hubcls needs PaddlePaddle, which is not installed. Install the build for your machine:\n"
    "  pip install 'hubcls[cpu]'   # CPU: paddlepaddle\n"
    "  pip install 'hubcls[gpu]'   # CUDA: paddlepaddle-gpu (see paddlepaddle.org.cn for the wheel matching your CUDA)"
)


def import_paddle() -> ModuleType:
    """Return the ``paddle`` module or raise PaddleNotInstalledError with install instructions."""
    try:
        with warnings.catch_warnings():
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
