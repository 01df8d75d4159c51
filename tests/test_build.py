"""The package builds, imports, reports its build, and is portable (no -march=native by default)."""
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hubcls
import hubcls.ops as ops
from hubcls import _C

ROOT = Path(__file__).resolve().parent.parent


def test_build_info_dict():
    info = _C.build_info()
    assert info["version"] == hubcls.__version__
    assert info["cpu_isa"] in ops.cpu.ISAS
    assert "scalar" in info["cpu_isas_compiled"]
    assert set(info["cpu_isas_supported"]) <= set(info["cpu_isas_compiled"])
    assert info["cpu_isa"] in info["cpu_isas_supported"]
    assert isinstance(info["cuda_compiled"], bool)
    assert info["cuda_devices"] >= 0
    if not info["cuda_compiled"]:
        assert info["cuda_devices"] == 0 and info["cuda_version"] is None
    assert info["max_threads"] >= 1
    assert "-O3" in info["cxx_flags"] or "-O1" in info["cxx_flags"]


def test_installed_build_is_portable():
    """The extension this suite runs was built with the defaults (CI: `pip install -e .`): no file
    is compiled for the build machine's CPU, and the SIMD levels come from per-file flags."""
    info = _C.build_info()
    assert "-march=native" not in info["cxx_flags"]
    assert "native" not in info["isa_flags"]
    for isa in info["cpu_isas_compiled"]:
        if isa != "scalar":
            assert f"{isa}:" in info["isa_flags"]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_default_configure_has_no_march_native(tmp_path):
    """Configure the project with its defaults (as a wheel build does) and read every compile
    command: none may carry -march=native, and only the *_avx2 / *_avx512 files get SIMD flags."""
    import pybind11

    build = tmp_path / "build"
    cmd = ["cmake", "-S", str(ROOT), "-B", str(build), "-DHUBCLS_CUDA=OFF", "-DCMAKE_BUILD_TYPE=Release",
           "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
           f"-DPython_EXECUTABLE={sys.executable}"]
    if shutil.which("ninja"):
        cmd += ["-G", "Ninja"]
    env = dict(os.environ)
    env.pop("CMAKE_ARGS", None)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    commands = json.loads((build / "compile_commands.json").read_text())
    assert len(commands) >= 10
    for c in commands:
        args = c.get("arguments") or shlex.split(c["command"])
        flags = [a for a in args if a.startswith(("-m", "-flto"))]  # not the -D strings that quote them
        name = Path(c["file"]).name
        assert "-march=native" not in flags, name
        assert not any(f.startswith("-flto") for f in flags), f"{name}: LTO would mix the per-ISA files"
        simd = [f for f in flags if f.startswith(("-mavx", "-mfma", "-mf16c"))]
        if name.endswith("_avx512.cpp"):
            assert "-mavx512f" in simd and "-mavx512vbmi" in simd
        elif name.endswith("_avx2.cpp"):
            assert "-mavx2" in simd and "-mavx512f" not in simd
        else:
            assert not simd, f"{name} is compiled with SIMD flags {simd}: it must run on every CPU"


def test_cli_version_and_info():
    out = subprocess.run([sys.executable, "-m", "hubcls", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"hubcls {hubcls.__version__}"
    out = subprocess.run([sys.executable, "-m", "hubcls", "info", "--json"], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    core = dict(_C.build_info())
    # max_threads is the OpenMP runtime's current setting (importing Paddle may lower it); the
    # build facts must agree exactly
    assert info["core"].pop("max_threads") >= 1
    core.pop("max_threads")
    assert info["core"] == core
    assert info["paddle_device"].startswith(("cpu", "gpu"))


def test_cli_info_says_compiled_with_versus_present():
    """`hubcls info` separates what the core was compiled with from the devices present: a CPU-only
    machine never reads as having CUDA."""
    out = subprocess.run([sys.executable, "-m", "hubcls", "info"], capture_output=True, text=True, check=True).stdout
    info = _C.build_info()
    cuda_line = next(line for line in out.splitlines() if line.strip().startswith("CUDA"))
    if info["cuda_compiled"]:
        assert f"compiled with CUDA {info['cuda_version']}" in cuda_line
        assert f"{info['cuda_devices']} device" in cuda_line
    else:
        assert "not compiled" in cuda_line and "True" not in cuda_line
    cpu_line = next(line for line in out.splitlines() if line.strip().startswith("CPU kernels"))
    assert info["cpu_isa"] in cpu_line
    assert "No ccache" not in out


def test_cpu_isa_selection_and_env_cap():
    supported = ops.supported_cpu_isas()
    assert supported[0] == "scalar" and ops.cpu_isa() == supported[-1]
    with ops.using_cpu_isa("scalar"):
        assert ops.cpu_isa() == "scalar"
    assert ops.cpu_isa() == supported[-1]
    with pytest.raises(ValueError, match="one of"):
        ops.set_cpu_isa("sse9")
    for isa in set(ops.cpu.ISAS) - set(supported):
        with pytest.raises(ValueError, match=isa):
            ops.set_cpu_isa(isa)
    # HUBCLS_CPU_ISA caps the level of a process
    code = "import hubcls.ops as o; print(o.cpu_isa())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, HUBCLS_CPU_ISA="scalar"))
    assert out.stdout.strip() == "scalar"


def _object_files():
    objs = sorted(ROOT.glob("build/*/CMakeFiles/_C.dir/csrc/**/*.o"))
    # only the build of the extension this suite imports (its directory holds the loaded _C)
    return [o for o in objs if o.stat().st_mtime >= Path(_C.__file__).stat().st_mtime - 3600]


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")
def test_only_the_per_isa_objects_contain_simd_instructions():
    """Read the object files of the installed build (pip install -e . builds in build/<tag>/): code
    outside *_avx2 / *_avx512 must contain no AVX instruction at all (VEX/EVEX encoded), or a CPU
    without AVX would crash in it; the per-ISA objects must contain them."""
    objs = _object_files()
    if not objs:
        pytest.skip("no object files of the installed build under build/ (built elsewhere)")
    if ".gnu.lto_" in subprocess.run(["objdump", "-h", str(objs[0])], capture_output=True, text=True).stdout:
        pytest.skip("objects hold LTO bytecode (a build before link-time optimisation was turned off): rebuild")
    wide = {}
    for o in objs:
        text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(o)], capture_output=True, text=True).stdout
        wide[o.name] = sum(1 for line in text.splitlines()
                           if "%ymm" in line or "%zmm" in line or (" v" in line and "%xmm" in line))
    for name, n in wide.items():
        if name.endswith(("_avx2.cpp.o", "_avx512.cpp.o")):
            assert n > 0, name
        else:
            assert n == 0, f"{name} contains {n} AVX instructions"
