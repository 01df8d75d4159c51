"""The one prediction pipeline: decode -> fused preprocess -> backend -> postprocess.

``hub.Module``, ``hubcls.deploy.Predictor``, ``hubcls serve`` and ``hubcls infer``/``predict`` all
predict through a :class:`PredictionPipeline`, so they cannot disagree:

* decode: ``hubcls.data.to_rgb`` (paths, bytes, file objects, PIL images, uint8 arrays; BGR arrays
  unless ``channel_order="RGB"``) - one call in the data layer;
* preprocess: the model's eval op list built by ``hubcls.data.build_transforms`` and run over the
  whole batch at once (one fused kernel call); an image the batch call rejects is retried alone so
  it becomes its own error;
* backend: ``hubcls.deploy.backends`` (float32 NCHW -> float32 logits);
* postprocess: ``hubcls.deploy.postprocess`` (float32 softmax, top-k, unique class names).

Build one with :func:`build_pipeline` from anything the model resolver accepts.
"""
from __future__ import annotations

import atexit
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, HubclsError, ImageDecodeError
from . import postprocess as _post

ON_ERROR = ("raise", "return")
CHANNEL_ORDERS = ("BGR", "RGB")


class PredictionError(dict):
    """Per-image failure inside a ``predict(..., on_error="return")`` result list.

    A dict (``{"error": message}``) so results stay JSON-serialisable; ``.index``, ``.source`` and
    ``.reason`` give the details."""

    def __init__(self, index: int, source: str, reason: str):
        super().__init__(error=f"{source}: {reason}")
        self.index, self.source, self.reason = index, source, reason

    def __repr__(self):
        return f"PredictionError(index={self.index}, source={self.source!r}, reason={self.reason!r})"


