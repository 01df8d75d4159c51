"""Stopping background backend work cleanly when the interpreter exits.

A daemon thread that is still inside Paddle / paddle2onnx / onnxruntime C++ code when Python finalises
is torn down mid-call and the process aborts ("terminate called without an active exception",
SIGABRT). So native work never gets cut: at exit :func:`cancel_background` asks background threads
to stop, each stops at its next :func:`checkpoint` (between native steps: before an export, a
conversion, a session start, a timed run), and the exit hook waits for them without a bound, i.e. for
at most the one native step each is in.
"""
from __future__ import annotations

import threading

_CANCELLED = threading.Event()
_REASON = ["at interpreter exit"]


class BackgroundCancelled(BaseException):
    """Raised in a background thread at a checkpoint once the interpreter is exiting. A BaseException
    so that the ``except Exception`` fallbacks (try the next candidate / backend) let it through."""


def checkpoint() -> None:
    """Call before each native step; raises :class:`BackgroundCancelled` in a non-main thread once
    :func:`cancel_background` was called (the main thread always goes on)."""
    if _CANCELLED.is_set() and threading.current_thread() is not threading.main_thread():
        raise BackgroundCancelled(_REASON[0])


def cancel_background(reason: str = "at interpreter exit") -> None:
    """Stop background threads at their next checkpoint; ``reason`` completes "stopped ..." in the
    state they leave behind."""
    _REASON[0] = reason
    _CANCELLED.set()


def resume_background() -> None:
    """Let background work run again (after :func:`cancel_background` and the threads are joined)."""
    _CANCELLED.clear()


def cancelling() -> bool:
    return _CANCELLED.is_set()
