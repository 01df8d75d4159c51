"""Suite-wide setup: a hermetic, parallel-safe test run (issue 16.6).

* One temporary directory per test run (per pytest-xdist worker) holds ``HUBCLS_HOME`` (the weights
  download cache and the exported-backend cache, hubcls/deploy/_cache.py) and Hypothesis's storage.
  It is set here, when pytest loads this file, before any test module imports hubcls; a test that
  needs its own cache still sets ``HUBCLS_HOME`` itself (monkeypatch).
* A write guard (tests/_write_guard/sitecustomize.py) fails every test that writes into the checkout
  or into the user's hubcls cache, in this process and in the Python processes the test starts; at
  the end of the run, new entries in ``git status`` fail the run too (writes no audit hook sees).
* Under pytest-xdist (``python -m pytest -q -n 2``, opt-in) each worker gets its share of the CPUs
  as OpenMP threads, tests that share a module-scoped fixture run on one worker (the fixture is
  built once: one architecture of tests/test_models_all.py per unit), and the giant models run
  one at a time on one worker (memory).
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_GUARD_DIR = Path(__file__).resolve().parent / "_write_guard"

# ------------------------------------------------------------------ isolation (before hubcls imports)
# Where this run must not write: the checkout, the user's hubcls cache (default and configured).
# xdist workers inherit the controller's list (their HUBCLS_HOME is already the controller's).
if os.environ.get("HUBCLS_TEST_WRITE_GUARD"):
    _FORBIDDEN = os.environ["HUBCLS_TEST_WRITE_GUARD"].split(os.pathsep)
else:
    _FORBIDDEN = [str(REPO), str(Path.home() / ".cache" / "hubcls")]
    if os.environ.get("XDG_CACHE_HOME"):
        _FORBIDDEN.append(str(Path(os.environ["XDG_CACHE_HOME"]) / "hubcls"))
    if os.environ.get("HUBCLS_HOME"):
        _FORBIDDEN.append(str(Path(os.environ["HUBCLS_HOME"]).expanduser()))

# an xdist worker's directory lives inside the controller's, which removes it at the end
_PARENT_RUN_DIR = os.environ.get("HUBCLS_TEST_RUN_DIR")
RUN_DIR = Path(tempfile.mkdtemp(prefix="hubcls-tests-", dir=_PARENT_RUN_DIR if _PARENT_RUN_DIR and
                                os.path.isdir(_PARENT_RUN_DIR) else None))
os.environ["HUBCLS_TEST_RUN_DIR"] = str(RUN_DIR)
atexit.register(shutil.rmtree, RUN_DIR, ignore_errors=True)  # also when pytest stops before configure
os.environ["HUBCLS_HOME"] = str(RUN_DIR / "hubcls_home")
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(RUN_DIR / "hypothesis")

_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    # N workers x all-CPU OpenMP pools would oversubscribe the machine; each gets its share
    try:
        _cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        _cpus = os.cpu_count() or 1
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cpus // _WORKERS))

# ------------------------------------------------------------------ write guard
def _load_guard_module():
    """The guard module: the one this interpreter ran as sitecustomize (an xdist worker is a child
    of the controller), else loaded from its file."""
    import importlib.util

    site = sys.modules.get("sitecustomize")
    if site is not None and Path(getattr(site, "__file__", "") or "").resolve() == _GUARD_DIR / "sitecustomize.py":
        return site
    spec = importlib.util.spec_from_file_location("_hubcls_write_guard", _GUARD_DIR / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_write_guard = _load_guard_module()
_GUARD_LOG = RUN_DIR / "write_guard.log"
_guard = None
_git_before = None


def _git_status():
    """New/modified paths ``git status`` shows (untracked, not ignored), or None outside a checkout."""
    try:
        r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return set(r.stdout.splitlines()) if r.returncode == 0 else None


def pytest_configure(config):
    global _guard, _git_before
    # -n N without a --dist of the user's choice: loadgroup, so the work units below hold (pytest-xdist
    # is optional, hence here rather than in addopts). Workers parse the command line again, so the
    # controller tells them through the environment (they start after this).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        if os.environ.get("HUBCLS_TEST_XDIST_LOADGROUP") == "1":
            config.option.loadgroup = True  # what xdist sets from --dist loadgroup
    elif (getattr(config.option, "dist", "no") == "load"
          and not any(a == "-d" or a.startswith("--dist") for a in config.invocation_params.args)):
        config.option.dist = "loadgroup"
        os.environ["HUBCLS_TEST_XDIST_LOADGROUP"] = "1"
    allowed = [str(RUN_DIR)]
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:  # a --basetemp inside the checkout is the user's choice
        allowed.append(str(factory.getbasetemp()))
    os.environ["HUBCLS_TEST_WRITE_GUARD"] = os.pathsep.join(_FORBIDDEN)
    os.environ["HUBCLS_TEST_WRITE_GUARD_ALLOW"] = os.pathsep.join(allowed)
    os.environ["HUBCLS_TEST_WRITE_GUARD_LOG"] = str(_GUARD_LOG)
    # child Pythons import the guard as their sitecustomize (it then runs the one it shadows)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(_GUARD_DIR)] + [p for p in os.environ.get(
        "PYTHONPATH", "").split(os.pathsep) if p and p != str(_GUARD_DIR)])
    _guard = _write_guard.install(_FORBIDDEN, allowed)
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller (or a plain run) checks git
        _git_before = _git_status()


def pytest_unconfigure(config):
    shutil.rmtree(RUN_DIR, ignore_errors=True)


def _guard_findings():
    """Forbidden writes since the last call: this process's, then its children's (log file)."""
    found = [f"{event} {path}" for event, path in _guard.found] if _guard is not None else []
    if _guard is not None:
        _guard.found.clear()
    if _GUARD_LOG.exists():
        with open(_GUARD_LOG, encoding="utf-8") as f:
            lines = f.read().splitlines()
        _GUARD_LOG.unlink()
        found += [" ".join(ln.split("\t")[:2]) + "  (child: " + ln.split("\t")[-1] + ")" for ln in lines]
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when == "setup":
        _guard_findings()  # whatever happened between tests belongs to no test
    if call.when != "teardown":
        return
    found = _guard_findings()
    if not found:
        return
    report = outcome.get_result()
    report.outcome = "failed"
    shown = "\n  ".join(sorted(set(found))[:20])
    report.longrepr = (f"{item.nodeid} wrote where tests must not (the checkout or the user's hubcls cache; "
                       f"use tmp_path / HUBCLS_HOME):\n  {shown}")


def pytest_sessionfinish(session, exitstatus):
    if _git_before is None:
        return
    after = _git_status()
    new = sorted((after or set()) - _git_before)
    if new:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = "the test run changed the checkout (git status):\n  " + "\n  ".join(new[:50])
        if tr is not None:
            tr.write_sep("=", "write guard", red=True)
            tr.write_line(msg)
        else:
            print(msg, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ------------------------------------------------------------------ pytest-xdist work units
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests that use a module-scoped fixture form one xdist work unit per module (and per value of
    a parametrised module fixture), so the fixture is built once; tests with an explicit
    ``xdist_group`` mark keep it. Only ``--dist loadgroup`` reads these marks."""
    for item in items:
        if any(True for _ in item.iter_markers("xdist_group")):
            continue
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = sorted(name for name, defs in info.name2fixturedefs.items()
                        if defs and defs[-1].scope in ("module", "class", "package"))
        if not shared:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        key = ",".join(f"{n}={params[n]}" for n in shared if n in params)
        group = item.nodeid.split("::")[0] + (f"::{key}" if key else "")
        # xdist reads the group after the last '@' of a node id that ends in ']' (params): keep both out
        item.add_marker(pytest.mark.xdist_group(group.replace("@", "_").replace("]", ")").replace("[", "(")))


# ------------------------------------------------------------------ background work per test
@pytest.fixture(autouse=True)
def _background_switches_end_with_their_test():
    """A Module built with backend "auto" exports and times backends in a background thread; one left
    running past its test wrote into a tmp HUBCLS_HOME already deleted (a warning per test) and took
    CPU from the tests after it. Each test's switches stop at its end (its Modules keep answering on
    the backend they have)."""
    yield
    pipeline = sys.modules.get("hubcls.deploy.pipeline")
    if pipeline is not None:
        pipeline.stop_background_switches()
