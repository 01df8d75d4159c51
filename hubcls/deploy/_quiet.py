"""Keep Paddle, Paddle Inference, paddle2onnx and onnxruntime quiet unless the user asks.

Paddle Inference prints hundreds of GLOG lines per predictor and paddle2onnx prints from C++ straight
to the process's stdout, so Python-level logging switches are not enough: ``quiet()`` redirects the
OS-level file descriptors 1 and 2 for the duration of a call and replays what was captured when the
call fails (so errors are never swallowed). ``hubcls --verbose`` / ``HUBCLS_VERBOSE=1`` turns it off.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading

# Set before Paddle's C++ side reads them (it reads GLOG_* at first import); harmless if already set.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("GLOG_v", "0")
# paddle2onnx's polygraphy path would pip-install packages at run time; never allow that.
os.environ["POLYGRAPHY_AUTOINSTALL_DEPS"] = "0"


def verbose() -> bool:
    return os.environ.get("HUBCLS_VERBOSE", "0").lower() in ("1", "true", "yes", "on")


def set_verbose(on: bool = True) -> None:
    os.environ["HUBCLS_VERBOSE"] = "1" if on else "0"
    if on:
        os.environ["GLOG_minloglevel"] = "0"


@contextlib.contextmanager
def quiet():
    """Silence fd 1/2 inside the block (C++ prints included); replay the output if it raises.

    Every native step (export, conversion, session start, timed run) runs inside one, so its entry is
    also where a background thread stops when the interpreter exits (:mod:`._cancel`)."""
    from ._cancel import checkpoint

    checkpoint()
    if verbose():
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        # fds 1/2 are the whole process's: redirecting them from a background thread (auto's export
        # while a Module answers) swallowed the main thread's own prints, and two threads nesting
        # quiet() out of order left fd 1 on a temp file for good. Python-level chatter is quietened
        # at its source instead; a native line may get through, which is the lesser harm (the ONNX
        # conversion, whose C++ part prints to fd 1, runs in a child Python there: _program._convert_in_child).
        with _python_level_quiet():
            yield
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not break inference
            pass
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real file descriptors (embedded interpreters): nothing to redirect
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException as exc:
            from ._cancel import BackgroundCancelled

            failed = not isinstance(exc, BackgroundCancelled)  # stopped at exit: nothing went wrong
            raise
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001
                    pass
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed:
                sink.seek(0)
                captured = sink.read()[-20000:]
                if captured:
                    sys.stderr.write(captured.decode("utf-8", "replace"))
                    sys.stderr.flush()


@contextlib.contextmanager
def _python_level_quiet():
    """paddle2onnx prints its INFO lines (``ONNX model saved in ...``) with print(); its own level
    switch stops them without touching the process's file descriptors."""
    p2o = sys.modules.get("paddle2onnx.utils")
    log = getattr(p2o, "logging", None)
    old = getattr(log, "log_level", None)
    if old is not None:
        log.log_level = min(old, 1)  # 1: warnings and errors only
    try:
        yield
    finally:
        if old is not None:
            log.log_level = old
