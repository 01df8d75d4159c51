"""The batch loader: sharded sampling, multi-process decoding into shared memory, fused kernels.

    loader = build_dataloader(config, "Train", seed=0, rank=0, world_size=1)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for batch in loader:            # {"image": (N,C,H,W) float32, "label": ..., "index": (N,) int64}
            ...

How a batch is made. The main process cuts the epoch into batches (:class:`BatchSampler`) and
hands each batch — not each sample — to a worker process. The worker reads and decodes the batch's
files, draws every sample's random parameters from (seed, epoch, sample index), runs the compiled
pipeline (one fused ``resize_crop_normalize`` call for the whole batch, writing straight into a
slot of a pre-allocated ``multiprocessing.shared_memory`` ring), applies batch ops (mixup/cutmix,
drawn from (seed, epoch, rank, batch number)) in place, and reports back. The main process yields
batches in order, copied out of the ring (so a batch stays valid after the next one arrives).
Because no draw depends on which worker ran what, 0, 1 or 8 workers give identical batches.

Robustness. A bad sample (undecodable/truncated/missing file, image too small for a fixed crop) is
dropped from its batch and counted (``loader.bad_samples``, one warning per epoch with the count
and the first few sources) with ``on_bad_sample: skip`` (default), or raises ``ImageDecodeError``
with ``on_bad_sample: error``. Workers ignore SIGINT: Ctrl-C reaches the main process only, which
stops the workers, frees the shared memory and re-raises KeyboardInterrupt. A worker that dies
(killed, segfault) or a batch that takes longer than ``timeout`` seconds raises in the main
process instead of hanging.

Sharding (``world_size > 1``). Every rank draws the same permutation (from (seed, epoch)); it is
padded by repeating its first samples to a multiple of world_size (so every rank sees
ceil(N / world_size) samples, at most world_size - 1 of them duplicates), then rank r takes
positions r, r + world_size, ... — disjoint shards. ``drop_last`` drops each rank's final partial
batch. For exact evaluation, de-duplicate by ``batch["index"]``.

Config (PaddleClas's ``DataLoader.<Train|Eval>``, hubcls extras marked *)::

    dataset: {name, image_root, cls_label_path, transform_ops: [...], batch_transform_ops: [...]}
    sampler: {name: DistributedBatchSampler, batch_size, drop_last, shuffle}
    loader:  {num_workers, use_shared_memory, timeout*, prefetch_factor*, start_method*, decode_threads*}
    on_bad_sample*: skip | error        (also accepted under DataLoader or Global)
"""
from __future__ import annotations

import math
import os
import queue
import signal
import threading
import traceback
import warnings
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from ..errors import ConfigError, ImageDecodeError
from .rng import batch_rng, sample_rng, shuffle_rng

ON_BAD = ("skip", "error")


class BadSampleWarning(UserWarning):
    """Samples were skipped because they could not be decoded/transformed."""


