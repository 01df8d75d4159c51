"""The test suite's own isolation (tests/conftest.py, tests/_write_guard/): each run has its own
HUBCLS_HOME, and the write guard sees writes into forbidden roots, in-process and in child Pythons."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GUARD_DIR = Path(__file__).resolve().parent / "_write_guard"
REPO = Path(__file__).resolve().parent.parent


def _guard_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_guard_under_test", GUARD_DIR / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hubcls_home_is_this_runs_own():
    from hubcls import _download
    from hubcls.deploy import _cache

    run_dir = Path(os.environ["HUBCLS_TEST_RUN_DIR"])
    assert run_dir.name.startswith("hubcls-tests-") and run_dir.is_dir()
    for home in (_download.hubcls_home(), _cache.hubcls_home()):
        assert home == run_dir / "hubcls_home"
        assert not str(home).startswith(str(REPO))
        assert not str(home).startswith(str(Path.home() / ".cache" / "hubcls"))
    assert os.environ["HYPOTHESIS_STORAGE_DIRECTORY"].startswith(str(run_dir))


def test_guard_records_writes_under_forbidden_roots_only(tmp_path):
    guard = _guard_module().Guard([tmp_path / "repo"], [tmp_path / "repo" / "scratch"])
    repo = tmp_path / "repo"
    guard("open", (str(repo / "a.txt"), "w", 0))
    guard("open", (str(repo / "b.txt"), "r", os.O_RDONLY))            # a read
    guard("open", (str(repo / "c.bin"), None, os.O_WRONLY | os.O_CREAT))  # os.open flags
    guard("open", (str(repo / "scratch" / "d.txt"), "w", 0))          # allowed inside the root
    guard("open", (str(repo / "pkg" / "__pycache__" / "m.pyc"), "wb", 0))  # byte code
    guard("open", (str(tmp_path / "elsewhere.txt"), "w", 0))          # outside every root
    guard("os.rename", (str(tmp_path / "x"), str(repo / "moved"), -1, -1))
    guard("os.mkdir", (str(repo / "new_dir"), 0o777, -1))
    guard("shutil.rmtree", (str(repo / "old_dir"),))
    guard("os.remove", (3,))                                          # a descriptor: its open was checked
    assert guard.found == [("open", str(repo / "a.txt")), ("open", str(repo / "c.bin")),
                           ("os.rename", str(repo / "moved")), ("os.mkdir", str(repo / "new_dir")),
                           ("shutil.rmtree", str(repo / "old_dir"))]


def test_guard_sees_the_writes_of_a_child_python(tmp_path):
    """A child interpreter imports the guard as its sitecustomize (PYTHONPATH) and logs its writes."""
    repo, log = tmp_path / "repo", tmp_path / "guard.log"
    repo.mkdir()
    env = dict(os.environ, HUBCLS_TEST_WRITE_GUARD=str(repo), HUBCLS_TEST_WRITE_GUARD_ALLOW="",
               HUBCLS_TEST_WRITE_GUARD_LOG=str(log),
               PYTHONPATH=os.pathsep.join([str(GUARD_DIR), os.environ.get("PYTHONPATH", "")]))
    code = f"from pathlib import Path; Path({str(repo / 'out.txt')!r}).write_text('x'); print(open({str(repo / 'out.txt')!r}).read())"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "x"  # the guard records, it does not block
    lines = [ln.split("\t") for ln in log.read_text().splitlines()]
    assert [(ln[0], ln[1]) for ln in lines] == [("open", str(repo / "out.txt"))]  # the read is not logged
    assert int(lines[0][2]) != os.getpid()


def test_guard_resolves_paths_relative_to_a_directory_descriptor(tmp_path, monkeypatch):
    """shutil.rmtree (pytest's tmp_path clean-up) removes by name relative to an open directory: the
    guard must place those names in that directory, not in the working directory."""
    repo, other = tmp_path / "repo", tmp_path / "other"
    repo.mkdir()
    other.mkdir()
    monkeypatch.chdir(repo)
    guard = _guard_module().Guard([repo])
    fd = os.open(other, os.O_RDONLY)
    try:
        guard("os.remove", ("f.txt", fd))     # other/f.txt: allowed, although cwd is the repo
        guard("os.rename", ("a", "b", fd, fd))
        guard("os.remove", ("g.txt", -1))     # no descriptor: relative to cwd, the repo
    finally:
        os.close(fd)
    fd = os.open(repo, os.O_RDONLY)
    try:
        guard("os.rmdir", ("sub", fd))
    finally:
        os.close(fd)
    assert guard.found == [("os.remove", str(repo / "g.txt")), ("os.rmdir", str(repo / "sub"))]


@pytest.mark.parametrize("flag", ["w", "a", "x", "r+"])
def test_guard_write_modes(tmp_path, flag):
    guard = _guard_module().Guard([tmp_path])
    guard("open", (str(tmp_path / "f"), flag, 0))
    assert guard.found == [("open", str(tmp_path / "f"))]
