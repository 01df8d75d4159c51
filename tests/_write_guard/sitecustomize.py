"""Write guard of the test suite: record every write under a forbidden root (the checkout, the
user's hubcls cache), in the pytest process and in every Python process a test starts.

tests/conftest.py installs it in-process and puts this folder first on PYTHONPATH, so each child
Python imports this file as its ``sitecustomize`` (and then runs the ``sitecustomize`` it shadows,
e.g. a venv's own). Configuration travels in the environment:

* ``HUBCLS_TEST_WRITE_GUARD``: forbidden roots, os.pathsep-separated;
* ``HUBCLS_TEST_WRITE_GUARD_ALLOW``: roots inside them that may be written (pytest's basetemp);
* ``HUBCLS_TEST_WRITE_GUARD_LOG``: the file child processes append their findings to.

Writes are seen through Python's audit hooks (``open`` for writing, mkdir, rename, remove, ...), so
a write by a non-Python child (a compiler, cmake) is not seen; conftest's end-of-run ``git status``
check is the backstop for those. Byte-code caches and pytest's own cache are always allowed.
Only the standard library is imported here: this runs at the start of every child interpreter.
"""
from __future__ import annotations

import os
import sys

_ALWAYS_ALLOWED_PARTS = ("__pycache__", ".pytest_cache")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# audit event -> (position of a path it changes, position of the dir_fd that path is relative to)
_PATH_EVENTS = {
    "os.mkdir": ((0, 2),), "os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.rename": ((0, 2), (1, 3)),
    "os.truncate": ((0, None),), "os.symlink": ((1, 2),), "os.link": ((1, 3),), "shutil.rmtree": ((0, 1),),
    "shutil.copyfile": ((1, None),), "shutil.copytree": ((1, None),), "shutil.move": ((0, None), (1, None)),
}


def _roots(var):
    return tuple(os.path.normpath(p) for p in os.environ.get(var, "").split(os.pathsep) if p)


class Guard:
    """Audit hook recording forbidden writes; ``found`` holds (event, path) in order."""

    def __init__(self, forbidden, allowed=(), log_path=None):
        self.forbidden = tuple(os.path.normpath(os.path.abspath(p)) for p in forbidden)
        self.allowed = tuple(os.path.normpath(os.path.abspath(p)) for p in allowed)
        self.log_path = log_path
        self.found = []
        self._busy = False

    def _forbidden(self, path, dir_fd=None):
        if isinstance(path, int) or path is None:
            return None  # a file descriptor: its open was checked
        try:
            path = os.fsdecode(path)
        except TypeError:
            return None
        if os.path.isabs(path):
            base = ""
        elif isinstance(dir_fd, int) and dir_fd >= 0:
            # relative to an open directory (shutil.rmtree removes tmp_path's files this way)
            try:
                base = os.readlink(f"/proc/self/fd/{dir_fd}")
            except OSError:
                return None  # no /proc: cannot tell where it is
        else:
            base = os.getcwd()
        full = os.path.normpath(os.path.join(base, path))
        for root in self.forbidden:
            if full == root or full.startswith(root + os.sep):
                if any(full == a or full.startswith(a + os.sep) for a in self.allowed):
                    return None
                parts = full[len(root):].split(os.sep)
                if any(p in _ALWAYS_ALLOWED_PARTS for p in parts):
                    return None
                return full
        return None

    def __call__(self, event, args):
        if self._busy:
            return
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
            paths = ((path, None),) if writes else ()  # os.open's dir_fd is not audited; rare for writes
        elif event in _PATH_EVENTS:
            paths = tuple((args[i], args[j] if j is not None and j < len(args) else None)
                          for i, j in _PATH_EVENTS[event] if i < len(args))
        else:
            return
        for p, dir_fd in paths:
            bad = self._forbidden(p, dir_fd)
            if bad is not None:
                self._record(event, bad)

    def _record(self, event, path):
        self.found.append((event, path))
        if not self.log_path:
            return
        self._busy = True  # the log write below is itself an audited open
        try:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(f"{event}\t{path}\t{os.getpid()}\t{' '.join(sys.argv)[:300]}\n")
        except OSError:
            pass
        finally:
            self._busy = False


ACTIVE = None  # the guard installed in this process (audit hooks cannot be removed)


def install(forbidden, allowed=(), log_path=None):
    """Install the guard once per process; a second call reconfigures the first."""
    global ACTIVE
    if ACTIVE is None:
        ACTIVE = Guard(forbidden, allowed, log_path)
        sys.addaudithook(ACTIVE)
    else:
        ACTIVE.__init__(forbidden, allowed, log_path)
    return ACTIVE


def _chain_shadowed_sitecustomize():
    """Run the ``sitecustomize`` this file shadows (a venv's own), as Python would have."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or os.path.abspath(spec.origin or "") == os.path.abspath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["_shadowed_sitecustomize"] = module
    spec.loader.exec_module(module)


if __name__ == "sitecustomize":  # a child interpreter started by a test
    if os.environ.get("HUBCLS_TEST_WRITE_GUARD"):
        install(_roots("HUBCLS_TEST_WRITE_GUARD"), _roots("HUBCLS_TEST_WRITE_GUARD_ALLOW"),
                os.environ.get("HUBCLS_TEST_WRITE_GUARD_LOG"))
    _chain_shadowed_sitecustomize()
