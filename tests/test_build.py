"""The package builds, imports, and reports its build."""
import subprocess
import sys

import hubcls
from hubcls import _C


def test_build_info_dict():
    info = _C.build_info()
    assert info["version"] == hubcls.__version__
    assert info["simd"] in {"AVX512", "AVX2", "AVX", "SSE4.2", "NEON", "scalar"}
    assert isinstance(info["cuda"], bool)
    assert info["max_threads"] >= 1
    assert "-O3" in info["cxx_flags"] or "-O1" in info["cxx_flags"]


def test_cli_version_and_info():
    out = subprocess.run([sys.executable, "-m", "hubcls", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"hubcls {hubcls.__version__}"
    out = subprocess.run([sys.executable, "-m", "hubcls", "info", "--json"], capture_output=True, text=True, check=True)
    import json

    info = json.loads(out.stdout)
    core = dict(_C.build_info())
    # max_threads is the OpenMP runtime's current setting (importing Paddle may lower it); the
    # build facts must agree exactly
    assert info["core"].pop("max_threads") >= 1
    core.pop("max_threads")
    assert info["core"] == core
    assert info["paddle_device"].startswith(("cpu", "gpu"))
