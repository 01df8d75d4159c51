"""``hubcls info``: versions, build flags, SIMD level, CUDA, threads and the Paddle device."""
from __future__ import annotations

import json
import platform


def collect_info() -> dict:
    from .. import __version__
    from .._paddle import paddle_device, paddle_version
    from ..ops import core_build_info

    import numpy

    info = {
        "hubcls": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "paddle": paddle_version() or "not installed",
        "paddle_device": paddle_device(),
    }
    try:
        import cv2

        info["opencv"] = cv2.__version__
    except ImportError:
        info["opencv"] = "not installed"
    info["core"] = core_build_info()
    return info


def _run(args) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    core = info.pop("core")
    width = max(len(k) for k in list(info) + ["C++ core"]) + 2
    for key, value in info.items():
        print(f"{key:<{width}}{value}")
    print(f"{'C++ core':<{width}}hubcls._C (built)")
    for key, value in core.items():
        print(f"  {key:<{width - 2}}{value}")
    return 0


def register(sub):
    p = sub.add_parser("info", help="versions, build flags, SIMD level, CUDA and Paddle device")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=_run)