class PredictionPipeline:
    """decode -> preprocess -> backend -> postprocess for one model.

    Args:
        backend: callable float32 NCHW batch -> logits (a hubcls.deploy.backends.Backend).
        preprocess: the eval op list (PaddleClas ``[{OpName: params}]``, decoding excluded).
        labels: class names, one per output (made unique: "crane (517)").
        input_size: (3, H, W) the backend expects.
        model: the dygraph model when one was built (None for a program-only export).
        outputs: "logits" (softmax is the postprocessing's), or "probabilities" for a program that
            ends in softmax already (PaddleClas's exports: never softmax twice).
    """

    def __init__(self, backend, preprocess: Sequence[dict], labels: Sequence[str], input_size,
                 *, name: str = "model", model=None, source=None, outputs: str = "logits"):
        from ..data import build_transforms

        if outputs not in ("logits", "probabilities"):
            raise ValueError(f"outputs must be 'logits' or 'probabilities', got {outputs!r}")
        self.outputs = outputs
        self.backend = backend
        self.preprocess_ops = [dict(op) if isinstance(op, dict) else op for op in preprocess]
        self.transform = build_transforms(self.preprocess_ops)
        self.labels = _post.unique_labels(labels)
        self.input_size = tuple(int(s) for s in input_size)
        self.name = name
        self.model = model
        self.source = source

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    # ------------------------------------------------------------------ the backend, switched when ready
    backend_state = "ready"  # or "switching to the auto-chosen backend", or why the switch did not happen

    def switch_backend_when_ready(self, load, wait: float = 0.0) -> None:
        """Keep answering on the current backend while ``load()`` (-> a faster backend) runs in a
        background thread; switch to what it returns when it is ready, unless the backend was
        replaced in the meantime (``Module.runner = ...``). Waits ``wait`` seconds first, so a load
        that is quick (a warm cache) is in place before the first answer. If ``load`` fails, the
        current backend stays and :attr:`backend_state` says why. The swap is one attribute write:
        a call in flight finishes on the backend it started on."""
        import threading

        current = self.backend
        self.backend_state = "switching to the auto-chosen backend"
        self._backend_ready = threading.Event()

        def run():
            from ._cancel import BackgroundCancelled

            try:
                fast = load()
            except BackgroundCancelled as why:  # exit (_finish_pending_switches) or stop_background_switches
                self.backend_state = f"stayed on {_backend_name(current)}: stopped {why}"
            except Exception as exc:  # noqa: BLE001 - the model still answers on the current backend
                self.backend_state = f"stayed on {_backend_name(current)}: {type(exc).__name__}: {exc}"[:300]
            else:
                if self.backend is current:
                    self.backend = fast
                self.backend_state = "ready"
            finally:
                self._backend_ready.set()
                _PENDING.discard(thread)

        thread = threading.Thread(target=run, name=f"hubcls-backend-{self.name}", daemon=True)
        _watch_at_exit()
        _PENDING.add(thread)
        thread.start()
        self._backend_ready.wait(max(0.0, float(wait)))

    @property
    def backend_pending(self) -> bool:
        """True while a background backend switch is still running."""
        ev = getattr(self, "_backend_ready", None)
        return ev is not None and not ev.is_set()

    def wait_for_backend(self, timeout: Optional[float] = None) -> bool:
        """Block until a background backend switch is done (True) or ``timeout`` passed (False)."""
        ev = getattr(self, "_backend_ready", None)
        return True if ev is None else ev.wait(timeout)

    # ------------------------------------------------------------------ the four steps
    def decode(self, images, channel_order: str = "BGR", *, defer_jpeg: bool = False) -> list:
        """Inputs -> list of (uint8 RGB array | PredictionError). ``defer_jpeg``: plain JPEGs given as
        paths / bytes / file objects stay undecoded (``JpegSource``, header checked) when the
        preprocessing can decode just what its crop needs (see hubcls.data.fused_decode); errors
        in their compressed data then surface in :meth:`preprocess`."""
        from ..data.inputs import as_list, describe, to_rgb, to_rgb_or_jpeg

        _check_channel_order(channel_order)
        convert = to_rgb_or_jpeg if defer_jpeg and self.transform.defers_jpeg else to_rgb
        out = []
        for i, img in enumerate(as_list(images)):
            if isinstance(img, PredictionError):  # already failed upstream (e.g. bad base64)
                out.append(PredictionError(i, img.source, img.reason))
                continue
            try:
                out.append(convert(img, channel_order))
            except ImageDecodeError as exc:
                out.append(PredictionError(i, exc.source, exc.reason))
            except Exception as exc:  # noqa: BLE001 - one bad input must not sink the others
                out.append(PredictionError(i, describe(img, i), f"{type(exc).__name__}: {exc}"))
        return out

    def preprocess(self, rgb_images: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 RGB HWC images (or JpegSources from ``decode(defer_jpeg=True)``) -> float32 NCHW
        batch (one fused call over the whole batch)."""
        batch = np.asarray(self.transform.batch(list(rgb_images)), dtype=np.float32)
        if batch.shape[1:] != self.input_size:
            raise ConfigError(f"preprocessing produced {batch.shape[1:]}, the model expects {self.input_size}")
        return batch

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW batch -> float32 logits (N, num_classes)."""
        out = np.asarray(self.backend(np.ascontiguousarray(batch, dtype=np.float32)), dtype=np.float32)
        if out.ndim != 2 or out.shape[1] != len(self.labels):
            raise HubclsError(f"{self.name}: the backend answered {out.shape}, expected (N, {len(self.labels)})")
        return out

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        if self.outputs == "probabilities":  # the program's own softmax (PaddleClas's Topk ranks them as they are)
            return np.asarray(logits, dtype=np.float32)
        return _post.softmax(logits)

    def topk(self, probs_row: np.ndarray, k: int) -> Tuple[np.ndarray, List[float]]:
        return _post.topk(probs_row, k)

    def postprocess(self, logits: np.ndarray, top_k: int = 1) -> List[dict]:
        """logits -> one ``{label: prob}`` dict per row, most probable first."""
        return _post.topk_dicts(self.probabilities(logits), self.labels, top_k)

    # ------------------------------------------------------------------ composed
    def prepare(self, images, channel_order: str = "BGR", *, max_pixels: Optional[int] = None):
        """decode + preprocess -> (float32 batch of the good images or None, per-input list of
        PredictionError or None).

        Memory stays bounded by one decoded image: an input that needs a full decode (a PNG, a
        non-plain JPEG, ...) is decoded and preprocessed into its own row before the next one is
        decoded; plain JPEGs (kept compressed for the fused crop-aware decode) and arrays already in
        memory go through one batch call, retried one by one if it fails so an image the transform
        rejects becomes its own error. ``max_pixels``: per-image limit checked from the header."""
        from ..data.decode import JpegSource
        from ..data.inputs import as_list, describe, to_rgb, to_rgb_or_jpeg

        _check_channel_order(channel_order)
        items = as_list(images)
        errors: List[Optional[PredictionError]] = [None] * len(items)
        rows = {}     # index -> preprocessed row (full decodes, done one at a time)
        batched = []  # (index, JpegSource or in-memory image) for the one batch call
        convert = to_rgb_or_jpeg if self.transform.defers_jpeg else to_rgb
        for i, img in enumerate(items):
            if isinstance(img, PredictionError):  # already failed upstream (e.g. bad base64)
                errors[i] = PredictionError(i, img.source, img.reason)
                continue
            try:
                item = convert(img, channel_order, None, max_pixels)
            except ImageDecodeError as exc:
                errors[i] = PredictionError(i, exc.source, exc.reason)
                continue
            except Exception as exc:  # noqa: BLE001 - one bad input must not sink the others
                errors[i] = PredictionError(i, describe(img, i), f"{type(exc).__name__}: {exc}")
                continue
            if isinstance(item, JpegSource) or _in_memory(img):
                batched.append((i, item))
            else:
                self._prepare_one(i, item, rows, errors)
                del item  # the full-size decode is gone before the next image is read
        if batched:
            try:
                out = self.preprocess([item for _, item in batched])
                for (i, _), row in zip(batched, out):
                    rows[i] = row
            except Exception:  # noqa: BLE001 - find the culprit one by one
                for i, item in batched:
                    self._prepare_one(i, item, rows, errors)
        if not rows:
            return None, errors
        order = sorted(rows)
        batch = np.empty((len(order),) + self.input_size, dtype=np.float32)
        for j, i in enumerate(order):
            batch[j] = rows.pop(i)
        return batch, errors

    def _prepare_one(self, i: int, item, rows: dict, errors: list) -> None:
        from ..data.inputs import describe

        try:
            rows[i] = self.preprocess([item])[0]
        except ImageDecodeError as exc:  # a deferred JPEG whose compressed data is broken
            errors[i] = PredictionError(i, exc.source, exc.reason)
        except Exception as exc:  # noqa: BLE001 - e.g. a 1x1 image the crop cannot handle
            errors[i] = PredictionError(i, describe(item, i), f"preprocessing failed: {exc}")

    def predict(self, images, top_k: int = 1, batch_size: int = 8, *, channel_order: str = "BGR",
                on_error: str = "raise") -> list:
        """Classify ``images``; one ``{label: prob}`` dict per image, most probable first.

        ``on_error="raise"`` (default) decodes everything first and raises one ImageDecodeError
        naming every bad image before any compute; ``"return"`` puts a :class:`PredictionError` at a
        bad image's position and answers the others."""
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        _check_channel_order(channel_order)
        from ..data.inputs import as_list

        items = as_list(images)
        results: list = [None] * len(items)
        if on_error == "raise":
            decoded = self.decode(items, channel_order, defer_jpeg=True)
            bad = [d for d in decoded if isinstance(d, PredictionError)]
            if bad:
                detail = "; ".join(f"#{e.index} {e.source}: {e.reason}" for e in bad)
                raise ImageDecodeError(", ".join(e.source for e in bad),
                                       f"{len(bad)} of {len(decoded)} images could not be decoded ({detail}); "
                                       f"pass on_error='return' to get per-image errors instead")
            items = decoded
            channel_order = "RGB"  # decoded arrays are RGB
        for start in range(0, len(items), int(batch_size)):
            chunk = items[start:start + int(batch_size)]
            batch, errors = self.prepare(chunk, channel_order)
            if on_error == "raise" and any(errors):
                e = next(e for e in errors if e is not None)
                raise ImageDecodeError(e.source, e.reason)
            rows = iter(self.postprocess(self.logits(batch), top_k)) if batch is not None else iter(())
            for j, err in enumerate(errors):
                if err is not None:
                    err.index = start + j
                    results[start + j] = err
                else:
                    results[start + j] = next(rows)
        return results


def _backend_name(backend) -> str:
    describe = getattr(backend, "describe", None)
    return describe().get("backend", "?") if callable(describe) else type(backend).__name__


_PENDING: set = set()  # background backend switches still running


def _finish_pending_switches() -> None:
    """At exit, stop background backend switches at their next checkpoint (between native steps) and
    wait for them WITHOUT a bound: a thread still inside Paddle / paddle2onnx / onnxruntime C++ code
    when the interpreter finalises aborts the process (SIGABRT, "terminate called without an active
    exception"; a 120 s bound expired mid-export for EfficientNetB6 at 600 px). The wait is at most
    the one native step each thread is in (see ._cancel)."""
    from ._cancel import cancel_background

    cancel_background()
    for t in list(_PENDING):
        t.join()


def stop_background_switches() -> None:
    """Stop every running background backend switch now (each at its next checkpoint; its model stays
    on the backend it answers with) and wait for them; later switches run again. For test harnesses
    and embedders whose temporary ``HUBCLS_HOME`` is about to go away."""
    from ._cancel import cancel_background, resume_background

    if not _PENDING:
        return
    cancel_background("by stop_background_switches()")
    try:
        for t in list(_PENDING):
            t.join()
    finally:
        resume_background()


def _watch_at_exit() -> None:
    """Register the exit hook once, now: Paddle (imported by now - the model is built) registers its
    own exit cleanup of to_static's temp files at import, and exit hooks run last-registered first,
    so this one must come after it to finish a running export before that cleanup."""
    global _WATCHING
    if not _WATCHING:
        atexit.register(_finish_pending_switches)
        _WATCHING = True


_WATCHING = False


def from_base64(items) -> list:
    """Base64 strings (PaddleHub clients send ``b64encode(cv2.imencode('.jpg', img)[1])``; data URLs
    work too) -> encoded image bytes, or a PredictionError at a position that is not base64; the
    pipeline's decode step takes both."""
    from ..data.inputs import b64decode_image

    out = []
    for i, text in enumerate(items):
        try:
            out.append(b64decode_image(text, i))
        except ImageDecodeError as exc:
            out.append(PredictionError(i, exc.source, exc.reason))
    return out


def _in_memory(img) -> bool:
    """An input the caller already holds decoded (array or PIL image): batching it costs no decode."""
    if isinstance(img, np.ndarray):
        return True
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(img, Image.Image)


def _check_channel_order(channel_order: str) -> None:
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")


# --------------------------------------------------------------------------- building one
def build_pipeline(model=None, *, weights=None, source=None, backend="auto", device: Optional[str] = None,
                   threads: Optional[int] = None, precision: Optional[str] = None, label_list=None, calib_data=None,
                   calib_images=None, warmup: Sequence[int] = (1,), dygraph_model=None,
                   first_answer: Optional[float] = None, **options) -> PredictionPipeline:
    """A ready pipeline for ``model`` in any form the resolver accepts (``weights`` as in
    ``hubcls.models.resolve_model``), or for an already resolved ``source``.

    An export directory's program runs as it is (backend "inference"/"onnxruntime"/"int8");
    everything else builds the dygraph model (class count from the weights) and hands it to the
    backend layer, which exports and caches what the backend needs. ``backend`` may also be a
    callable (float32 NCHW batch -> logits). ``dygraph_model``: an already built model for
    ``source`` (skips building it again).

    ``first_answer`` (seconds; hub.Module passes one): when "auto" chose a backend that must first
    export and time the model (10-20 s on a cold cache), the pipeline answers on the dygraph model -
    ready as soon as it is built - while that runs in a background thread, and switches to the
    chosen backend when it is ready (:meth:`PredictionPipeline.switch_backend_when_ready`; a warm
    cache finishes within ``first_answer`` seconds and is used from the first call)."""
    from ..models import inference_labels, resolve_model
    from .backends import (
        DygraphBackend,
        _chosen_automatically,
        backend_from_export,
        load_backend,
        resolve_backend_name,
        resolve_device,
    )

    deferred = None
    if source is None:
        source = resolve_model(model, weights=weights)
    dev = resolve_device(device)
    built = dygraph_model
    if callable(backend) and not isinstance(backend, str):
        built = built if built is not None else source.create()
        runner, size = backend, _size_of(built, source)
    elif source.program is not None and (source.weights is None or (
            source.kind == "export" and resolve_backend_name(backend, dev) != "dygraph")):
        size = source.input_size
        runner = backend_from_export(source.program.parent, backend, device=dev, threads=threads, precision=precision,
                                     input_size=size, warmup=warmup, **options)
    else:
        built = built if built is not None else source.create()
        size = _size_of(built, source)
        name = _name_of(built, source)
        def load():
            return load_backend(backend, model=built, name=name, input_size=size, device=dev, threads=threads,
                                precision=precision, calib_data=calib_data, calib_images=calib_images, warmup=warmup,
                                **options)

        if resolve_backend_name(backend, dev) == "dygraph":
            runner = DygraphBackend(built, device=dev, threads=threads)
            runner.input_size = size
        elif first_answer is not None and _chosen_automatically(backend):
            runner = DygraphBackend(built, device=dev, threads=threads)  # answers while `load` runs
            runner.input_size = size
            deferred = load
        else:
            runner = load()
    cfg = built.pretrained_cfg if built is not None else source.cfg
    n = int(getattr(built, "num_classes", None) or cfg.num_classes)
    labels = inference_labels(cfg, n, label_list, what=cfg.name)
    from ..models._package import preprocess_of

    pipe = PredictionPipeline(runner, preprocess_of(cfg), labels, size, name=cfg.name, model=built, source=source,
                              outputs=(cfg.extra or {}).get("outputs", "logits"))
    if deferred is not None:
        pipe.switch_backend_when_ready(deferred, wait=first_answer)
    return pipe


def _size_of(model, source):
    from ..models._package import input_size_of

    return input_size_of(getattr(model, "pretrained_cfg", None) or source.cfg)


def _name_of(model, source) -> str:
    return getattr(getattr(model, "pretrained_cfg", None), "name", None) or source.name