# ----------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------
class BatchSampler:
    """Epoch -> this rank's batches of dataset indices (see the module docstring for semantics)."""

    def __init__(self, num_samples: int, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ConfigError(f"sampler.batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size={world_size}), got {rank}")
        if num_samples < 1:
            raise ConfigError("the dataset is empty")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

    @property
    def per_rank(self) -> int:
        """Samples each rank sees per epoch (the padded share)."""
        return math.ceil(self.num_samples / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Epoch whose permutation the next indices()/batches() call draws."""
        self.epoch = int(epoch)

    def indices(self, epoch: Optional[int] = None) -> np.ndarray:
        """This rank's sample indices of an epoch (default: the current one), in order."""
        epoch = self.epoch if epoch is None else int(epoch)
        order = shuffle_rng(self.seed, epoch).permutation(self.num_samples) if self.shuffle \
            else np.arange(self.num_samples)
        total = self.per_rank * self.world_size
        if total > self.num_samples:
            order = np.concatenate([order, np.resize(order, total - self.num_samples)])
        return order[self.rank::self.world_size].astype(np.int64)

    def batches(self, epoch: Optional[int] = None) -> List[np.ndarray]:
        """This rank's batches of an epoch: index arrays of batch_size (the last may be short)."""
        idx = self.indices(epoch)
        out = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        if self.drop_last and out and len(out[-1]) < self.batch_size:
            out.pop()
        return out

    def __len__(self):
        n = self.per_rank
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


# ----------------------------------------------------------------------------------------------
# producing one batch (shared by the in-process path and the workers)
# ----------------------------------------------------------------------------------------------
@dataclass
class _Spec:
    image_shape: tuple          # one sample
    image_dtype: str
    label_shape: tuple          # one sample: () for class ids, (K,) for soft/multi-label targets
    label_dtype: str
    layout: str
    batch_size: int

    def nbytes(self):
        n = self.batch_size
        return (n * int(np.prod(self.image_shape)) * np.dtype(self.image_dtype).itemsize
                + n * int(np.prod(self.label_shape, dtype=np.int64)) * np.dtype(self.label_dtype).itemsize
                + n * 8)

    def views(self, buf, offset=0):
        n = self.batch_size
        img = np.ndarray((n,) + tuple(self.image_shape), self.image_dtype, buffer=buf, offset=offset)
        offset += img.nbytes
        lab = np.ndarray((n,) + tuple(self.label_shape), self.label_dtype, buffer=buf, offset=offset)
        offset += lab.nbytes
        idx = np.ndarray((n,), np.int64, buffer=buf, offset=offset)
        return img, lab, idx


def _produce(dataset, pipeline, batch_ops, spec, seed, epoch, rank, batch_no, indices, out, on_bad):
    """Fill ``out`` = (img, lab, idx) views for ``indices``; returns (n kept, [bad (source, reason)])."""
    img_out, lab_out, idx_out = out
    indices = np.asarray(indices, np.int64)
    items = [dataset.source(int(i)) for i in indices]
    rngs = [sample_rng(seed, epoch, int(i)) for i in indices]
    pipeline.errors = []
    res, keep = pipeline.run_batch(items, rngs, epoch=epoch, indices=indices.tolist(),
                                   out=img_out[:len(indices)], on_error=on_bad)
    n = len(keep)
    bad = [(e.source, e.reason) for e in pipeline.errors]
    if n == 0:
        return 0, bad
    if res.shape[1:] != img_out.shape[1:]:
        raise ImageDecodeError(items[keep[0]], f"the pipeline produced {res.shape[1:]} but the loader expects "
                                               f"{img_out.shape[1:]} (all samples must share one output shape)")
    if res is not img_out and not np.shares_memory(res, img_out):
        img_out[:n] = res
    kept_idx = indices[keep]
    labels = dataset.labels[kept_idx]
    if batch_ops is not None and batch_ops.ops:
        _, labels = batch_ops(img_out[:n], labels, batch_rng(seed, epoch, rank, batch_no), spec.layout)
    lab_out[:n] = labels
    idx_out[:n] = kept_idx
    return n, bad


def _free_buffer(spare: List[np.ndarray], nbytes: int) -> np.ndarray:
    """A byte buffer for the next in-process batch: one of ``spare`` that no batch, view or DLPack
    tensor references any more (its only references are the list and this frame), else a new one,
    kept for later. A batch stays valid as long as anything holds it; reusing a released buffer
    spares a fresh ~40 MB allocation per batch (page faults cost ~5% of the loader's time)."""
    import sys

    for buf in spare:
        if sys.getrefcount(buf) <= 3:  # spare's slot, the loop variable, getrefcount's argument
            return buf
    buf = np.empty(nbytes, np.uint8)
    if len(spare) < 3:
        spare.append(buf)
    return buf


# ----------------------------------------------------------------------------------------------
# workers
# ----------------------------------------------------------------------------------------------
def _worker_main(wid, task_q, result_q, shm_name, slot_bytes, spec, dataset, pipeline, batch_ops,
                 seed, rank, on_bad):
    # Ctrl-C is the main process's business: it stops us cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001
        pass
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(name=shm_name)
    parent = os.getppid()
    try:
        while True:
            try:
                task = task_q.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:  # the main process died without stopping us
                    break
                continue
            if task is None:
                break
            batch_no, epoch, indices, slot = task
            try:
                views = spec.views(shm.buf, slot * slot_bytes)
                n, bad = _produce(dataset, pipeline, batch_ops, spec, seed, epoch, rank, batch_no, indices,
                                  views, on_bad)
                del views
                result_q.put(("ok", batch_no, n, bad))
            except ImageDecodeError as exc:
                result_q.put(("decode_error", batch_no, exc.source, exc.reason))
            except BaseException as exc:  # noqa: BLE001 - report everything, the main process raises
                result_q.put(("error", batch_no, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        shm.close()


class _WorkerPool:
    def __init__(self, loader: "DataLoader", num_workers: int, spec: _Spec, slots: int, start_method: str):
        import multiprocessing as mp
        from multiprocessing import shared_memory

        ctx = mp.get_context(start_method)
        self.spec = spec
        self.slot_bytes = ((spec.nbytes() + 63) // 64) * 64
        self.slots = slots
        self.shm = shared_memory.SharedMemory(create=True, size=max(1, self.slot_bytes * slots))
        self.task_q = ctx.Queue()
        self.result_q = ctx.Queue()
        self.procs = []
        self.in_flight = 0
        args_common = (self.task_q, self.result_q, self.shm.name, self.slot_bytes, spec, loader.dataset,
                       loader.pipeline, loader.batch_ops, loader.seed, loader.rank, loader.on_bad_sample)
        # Start the workers with SIGINT ignored: the disposition survives exec, so a Ctrl-C that
        # arrives while they are still importing cannot print tracebacks from them either.
        restore = None
        if threading.current_thread() is threading.main_thread():
            restore = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for w in range(num_workers):
                p = ctx.Process(target=_worker_main, args=(w,) + args_common, daemon=True,
                                name=f"hubcls-data-{w}")
                p.start()
                self.procs.append(p)
        except BaseException:
            self.close()
            raise
        finally:
            if restore is not None:
                signal.signal(signal.SIGINT, restore)
        self._finalizer = weakref.finalize(self, _WorkerPool._cleanup, self.procs, self.task_q, self.result_q, self.shm)

    def views(self, slot):
        return self.spec.views(self.shm.buf, slot * self.slot_bytes)

    def check_alive(self):
        for p in self.procs:
            if not p.is_alive():
                code = p.exitcode
                why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                raise RuntimeError(f"data loader worker {p.name} (pid {p.pid}) died unexpectedly ({why}); "
                                   "try num_workers: 0 to see the error in the main process")

    @staticmethod
    def _cleanup(procs, task_q, result_q, shm):
        for _ in procs:
            try:
                task_q.put_nowait(None)
            except Exception:  # noqa: BLE001
                pass
        for p in procs:
            p.join(timeout=2.0)
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=2.0)
            if p.is_alive():  # pragma: no cover - stuck in uninterruptible I/O
                p.kill()
                p.join(timeout=1.0)
        for q in (task_q, result_q):
            try:
                q.cancel_join_thread()
                q.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            shm.close()
        except Exception:  # noqa: BLE001 - views may still exist; unlinking is what matters
            pass
        try:
            shm.unlink()
        except FileNotFoundError:
            pass

    def close(self):
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()
        else:
            _WorkerPool._cleanup(self.procs, self.task_q, self.result_q, self.shm)


# ----------------------------------------------------------------------------------------------
# the loader
# ----------------------------------------------------------------------------------------------
class DataLoader:
    """Iterable of batch dicts; see the module docstring. Build it with :func:`build_dataloader`."""

    def __init__(self, dataset, pipeline, *, batch_size: int, batch_ops=None, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, on_bad_sample: str = "skip", timeout: float = 300.0,
                 prefetch_factor: int = 2, start_method: Optional[str] = None, class_num: Optional[int] = None):
        if on_bad_sample not in ON_BAD:
            raise ConfigError(f"on_bad_sample must be one of {ON_BAD}, got {on_bad_sample!r}")
        if num_workers < 0:
            raise ConfigError(f"loader.num_workers must be >= 0, got {num_workers}")
        self.dataset = dataset
        self.pipeline = pipeline
        self.batch_ops = batch_ops
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.num_workers = int(num_workers)
        self.on_bad_sample = on_bad_sample
        self.timeout = float(timeout)
        self.prefetch_factor = max(1, int(prefetch_factor))
        self.start_method = start_method or "spawn"
        self.class_num = class_num
        self.batch_sampler = BatchSampler(len(dataset), batch_size, shuffle=shuffle, drop_last=drop_last,
                                          seed=seed, rank=rank, world_size=world_size)
        self.epoch = 0
        self.bad_samples = 0                     # total skipped, all epochs
        self.bad_sample_log: List[tuple] = []    # (epoch, source, reason), first 100
        self._pool: Optional[_WorkerPool] = None
        self._spec: Optional[_Spec] = None
        self._active = None                      # the running iterator (one at a time)

    # -- public ----------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Samples per batch."""
        return self.batch_sampler.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Epoch of the next iteration: its shuffle and every sample's random draws depend on it."""
        self.epoch = int(epoch)
        self.batch_sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.batch_sampler)

    def close(self) -> None:
        """Stop the workers and free the shared memory (also done at exit / garbage collection)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def __iter__(self):
        if self.num_workers == 0:
            return self._iter_inprocess()
        return self._iter_workers()

    # -- internals -------------------------------------------------------------------------
    def _label_spec(self):
        mixes = self.batch_ops is not None and bool(self.batch_ops.ops)
        if getattr(self.dataset, "multilabel", False):
            return (int(self.dataset.labels.shape[1]),), "float32"
        if mixes:
            k = self.class_num or self.dataset.num_classes
            if not k:
                raise ConfigError("batch_transform_ops need the number of classes (Arch.class_num)")
            return (int(k),), "float32"
        return (), "int64"

    def _output_spec(self) -> _Spec:
        if self._spec is not None:
            return self._spec
        static = self.pipeline.static_output_spec()
        if static is None:  # shape depends on the input: probe a few samples
            last_exc = None
            for i in range(min(len(self.dataset), 16)):
                try:
                    arr = self.pipeline(self.dataset.source(i), sample_rng(self.seed, 0, i), index=i)
                    static = (arr.shape, str(arr.dtype))
                    break
                except ImageDecodeError as exc:
                    last_exc = exc
            if static is None:
                raise ConfigError(f"cannot determine the output shape of the pipeline: the first samples all "
                                  f"fail ({last_exc})")
        lshape, ldtype = self._label_spec()
        self._spec = _Spec(tuple(static[0]), static[1], lshape, ldtype, self.pipeline.output_layout, self.batch_size)
        return self._spec

    def _record_bad(self, epoch, bad):
        for src, reason in bad:
            self.bad_samples += 1
            self._epoch_bad += 1
            if len(self.bad_sample_log) < 100:
                self.bad_sample_log.append((epoch, src, reason))

    def _warn_bad(self, epoch):
        if self._epoch_bad:
            first = [f"{s}: {r}" for e, s, r in self.bad_sample_log if e == epoch][:3]
            warnings.warn(f"epoch {epoch}: skipped {self._epoch_bad} bad sample(s) "
                          f"(on_bad_sample: skip); first: {'; '.join(first)}", BadSampleWarning, stacklevel=3)

    def _make_batch(self, img, lab, idx, n, copy):
        get = (lambda a: np.array(a[:n])) if copy else (lambda a: a[:n])
        return {"image": get(img), "label": get(lab), "index": get(idx)}

    def _iter_inprocess(self):
        epoch = self.epoch
        spec = self._output_spec()
        self._epoch_bad = 0
        spare: List[np.ndarray] = []  # buffers of earlier batches, reused once nobody holds them
        for batch_no, indices in enumerate(self.batch_sampler.batches(epoch)):
            views = spec.views(_free_buffer(spare, spec.nbytes()))  # uninitialised: every byte gets written
            n, bad = _produce(self.dataset, self.pipeline, self.batch_ops, spec, self.seed, epoch, self.rank,
                              batch_no, indices, views, self.on_bad_sample)
            self._record_bad(epoch, bad)
            if n:
                yield self._make_batch(*views, n, copy=False)
        self._warn_bad(epoch)

    def _ensure_pool(self):
        if self._pool is None:
            spec = self._output_spec()
            self._pool = _WorkerPool(self, self.num_workers, spec, self.num_workers * self.prefetch_factor,
                                     self.start_method)
        return self._pool

    def _get_result(self, pool):
        import time

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return pool.result_q.get(timeout=0.2)
            except queue.Empty:
                pool.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no batch from the data loader workers in {self.timeout:g} s "
                                       "(loader.timeout); a worker may be stuck on slow storage") from None

    def _drain(self, pool):
        # results of batches submitted by an abandoned iteration: their slots must not be reused early
        while pool.in_flight > 0:
            self._get_result(pool)
            pool.in_flight -= 1

    def _iter_workers(self):
        epoch = self.epoch
        batches = self.batch_sampler.batches(epoch)
        pool = self._ensure_pool()
        self._drain(pool)
        self._epoch_bad = 0
        free = deque(range(pool.slots))
        slot_of: Dict[int, int] = {}
        done: Dict[int, tuple] = {}
        sent = yielded = 0
        ok = False
        try:
            while yielded < len(batches):
                while free and sent < len(batches):
                    slot = free.popleft()
                    slot_of[sent] = slot
                    pool.task_q.put((sent, epoch, batches[sent], slot))
                    pool.in_flight += 1
                    sent += 1
                while yielded not in done:
                    msg = self._get_result(pool)
                    pool.in_flight -= 1
                    done[msg[1]] = msg
                msg = done.pop(yielded)
                slot = slot_of.pop(yielded)
                pool.check_alive()  # a dead worker fails the run even if others cover for it
                if msg[0] == "decode_error":
                    raise ImageDecodeError(msg[2], msg[3])
                if msg[0] == "error":
                    raise RuntimeError(f"data loader worker failed on batch {yielded}: {msg[2]}\n{msg[3]}")
                _, _, n, bad = msg
                self._record_bad(epoch, bad)
                batch = self._make_batch(*pool.views(slot), n, copy=True) if n else None
                free.append(slot)
                yielded += 1
                if batch is not None:
                    yield batch
            ok = True
        except KeyboardInterrupt:
            self.close()
            raise
        except (RuntimeError, TimeoutError):
            self.close()
            raise
        finally:
            if ok:
                self._warn_bad(epoch)


# ----------------------------------------------------------------------------------------------
# from config
# ----------------------------------------------------------------------------------------------
def _get(d, key, default=None):
    return d.get(key, default) if isinstance(d, dict) else default


def build_dataloader(config: dict, mode: str, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                     fuse: bool = True) -> DataLoader:
    """PaddleClas-shaped ``config`` + mode ("Train" | "Eval" | any DataLoader key) -> DataLoader."""
    from .datasets import build_dataset
    from .transforms import ToCHWImage, build_batch_transforms, build_transforms

    dl_all = _get(config, "DataLoader")
    if not isinstance(dl_all, dict):
        raise ConfigError("config has no DataLoader section")
    if mode not in dl_all:
        raise ConfigError(f"DataLoader.{mode} is missing (have: {sorted(dl_all)})")
    dl = dl_all[mode]
    where = f"DataLoader.{mode}"
    ds_cfg = dict(_get(dl, "dataset") or {})
    ops_cfg = ds_cfg.pop("transform_ops", None)
    batch_cfg = ds_cfg.pop("batch_transform_ops", None)
    dataset = build_dataset(ds_cfg, where=f"{where}.dataset")

    sampler = _get(dl, "sampler") or {}
    loader_cfg = _get(dl, "loader") or {}
    if "batch_size" not in sampler:
        raise ConfigError(f"{where}.sampler.batch_size is missing")
    glob = _get(config, "Global") or {}
    on_bad = _get(dl, "on_bad_sample") or _get(loader_cfg, "on_bad_sample") or _get(dl_all, "on_bad_sample") \
        or _get(glob, "on_bad_sample") or "skip"
    if on_bad not in ON_BAD:
        raise ConfigError(f"{where}.on_bad_sample must be one of {ON_BAD}, got {on_bad!r}")

    num_workers = int(_get(loader_cfg, "num_workers", 0) or 0)
    pipeline = build_transforms(ops_cfg or [], fuse=fuse, num_threads=1 if num_workers > 0 else None,
                                where=f"{where}.dataset.transform_ops")
    if pipeline.output_layout == "HWC":
        # PaddleClas's datasets transpose HWC->CHW themselves when the op list has no ToCHWImage
        pipeline = type(pipeline)(pipeline.ops + [ToCHWImage()], fuse=fuse, num_threads=pipeline.num_threads)
    decode_threads = int(_get(loader_cfg, "decode_threads", 1) if _get(loader_cfg, "decode_threads") is not None else 1)
    if decode_threads < 1:
        raise ConfigError(f"{where}.loader.decode_threads must be >= 1, got {decode_threads}")
    pipeline.decode_threads = decode_threads
    class_num = _get(_get(config, "Arch"), "class_num") or getattr(dataset, "num_classes", None)
    batch_ops = build_batch_transforms(batch_cfg, class_num=class_num, where=f"{where}.dataset.batch_transform_ops")
    return DataLoader(
        dataset, pipeline, batch_size=int(sampler["batch_size"]), batch_ops=batch_ops,
        shuffle=bool(sampler.get("shuffle", mode == "Train")), drop_last=bool(sampler.get("drop_last", False)),
        seed=seed, rank=rank, world_size=world_size, num_workers=num_workers, on_bad_sample=on_bad,
        timeout=float(_get(loader_cfg, "timeout", 300.0)), prefetch_factor=int(_get(loader_cfg, "prefetch_factor", 2)),
        start_method=_get(loader_cfg, "start_method"), class_num=class_num)
