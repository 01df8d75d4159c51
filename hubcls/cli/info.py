"""``hubcls info``: versions, build flags, the CPU kernels in use, CUDA compiled-with vs devices present,
threads and the Paddle device."""
from __future__ import annotations

import json
import platform


def collect_info() -> dict:
    import numpy

    from .. import __version__
    from .._paddle import paddle_device, paddle_version
    from ..ops import core_build_info

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
    from ..deploy.backends import available_backends, cpu_bf16

    # what "auto" may choose from here (without loading any runtime), and whether bf16 is among it
    info["inference_backends"] = ", ".join(n for n, (ok, _) in available_backends("cpu").items() if ok)
    info["bf16"] = ("yes, " if cpu_bf16()[0] else "no: ") + cpu_bf16()[1]
    info["core"] = core_build_info()
    return info


def core_lines(core: dict) -> list[tuple[str, str]]:
    """The C++ core as (label, text) rows: what it was compiled with beside what this machine has."""
    cpu = (f"{core['cpu_isa']} (compiled: {', '.join(core['cpu_isas_compiled'])}; "
           f"this CPU runs: {', '.join(core['cpu_isas_supported'])})")
    if core["cuda_compiled"]:
        n = core["cuda_devices"]
        cuda = (f"compiled with CUDA {core['cuda_version']} ({core['cuda_archs']}), "
                f"{n} device{'' if n == 1 else 's'} present")
    else:
        cuda = "not compiled (CPU-only build)"
    threads = f"OpenMP, {core['max_threads']} threads" if core["openmp"] else "1 thread (built without OpenMP)"
    jpeg = (f"{core['jpeg']} (crop-aware, DCT-scaled)" if core.get("jpeg")
            else "not compiled (JPEGs decode whole through OpenCV/Pillow; install libjpeg-turbo's dev package)")
    return [("build", f"{core['compiler']}, {core['build_type']}, {core['cxx_flags']}"),
            ("CPU kernels", cpu), ("CUDA", cuda), ("threads", threads), ("JPEG decode", jpeg)]


def _run(args) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    core = info.pop("core")
    rows = core_lines(core)
    width = max(len(k) for k in list(info) + ["C++ core"] + [f"  {k}" for k, _ in rows]) + 2
    for key, value in info.items():
        print(f"{key:<{width}}{value}")
    print(f"{'C++ core':<{width}}hubcls._C {core['version']}")
    for key, value in rows:
        print(f"  {key:<{width - 2}}{value}")
    return 0


def register(sub):
    from ._common import add_parser

    p = add_parser(sub, "info", help="versions, build flags, SIMD level, CUDA and Paddle device",
                   examples=["hubcls info", "hubcls info --json > info.json"])
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=_run)
