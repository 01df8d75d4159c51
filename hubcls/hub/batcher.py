"""Dynamic batching for serving: requests from many clients share one model call.

Each model gets one worker thread. Requests put *groups* (the preprocessed images of one request)
into a bounded queue; the worker takes the first group, then keeps taking groups until the batch
holds ``max_batch_size`` images or ``max_delay`` seconds have passed since it took the first, runs
the model once, and resolves every request's future with its rows of logits.

With ``enabled=False`` every request runs on its own (split into ``max_batch_size`` chunks), which is
the baseline the benchmark compares against.

With an ``incoming`` hint (the server's count of requests still being decoded), the worker only
waits while more requests are actually on their way, so a lone client pays no batching delay.

The queue is bounded in images (``max_queue``): ``submit`` raises :class:`QueueFull` instead of
letting latency grow without limit; the server answers 503 then.

Adaptive batching: with ``max_delay=0`` (what ``hubcls serve`` uses unless told otherwise) the worker
never idles to fill a batch: a lone request runs at once, alone, exactly as without batching, and the
requests that queued up while the model was busy run together in the next call. The batch size
follows the load, and a batch only forms from requests that would otherwise have waited anyway.

Results reach an asyncio server through ``submit(..., waiter=(loop, callback))``: the worker calls
every request's ``callback(rows, exception)`` on ``loop``, all of one model call with one
``loop.call_soon_threadsafe`` (one wake-up of the event loop
per batch instead of one per request - measured: per-request wake-ups were 15% of the server's
samples at concurrency 16, all on the one thread that feeds the model).
"""
from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from typing import Callable, Deque, List, Optional

import numpy as np


class QueueFull(Exception):
    """The batch queue has no room for the request's images."""


class ShuttingDown(Exception):
    """The batcher is stopping and takes no new work."""


class _Group:
    __slots__ = ("batch", "future", "waiter", "t_enqueue")

    def __init__(self, batch: np.ndarray, waiter=None):
        self.batch = batch
        self.future: Future = Future()
        self.waiter = waiter  # (asyncio loop, callback(rows, exc) run on it) or None
        self.t_enqueue = time.monotonic()


def _resolve_waiters(items) -> None:
    """On the event loop: hand each waiting request its rows (or the model's exception)."""
    for callback, value, exc in items:
        callback(value, exc)


class Batcher:
    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch_size: int = 8,
        max_delay: float = 0.005,
        max_queue: int = 64,
        enabled: bool = True,
        name: str = "model",
        on_batch: Optional[Callable[[int, float], None]] = None,
        on_depth: Optional[Callable[[int], None]] = None,
        incoming: Optional[Callable[[], int]] = None,
    ):
        if max_batch_size < 1 or max_queue < 1 or max_delay < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1 and max_delay >= 0")
        self.fn = fn
        self.max_batch_size = int(max_batch_size)
        self.max_delay = float(max_delay)
        self.max_queue = int(max_queue)
        self.enabled = bool(enabled)
        self.name = name
        self._on_batch = on_batch or (lambda n, secs: None)
        self._on_depth = on_depth or (lambda depth: None)
        # requests being decoded/preprocessed right now (about to submit); when it is 0 nobody is
        # coming, so the batch runs at once instead of idling for max_delay (no cost at low load)
        self._incoming = incoming
        self._queue: Deque[_Group] = collections.deque()
        self._depth = 0  # images waiting in the queue
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=f"hubcls-batcher-{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ client side
    @property
    def depth(self) -> int:
        return self._depth

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def submit(self, batch: np.ndarray, waiter=None) -> Future:
        """Queue a request's preprocessed images (N, C, H, W); the future resolves to (N, classes) logits.
        ``waiter``: ``(loop, callback)``: ``callback(rows, exception)`` is also called on ``loop``, one
        ``call_soon_threadsafe`` per model call for all its requests."""
        n = int(batch.shape[0])
        if n == 0:
            f: Future = Future()
            f.set_result(np.zeros((0, 0), np.float32))
            if waiter is not None:
                waiter[0].call_soon_threadsafe(_resolve_waiters, [(waiter[1], f.result(), None)])
            return f
        with self._cond:
            if self._stopping:
                raise ShuttingDown(f"{self.name}: server is shutting down")
            # a request larger than the whole queue can never fit; let it in alone when idle
            if self._depth + n > self.max_queue and not (self._depth == 0 and n > self.max_queue):
                raise QueueFull(f"{self.name}: queue full ({self._depth} images waiting, limit {self.max_queue})")
            group = _Group(batch, waiter)
            self._queue.append(group)
            self._depth += n
            self._on_depth(self._depth)
            self._cond.notify()
        return group.future

    # ------------------------------------------------------------------ worker side
    def _take(self) -> Optional[List[_Group]]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait(0.1)
            if not self._queue:
                return None  # stopping and drained
            groups = [self._queue.popleft()]
            size = groups[0].batch.shape[0]
            if self.enabled:
                deadline = time.monotonic() + self.max_delay
                while size < self.max_batch_size:
                    if self._queue:
                        nxt = self._queue[0].batch.shape[0]
                        if size + nxt > self.max_batch_size:
                            break
                        groups.append(self._queue.popleft())
                        size += nxt
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopping:
                        break
                    if self._incoming is not None:
                        if self._incoming() <= 0:
                            break
                        remaining = min(remaining, 0.001)  # re-check the hint often
                    self._cond.wait(remaining)
            self._depth -= size
            self._on_depth(self._depth)
            self._busy = True
            return groups

    def _run(self):
        while True:
            groups = self._take()
            if groups is None:
                return
            try:
                self._execute(groups)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _execute(self, groups: List[_Group]):
        batch = groups[0].batch if len(groups) == 1 else np.concatenate([g.batch for g in groups])
        try:
            outs = []
            # run in chunks of max_batch_size (a single large request, or batching disabled)
            for start in range(0, batch.shape[0], self.max_batch_size):
                chunk = batch[start:start + self.max_batch_size]
                t0 = time.perf_counter()
                outs.append(np.asarray(self.fn(chunk)))
                self._on_batch(int(chunk.shape[0]), time.perf_counter() - t0)
            logits = np.concatenate(outs) if len(outs) > 1 else outs[0]
        except BaseException as exc:  # noqa: BLE001 - every waiting request must hear about it
            for g in groups:
                if not g.future.done():
                    g.future.set_exception(exc)
            self._notify([(g, None, exc) for g in groups])
            return
        offset, done = 0, []
        for g in groups:
            n = g.batch.shape[0]
            rows = logits[offset:offset + n]
            g.future.set_result(rows)
            done.append((g, rows, None))
            offset += n
        self._notify(done)

    @staticmethod
    def _notify(done) -> None:
        by_loop = {}
        for g, value, exc in done:
            if g.waiter is not None:
                loop, fut = g.waiter
                by_loop.setdefault(loop, []).append((fut, value, exc))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_waiters, items)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def stop(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop taking work; with ``drain`` finish what is queued first (bounded by ``timeout``)."""
        with self._cond:
            self._stopping = True
            if not drain:
                while self._queue:
                    g = self._queue.popleft()
                    exc = ShuttingDown(f"{self.name}: server shut down")
                    g.future.set_exception(exc)
                    self._notify([(g, None, exc)])
                self._depth = 0
            self._cond.notify_all()
        self._thread.join(timeout)
