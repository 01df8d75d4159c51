"""The HTTP server behind ``hubcls serve`` (FastAPI + uvicorn).

Endpoints (see docs/serving.md):

* ``POST /predict/<module>``: PaddleHub Serving's protocol, unchanged for existing clients:
  JSON ``{"images": [base64, ...], "top_k": k}`` -> ``{"status": "000", "msg": "", "results": [...]}``
  with PaddleHub's codes: "000" ok, "101" the prediction failed, "111" unknown module, "112" not a
  JSON request. A bad image inside a batch is ``{"error": "..."}`` at its position; the others
  are answered normally.
* ``POST /v1/models/<name>:predict``: multipart upload (field ``images``, repeatable, or ``file``)
  or JSON ``{"images": [base64], "top_k": k}``; answers ``{"model", "predictions": [...]}`` with
  per-image ``{"top_k": [{"label", "index", "prob"}]}`` or ``{"error"}``.
* ``GET /v1/models``, ``GET /v1/models/<name>``: what is loaded.
* ``GET /health/live``, ``GET /health/ready`` (503 while starting or shutting down),
  ``GET /metrics`` (Prometheus), ``GET /docs`` + ``/openapi.json`` (FastAPI), ``GET /`` (web page).

Requests go through a per-model :class:`~hubcls.hub.batcher.Batcher` (dynamic batching, bounded
queue -> 503 with Retry-After when full).

Bounds (every one has a ServeConfig field and a ``hubcls serve`` flag; docs/security.md): the body
(413 on every route, by Content-Length or while it streams; 408 when it does not arrive within
``body_timeout_s``), the request head (``head_timeout_s``: a connection that does not finish its
request head in time is closed - slowloris), connections (``max_connections``, 503 above), images
per request (checked before any base64 is decoded), decoded pixels per image and per request
(from the image headers, before any pixel is decoded), and memory: JSON parsing, base64 and image
decoding run in a small worker pool off the event loop (``decode_workers``), one full-size image
at a time per worker. Every malformed input is a 4xx; responses name no server-side path.
"""
import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

try:  # serving needs the `serve` extra; import at module level so FastAPI resolves annotations
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
except ImportError as _exc:  # pragma: no cover - reported when create_app is called
    FastAPI = Request = None
    _FASTAPI_ERROR = _exc

from ..data.inputs import b64decode_image
from ..deploy.pipeline import PredictionError, from_base64
from ..errors import ImageDecodeError
from .batcher import Batcher, QueueFull, ShuttingDown

STATIC_DIR = Path(__file__).with_name("static")


@dataclass
class ServeConfig:
    max_batch_size: int = 8           # images per model call
    max_delay_ms: float = 0.0         # 0: adaptive (batch what queued while the model ran; never idle)
    max_queue: int = 64               # images waiting per model; more -> 503
    batching: bool = True             # False: every request runs alone (baseline)
    max_request_bytes: int = 20 << 20  # larger bodies -> 413
    max_images_per_request: int = 64
    max_top_k: int = 100
    drain_timeout_s: float = 30.0     # graceful shutdown: finish queued work for at most this long
    max_image_pixels: int = 40_000_000     # one image (from its header; bigger -> per-image error)
    max_request_pixels: int = 100_000_000  # all images of one request (from headers; more -> 413)
    max_connections: int = 64         # open connections + requests in progress; more -> 503
    head_timeout_s: float = 10.0      # a request head (line + headers) must arrive within this
    body_timeout_s: float = 30.0      # the whole body must arrive within this; else 408
    keep_alive_s: int = 5             # idle keep-alive connections are closed after this
    decode_workers: int = 0           # threads for JSON/base64/decode/preprocess (0: min(4, cores))
    allowed_hosts: Optional[Sequence[str]] = None  # Host header allow-list (None: any)

    def workers(self) -> int:
        return int(self.decode_workers) or max(1, min(4, os.cpu_count() or 1))


def _key(name: str) -> str:
    from ..models import canonical_name

    return canonical_name(name)


class _Metrics:
    """The server's Prometheus metrics. Under ``serve_workers`` (PROMETHEUS_MULTIPROC_DIR set) every
    worker process writes its values to that directory and /metrics answers with the sum over the
    live workers (gauges: the sum of the live processes' values)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        live = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("hubcls_requests_total", "HTTP prediction requests",
                                ["model", "api", "code"], registry=r)
        self.latency = Histogram("hubcls_request_latency_seconds", "Prediction request latency",
                                 ["model", "api"], registry=r,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.images = Counter("hubcls_images_total", "Images answered", ["model", "outcome"], registry=r)
        self.batch_size = Histogram("hubcls_batch_size", "Images per model call", ["model"], registry=r,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128))
        self.inference = Histogram("hubcls_inference_seconds", "Model call duration", ["model"], registry=r,
                                   buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.queue_depth = Gauge("hubcls_queue_depth", "Images waiting for the model", ["model"], registry=r, **live)
        self.rejected = Counter("hubcls_rejected_total", "Requests rejected before the model",
                                ["reason"], registry=r)
        self.in_flight = Gauge("hubcls_requests_in_flight", "Prediction requests being worked on", registry=r,
                               **live)
        self.workers = Gauge("hubcls_workers", "Server processes answering (1 unless --workers)", registry=r,
                             **live)
        self.workers.set(1)

    def collect_registry(self):
        """What /metrics shows: this process's registry, or every live worker's values summed."""
        if not self.multiprocess:
            return self.registry
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry

    def process_gone(self):
        """This worker is stopping: its live gauges leave the sum."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


class _Served:
    """One loaded Module + its batcher."""

    def __init__(self, key: str, module, config: ServeConfig, metrics: _Metrics):
        self.key = key
        self.module = module
        self.preparing = 0  # requests between arrival and submit (decode + preprocess)
        self._lock = threading.Lock()
        m = metrics
        pipeline = module.pipeline
        self.top_k = 1  # the PaddleHub route's default (PaddleHub's predict_args can change it)
        self.batcher = Batcher(
            lambda batch: pipeline.probabilities(module.logits(batch)),
            max_batch_size=config.max_batch_size,
            max_delay=config.max_delay_ms / 1000.0,
            max_queue=config.max_queue,
            enabled=config.batching,
            name=key,
            on_batch=lambda n, secs: (m.batch_size.labels(key).observe(n), m.inference.labels(key).observe(secs)),
            on_depth=lambda d: m.queue_depth.labels(key).set(d),
            incoming=lambda: self.preparing,
        )

    def enter(self):
        with self._lock:
            self.preparing += 1

    def leave(self):
        with self._lock:
            self.preparing -= 1

    def info(self) -> dict:
        cfg = self.module.pretrained_cfg
        backend = getattr(self.module.runner, "describe", None)
        return {
            "name": self.key,
            "model": cfg.name,
            "arch": cfg.arch,
            "num_classes": self.module.num_classes,
            "input_size": cfg.input_size,
            "resize_short": cfg.resize_short,
            "weights": _public_source(self.module.weights_source),
            "backend": backend().get("backend") if callable(backend) else type(self.module.runner).__name__,
            "backend_state": self.module.pipeline.backend_state,
        }


def _public_source(source) -> str:
    """What a client may know about where weights came from: never a server-side path."""
    text = str(source) if source is not None else "unknown"
    if text in ("official", "random"):
        return text
    return Path(text.rstrip("/\\")).name or "local"


class PredictFailure(Exception):
    def __init__(self, http_status: int, message: str, hub_status: str = "101"):
        super().__init__(message)
        self.http_status, self.hub_status = http_status, hub_status


class Server:
    """Holds the loaded models and does the work; the FastAPI app is a thin layer over it."""

    def __init__(self, modules: Dict[str, object], config: Optional[ServeConfig] = None):
        if not modules:
            raise ValueError("serve needs at least one model")
        self.config = config or ServeConfig()
        self.metrics = _Metrics()
        self.models: Dict[str, _Served] = {}
        self.aliases: Dict[str, str] = {}
        for name, module in modules.items():
            key = _key(name)
            if key in self.models:
                from ..errors import ConfigError

                raise ConfigError(f"model {name!r} given twice (each served model needs its own name)")
            self.models[key] = _Served(key, module, self.config, self.metrics)
            # the PaddleClas spelling and the snake-case spelling both route to the model
            for alias in (name, module.pretrained_cfg.name, key):
                self.aliases.setdefault(alias.lower(), key)
                self.aliases.setdefault(_key(alias), key)
        self.pool = ThreadPoolExecutor(max_workers=self.config.workers(), thread_name_prefix="hubcls-decode")
        self.ready = True
        self.stopping = False

    async def run(self, fn, *args):
        """``fn(*args)`` in the decode pool: CPU work (JSON, base64, decoding) stays off the event
        loop, and at most ``decode_workers`` requests hold decoded images at once."""
        if self.stopping:
            self.metrics.rejected.labels("shutting_down").inc()
            raise PredictFailure(503, "server is shutting down")
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def classify(self, served: "_Served", read, *args):
        """The whole prediction of one request, with one trip through the decode pool: ``read(*args)``
        -> (images, top_k) parses and checks the body there (count before base64, pixels before
        decoding), the images are decoded and preprocessed one at a time into a batch in the same
        thread, which queues it for the model; the model's thread hands back the probabilities
        with one event-loop wake-up per model call. -> (rows: probabilities row or PredictionError
        per image, top_k)."""
        if self.stopping:
            self.metrics.rejected.labels("shutting_down").inc()
            raise PredictFailure(503, "server is shutting down")
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.metrics.in_flight.inc()
        served.enter()
        try:
            try:
                self.pool.submit(self._work, loop, done, served, read, args)
            except RuntimeError:  # the pool is shut down
                served.leave()
                raise PredictFailure(503, "server is shutting down") from None
            errors, top_k, probs = await done
        finally:
            self.metrics.in_flight.dec()
        out, row = [], 0
        for err in errors:
            if err is not None:
                out.append(err)
                self.metrics.images.labels(served.key, "error").inc()
            else:
                out.append(probs[row])
                row += 1
                self.metrics.images.labels(served.key, "ok").inc()
        return out, top_k

    def _work(self, loop, done, served: "_Served", read, args) -> None:
        """In a decode-pool thread: read + check the body, decode + preprocess, queue for the model."""
        def answer(value=None, exc=None):
            def now():
                if not done.done():
                    done.set_exception(exc) if exc is not None else done.set_result(value)

            loop.call_soon_threadsafe(now)

        try:
            try:
                raw, top_k = read(*args)
                batch, errors = self._prepare(served, raw, "RGB")
                if batch is None:
                    return answer((errors, top_k, None))

                def settle(probs, exc):  # on the loop, called by the model's thread (batched)
                    if done.done():  # the client went away
                        return
                    if exc is None:
                        done.set_result((errors, top_k, probs))
                    elif isinstance(exc, ShuttingDown):
                        done.set_exception(PredictFailure(503, str(exc)))
                    else:  # a model failure is this request's 500
                        done.set_exception(PredictFailure(500, f"prediction failed ({type(exc).__name__})"))

                try:
                    served.batcher.submit(batch, waiter=(loop, settle))
                except QueueFull as exc:
                    self.metrics.rejected.labels("queue_full").inc()
                    raise PredictFailure(503, str(exc)) from exc
                except ShuttingDown as exc:
                    raise PredictFailure(503, str(exc)) from exc
            finally:
                served.leave()
        except PredictFailure as exc:
            return answer(exc=exc)
        except Exception as exc:  # noqa: BLE001 - never a silent hang: the request hears about it
            return answer(exc=PredictFailure(500, f"prediction failed ({type(exc).__name__})"))

    def read_paddlehub(self, body: bytes, default_top_k: int, module_name: str):
        """PaddleHub's JSON body -> (image bytes or per-image errors, top_k), checked (in the pool)."""
        try:
            req = _parse_json(body)
            if not isinstance(req, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:  # PaddleHub's "112", as a 400
            raise PredictFailure(400, f"This usage is out of date, please use 'application/json' as content-type "
                                      f"to post to /predict/{module_name} with a JSON object body ({exc}).",
                                 "112") from None
        imgs = req.get("images")
        if not isinstance(imgs, list):
            raise PredictFailure(400, "the request needs \"images\": a list of base64-encoded images")
        top_k = _int(req.get("top_k", default_top_k), "top_k")
        self.check_request(len(imgs), top_k)  # before any base64 is decoded
        return self.decode_base64(imgs), top_k

    def read_v1(self, body, query_top_k, form_top_k):
        """v1 body (JSON bytes, or multipart items) -> (image bytes or per-image errors, top_k) (in the pool)."""
        body_top_k = form_top_k
        if isinstance(body, (bytes, bytearray)):
            try:
                req = _parse_json(body)
            except ValueError as exc:
                raise PredictFailure(400, f"body is neither multipart/form-data nor JSON ({exc})") from None
            if not isinstance(req, dict) or not isinstance(req.get("images"), list):
                raise PredictFailure(400, "JSON body needs \"images\": a list of base64-encoded images")
            body = [b if isinstance(b, str) else PredictionError(i, f"image #{i}", f"expected a base64 string, got "
                                                                                    f"{type(b).__name__}")
                    for i, b in enumerate(req["images"])]
            body_top_k = req.get("top_k")
        k = _int(query_top_k if query_top_k is not None else (body_top_k if body_top_k is not None else 5), "top_k")
        self.check_request(len(body), k)  # before any base64 is decoded
        return _decode_v1_items(self, body), k

    def check_request(self, n_images: int, top_k: int) -> None:
        """Image count and top_k, before any image is base64-decoded or decoded."""
        cfg = self.config
        if n_images == 0:
            raise PredictFailure(400, "no images in the request", "101")
        if n_images > cfg.max_images_per_request:
            self.metrics.rejected.labels("too_many_images").inc()
            raise PredictFailure(413, f"{n_images} images in one request; the limit is {cfg.max_images_per_request} "
                                      f"(--max-images)")
        if not 1 <= top_k <= cfg.max_top_k:
            raise PredictFailure(400, f"top_k must be between 1 and {cfg.max_top_k}, got {top_k}")

    def decode_base64(self, texts: list) -> list:
        """base64 strings -> image bytes (or per-image errors), then the pixel checks (in the pool)."""
        return self.check_pixels(from_base64(texts))

    def check_pixels(self, raw: list) -> list:
        """Each image's pixel count from its header, before anything is decoded: an image over
        ``max_image_pixels`` becomes a per-image error, a request whose images add up to more than
        ``max_request_pixels`` is refused whole (413)."""
        from ..data.decode import image_size

        cfg = self.config
        out, total = [], 0
        for i, item in enumerate(raw):
            if isinstance(item, (bytes, bytearray, memoryview)):
                try:
                    w, h = image_size(bytes(item), orientation=False)  # pixels only: never a decode
                except ImageDecodeError as exc:
                    out.append(PredictionError(i, f"image #{i}", exc.reason))
                    continue
                total += w * h
                if w * h > cfg.max_image_pixels:
                    out.append(PredictionError(i, f"image #{i}", f"{w}x{h} is {w * h} pixels; this server decodes at "
                                                                  f"most {cfg.max_image_pixels} per image"))
                    continue
            out.append(item)
        if total > cfg.max_request_pixels:
            self.metrics.rejected.labels("too_many_pixels").inc()
            raise PredictFailure(413, f"the request's images have {total} pixels in all; this server decodes at most "
                                      f"{cfg.max_request_pixels} per request (--max-request-pixels)")
        return out

    def lookup(self, name: str) -> Optional[_Served]:
        key = self.aliases.get(name.lower()) or self.aliases.get(_key(name))
        return self.models.get(key) if key else None

    # -------------------------------------------------------------------- the prediction path
    def _prepare(self, served: _Served, raw: List, channel_order: str):
        """Decode + preprocess (in the decode pool): -> (batch or None, per-image error list), through
        the model's prediction pipeline (full-size decodes one at a time into the batch; an image the
        transform rejects becomes its own error)."""
        return served.module.pipeline.prepare(raw, channel_order, max_pixels=self.config.max_image_pixels)

    def stop(self, drain: bool = True):
        self.ready = False
        self.stopping = True
        for served in self.models.values():
            served.batcher.stop(drain=drain, timeout=self.config.drain_timeout_s)
        self.pool.shutdown(wait=False)


def create_app(modules: Dict[str, object], config: Optional[ServeConfig] = None,
               defaults: Optional[Dict[str, dict]] = None):
    """FastAPI app serving ``modules`` ({route name: hubcls.hub.Module}); ``defaults``: per route,
    PaddleHub's ``predict_args`` (``top_k`` is the default of a request that sends none)."""
    from contextlib import asynccontextmanager

    if FastAPI is None:
        from ..errors import HubclsError

        raise HubclsError(f"hubcls serve needs FastAPI and uvicorn: pip install 'hubcls[serve]' ({_FASTAPI_ERROR})")

    server = Server(modules, config)
    cfg = server.config
    for route, args in (defaults or {}).items():
        if "top_k" in (args or {}):
            server.lookup(route).top_k = _int(args["top_k"], f"{route}: predict_args top_k")

    @asynccontextmanager
    async def lifespan(app):
        yield
        # graceful shutdown: uvicorn has stopped accepting connections and finished in-flight
        # requests; refuse new work, drain the queues, stop the worker threads
        await asyncio.get_running_loop().run_in_executor(None, server.stop, True)
        server.metrics.process_gone()

    app = FastAPI(
        title="hubcls serve",
        description="Image classification with hubcls models: PaddleHub-compatible and v1 APIs.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # served below from local files: /docs works without a network
        redoc_url=None,
    )
    app.state.server = server
    app.add_middleware(_RequestGuard, limit=cfg.max_request_bytes, body_timeout=cfg.body_timeout_s,
                       on_reject=lambda reason: server.metrics.rejected.labels(reason).inc())
    if cfg.allowed_hosts:  # outermost: a request for another Host never reaches the app
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(cfg.allowed_hosts))

    # ------------------------------------------------------------------ PaddleHub protocol
    @app.post("/predict/{module_name}", tags=["PaddleHub"], summary="PaddleHub Serving protocol")
    async def predict_paddlehub(module_name: str, request: Request):
        t0 = time.perf_counter()
        served = server.lookup(module_name)
        if served is None:
            server.metrics.requests.labels("<unknown>", "paddlehub", "404").inc()
            return _json(_hub("111", f"Module {module_name} is not available.", ""))
        try:
            body = await request.body()
            rows, top_k = await server.classify(served, server.read_paddlehub, body, served.top_k, module_name)
        except PredictFailure as exc:
            server.metrics.requests.labels(served.key, "paddlehub", str(exc.http_status)).inc()
            headers = {"Retry-After": "1"} if exc.http_status == 503 else None
            return _json(_hub(exc.hub_status, str(exc), ""), exc.http_status, headers)
        labels = served.module.labels
        topk = served.module.pipeline.topk
        results = []
        for r in rows:
            if isinstance(r, PredictionError):
                results.append(dict(r))
            else:
                idx, probs = topk(r, top_k)
                results.append({labels[i]: p for i, p in zip(idx, probs)})
        n_bad = sum(isinstance(r, PredictionError) for r in rows)
        server.metrics.requests.labels(served.key, "paddlehub", "200").inc()
        server.metrics.latency.labels(served.key, "paddlehub").observe(time.perf_counter() - t0)
        msg = f"{n_bad} of {len(rows)} images could not be decoded" if n_bad else ""
        # the shape of the PaddleHub module of this name (the module's metadata says which)
        if getattr(served.module, "serving_shape", "list") == "data":
            results = {"data": results}
        return _json(_hub("000", msg, results))

    # ------------------------------------------------------------------ v1 API
    @app.get("/v1/models", tags=["v1"], summary="Loaded models")
    async def list_models():
        return {"models": [s.info() for s in server.models.values()]}

    @app.get("/v1/models/{name}", tags=["v1"], summary="One model's metadata")
    async def model_info(name: str):
        served = server.lookup(name)
        if served is None:
            return JSONResponse({"error": f"unknown model {name!r}", "models": list(server.models)}, status_code=404)
        info = served.info()
        info["labels"] = served.module.labels
        return info

    @app.post("/v1/models/{name}:predict", tags=["v1"], summary="Classify images (multipart upload or JSON base64)")
    async def predict_v1(name: str, request: Request, top_k: Optional[int] = None):
        t0 = time.perf_counter()
        served = server.lookup(name)
        if served is None:
            server.metrics.requests.labels("<unknown>", "v1", "404").inc()
            return JSONResponse({"error": f"unknown model {name!r}", "models": list(server.models)}, status_code=404)
        try:
            body, multipart_top_k = await _read_v1_body(request, server)
            rows, k = await server.classify(served, server.read_v1, body, top_k, multipart_top_k)
        except PredictFailure as exc:
            server.metrics.requests.labels(served.key, "v1", str(exc.http_status)).inc()
            headers = {"Retry-After": "1"} if exc.http_status == 503 else None
            return _json({"error": str(exc)}, exc.http_status, headers)
        labels = served.module.labels
        preds = []
        for r in rows:
            if isinstance(r, PredictionError):
                preds.append({"error": r["error"]})
            else:
                idx, probs = served.module.pipeline.topk(r, k)
                preds.append({"top_k": [{"label": labels[i], "index": int(i), "prob": p} for i, p in zip(idx, probs)]})
        server.metrics.requests.labels(served.key, "v1", "200").inc()
        server.metrics.latency.labels(served.key, "v1").observe(time.perf_counter() - t0)
        return _json({"model": served.key, "predictions": preds})

    # ------------------------------------------------------------------ operations
    @app.get("/health/live", tags=["ops"])
    async def live():
        return {"status": "alive"}

    @app.get("/health/ready", tags=["ops"])
    async def ready():
        dead = [k for k, s in server.models.items() if not s.batcher.alive]
        if not server.ready or dead:
            return JSONResponse({"status": "not ready", "stopping": server.stopping, "dead_workers": dead},
                                status_code=503)
        # ready as soon as every model can answer; a model still exporting/timing its auto-chosen
        # backend in the background answers on its dygraph model meanwhile (and says so here)
        switching = {k: s.module.pipeline.backend_state for k, s in server.models.items()
                     if s.module.pipeline.backend_pending}
        return {"status": "ready", "models": list(server.models), "backends_switching": switching}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(server.metrics.collect_registry()), media_type=CONTENT_TYPE_LATEST)

    _offline_docs(app)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    static_files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else {}

    @app.get("/static/{fname}", include_in_schema=False)
    async def static(fname: str):
        path = static_files.get(fname)  # only the files shipped there: no path is built from the URL
        if path is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(path)

    return app


def _offline_docs(app) -> None:
    """/docs (Swagger UI) and /redoc from files installed on this machine - fastapi-offline's copies
    of the Swagger UI and ReDoc bundles (the serve extra) - never from a CDN, so the pages work on
    a machine without internet access. Without that package the pages say how to get it."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    try:
        import fastapi_offline

        assets_dir = Path(fastapi_offline.__file__).parent / "static"
    except ImportError:
        assets_dir = None
    assets = {p.name: p for p in assets_dir.iterdir() if p.is_file()} if assets_dir and assets_dir.is_dir() else {}
    missing = HTMLResponse("<p>The API pages need their assets: <code>pip install 'hubcls[serve]'</code> "
                           "(fastapi-offline). The schema is at <a href='/openapi.json'>/openapi.json</a>.</p>",
                           status_code=503)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui():
        if "swagger-ui-bundle.js" not in assets:
            return missing
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        if "redoc.standalone.js" not in assets:
            return missing
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url="/docs-assets/redoc.standalone.js",
                              redoc_favicon_url="/docs-assets/favicon.png", with_google_fonts=False)

    @app.get("/docs-assets/{fname}", include_in_schema=False)
    async def docs_asset(fname: str):
        path = assets.get(fname)  # only the package's files: no path is built from the URL
        if path is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(path)


try:  # answers are serialised once, by orjson where installed (the serve extra has it), else json
    import orjson as _orjson

    def _dumps(obj) -> bytes:
        return _orjson.dumps(obj)
except ImportError:  # pragma: no cover
    def _dumps(obj) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode()


def _json(obj, status: int = 200, headers=None):
    """A JSON response without FastAPI's generic encoder pass (the hot routes build plain dicts)."""
    return Response(_dumps(obj), status_code=status, headers=headers, media_type="application/json")


def _hub(status: str, msg: str, results):
    return {"status": status, "msg": msg, "results": results}


def _int(value, what: str) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        raise PredictFailure(400, f"{what} must be an integer, got {str(value)[:40]!r}") from None


def _parse_json(body: bytes):
    """JSON body -> object (in the decode pool); any malformed body is a ValueError."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {str(exc)[:120]}") from None


def _decode_v1_items(server: "Server", raw: list) -> list:
    """v1 items (bytes, base64 text from a JSON/multipart body, or errors) -> bytes/errors, checked."""
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            try:
                item = b64decode_image(item, i)
            except ImageDecodeError as exc:
                item = PredictionError(i, exc.source, exc.reason)
        out.append(item)
    return server.check_pixels(out)


async def _read_v1_body(request, server: "Server"):
    """-> (the raw JSON body as bytes, None) or (multipart items: bytes or base64 strings, the form's
    top_k); nothing is parsed as JSON or base64-decoded here (that happens in the decode pool, after the
    image count is checked)."""
    ctype = request.headers.get("content-type", "")
    limit = server.config.max_images_per_request
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=limit + 1, max_fields=limit + 16)
        except Exception as exc:  # noqa: BLE001 - the parser's message says what is wrong
            detail = getattr(exc, "detail", None) or str(exc)
            if "Too many" in str(detail):
                raise PredictFailure(413, f"more than {limit} images in one request (--max-images)") from None
            raise PredictFailure(400, f"bad multipart body: {str(detail)[:200]}") from None
        raw = []
        for field in ("images", "image", "file", "files"):
            for item in form.getlist(field):
                raw.append(await item.read() if hasattr(item, "read") else str(item))
        if not raw:
            raise PredictFailure(400, "multipart body has no file field named 'images' (or 'file')")
        return raw, form.get("top_k")
    return await request.body(), None


class _RequestGuard:
    """ASGI middleware in front of every route: the body must fit ``limit`` bytes (413, by
    Content-Length or while it streams, chunked included) and arrive within ``body_timeout``
    seconds (408). The app then reads the buffered body, so no route sees a partial one."""

    def __init__(self, app, limit: int, body_timeout: float, on_reject=None):
        self.app, self.limit, self.body_timeout = app, int(limit), float(body_timeout)
        self.on_reject = on_reject or (lambda reason: None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        has_body = False
        for k, v in scope.get("headers", []):
            if k == b"transfer-encoding":
                has_body = True
            elif k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    return await _send_json(send, 400, "invalid Content-Length")
                if declared > self.limit:
                    self.on_reject("too_large")
                    return await _send_json(send, 413, f"request body larger than {self.limit} bytes")
                has_body = declared > 0
        if not has_body:  # HTTP/1.1: no Content-Length and no Transfer-Encoding means no body
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                self.on_reject("body_timeout")
                return await _send_json(send, 408, f"the request body did not arrive within {self.body_timeout:g} s")
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                self.on_reject("too_large")
                return await _send_json(send, 413, f"request body larger than {self.limit} bytes")
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        chunks = None

        async def replay():
            nonlocal buffered
            if buffered is not None:
                message, buffered = buffered, None
                return message
            return await receive()  # after the body: only http.disconnect is left

        return await self.app(scope, replay, send)


async def _send_json(send, status: int, message: str) -> None:
    body = json.dumps({"status": "101", "msg": message, "error": message, "results": ""}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _version() -> str:
    from .. import __version__

    return __version__


def _uvicorn_options(cfg: ServeConfig, host: str, port: int, log_level: str) -> dict:
    """uvicorn's settings for ``cfg``: the fastest installed HTTP parser and event loop (httptools and
    uvloop from the serve extra; h11 and asyncio otherwise), each with the request-head deadline."""
    import importlib.util

    fast = importlib.util.find_spec("httptools") is not None
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return dict(host=host, port=port, log_level=log_level, access_log=False, loop=loop,
                timeout_graceful_shutdown=int(cfg.drain_timeout_s), limit_concurrency=int(cfg.max_connections),
                timeout_keep_alive=int(cfg.keep_alive_s),
                http=head_timeout_protocol(cfg.head_timeout_s, "httptools" if fast else "h11"))


def serve(modules: Dict[str, object], host: str = "127.0.0.1", port: int = 8866,
          config: Optional[ServeConfig] = None, log_level: str = "info", workers_note: bool = True,
          tune_malloc: bool = False, defaults: Optional[Dict[str, dict]] = None) -> None:
    """Run the server in this process until SIGINT/SIGTERM (graceful: drains the queues).

    ``tune_malloc`` (``hubcls serve`` sets it; it changes the whole process): large allocations
    get their own memory mappings, so the memory of a big request goes back to the system when
    it is done instead of staying in the heap (glibc only)."""
    import signal
    import threading

    import uvicorn

    app = create_app(modules, config, defaults=defaults)
    cfg = app.state.server.config
    if tune_malloc:
        _return_large_blocks_to_the_os()
    # uvicorn drains on SIGTERM, then restores the previous handler and re-raises the signal; a
    # Python-level no-op handler there makes a drained SIGTERM shutdown exit with status 0.
    main = threading.current_thread() is threading.main_thread()
    prev = signal.signal(signal.SIGTERM, lambda signum, frame: None) if main else None
    try:
        uvicorn.run(app, **_uvicorn_options(cfg, host, port, log_level))
    finally:
        if main:
            signal.signal(signal.SIGTERM, prev)


# --------------------------------------------------------------------------- several worker processes
ENV_SPEC = "HUBCLS_SERVE_SPEC"


def serve_workers(entries: List[dict], workers: int, host: str = "127.0.0.1", port: int = 8866,
                  config: Optional[ServeConfig] = None, log_level: str = "info") -> None:
    """``workers`` processes on one listening socket (uvicorn's supervisor: it restarts a worker that
    dies, and SIGTERM drains every worker). Each worker loads the models of ``entries`` itself
    (``load_models``), so each has its own model, batcher and decode pool, and uses the cores it
    gets; /metrics answers with the sum over the live workers (Prometheus multiprocess files in a
    directory made for this run)."""
    import shutil
    import signal
    import tempfile

    import uvicorn

    cfg = config or ServeConfig()
    metrics_dir = tempfile.mkdtemp(prefix="hubcls-serve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # read by every worker at import
    os.environ[ENV_SPEC] = json.dumps({"models": entries, "config": asdict(cfg)})
    prev = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        uvicorn.run("hubcls.hub.serving:worker_app", factory=True, workers=int(workers),
                    **_uvicorn_options(cfg, host, port, log_level))
    finally:
        signal.signal(signal.SIGTERM, prev)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_app():
    """The app of one ``serve_workers`` process, built from the spec its parent put in the environment."""
    import signal

    spec = json.loads(os.environ[ENV_SPEC])
    cfg = ServeConfig(**spec["config"])
    _return_large_blocks_to_the_os()
    # uvicorn has installed its graceful-shutdown handlers before it builds the app; importing Paddle
    # replaces SIGTERM/SIGINT with Paddle's fatal-signal reporter, so put uvicorn's back afterwards
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    modules, defaults = load_models(spec["models"])
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)
    return create_app(modules, cfg, defaults=defaults)


def load_models(entries: List[dict], log=None):
    """Build the served models: each entry ``{"model": spec, "route": name or None, "init_args": {...},
    "predict_args": {...}}``; ``init_args`` are ``hub.Module`` arguments (PaddleHub's config.json
    ``init_args``: weights, label_list, use_gpu, backend, directory, version). -> ({route: Module},
    {route: predict defaults})."""
    from ..errors import ConfigError
    from ..models._resolve import _looks_like_path
    from .module import Module

    modules, defaults = {}, {}
    for e in entries:
        spec, init = e["model"], dict(e.get("init_args") or {})
        init.pop("version", None)  # PaddleHub pins module versions; a hubcls model has one version
        directory = init.pop("directory", None)
        if directory is not None:
            spec = directory
        is_dir = _looks_like_path(spec)
        # a directory is routed under its own name: a fine-tuned model must not shadow the zoo model
        route = e.get("route") or (Path(spec).resolve().name if is_dir else spec)
        unknown = set(init) - MODULE_INIT_ARGS
        if unknown:
            raise ConfigError(f"{route}: init_args {sorted(unknown)} are not hub.Module arguments "
                              f"(accepted: {', '.join(sorted(MODULE_INIT_ARGS | {'directory', 'version'}))})")
        predict = dict(e.get("predict_args") or {})
        bad = set(predict) - PREDICT_ARGS
        if bad:
            raise ConfigError(f"{route}: predict_args {sorted(bad)} are not understood "
                              f"(accepted: {', '.join(sorted(PREDICT_ARGS))})")
        weights = init.get("weights")
        if weights in ("official",):
            init["weights"] = None
        if log is not None:
            log(f"loading {spec}" + ("" if is_dir else f" (weights: {weights or 'official'})") + " ...")
        if route in modules:
            raise ConfigError(f"two models would be served as {route!r}" + ("; rename the directory" if is_dir else ""))
        modules[route] = Module(name=spec, **init)
        defaults[route] = predict
    if not modules:
        raise ConfigError("hubcls serve needs at least one model")
    return modules, defaults


def route_names(entries: List[dict]) -> List[str]:
    """The /predict/<name> routes ``load_models(entries)`` will serve (without loading anything)."""
    from ..models._resolve import _looks_like_path

    out = []
    for e in entries:
        spec = (e.get("init_args") or {}).get("directory") or e["model"]
        out.append(e.get("route") or (Path(spec).resolve().name if _looks_like_path(spec) else spec))
    return out


MODULE_INIT_ARGS = {"weights", "label_list", "use_gpu", "backend"}
# PaddleHub's per-module predict_args: top_k is the default of requests that send none; batch_size
# and use_gpu are accepted for compatibility (batching is the server's; the device is the module's)
PREDICT_ARGS = {"top_k", "batch_size", "use_gpu"}


def head_timeout_protocol(seconds: float, parser: str = "h11"):
    """uvicorn's HTTP protocol (``parser``: "h11" or "httptools") plus a deadline for every request
    head: a connection that has not sent a complete request line + headers ``seconds`` after it
    opened (or after its previous response) is closed. uvicorn has no such timeout of its own, so
    a client sending one header byte at a time (slowloris) would otherwise hold its connection
    forever. Returns a picklable factory (worker processes receive it)."""
    import functools

    cls = _HEAD_TIMEOUT_PROTOCOLS[parser]()
    return functools.partial(cls, head_timeout=float(seconds))


class _HeadTimeout:
    """Mixin over a uvicorn HTTP protocol class (both keep the request in progress in ``self.cycle``)."""

    _head_timer = None
    _head_cycle = None

    def __init__(self, *args, head_timeout: float = 10.0, **kwargs):
        super().__init__(*args, **kwargs)
        self._head_timeout_s = head_timeout

    def _arm_head_timer(self):
        self._cancel_head_timer()
        self._head_cycle = self.cycle
        self._head_timer = self.loop.call_later(self._head_timeout_s, self._head_timeout)

    def _cancel_head_timer(self):
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self):
        self._head_timer = None
        # no new request head since the timer was armed (a new head makes a new cycle)
        if self.cycle is self._head_cycle and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport):
        super().connection_made(transport)
        self._arm_head_timer()

    def on_response_complete(self):
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc):
        self._cancel_head_timer()
        super().connection_lost(exc)


def _h11_protocol():
    global HeadTimeoutH11Protocol
    if "HeadTimeoutH11Protocol" not in globals():
        from uvicorn.protocols.http.h11_impl import H11Protocol

        HeadTimeoutH11Protocol = type("HeadTimeoutH11Protocol", (_HeadTimeout, H11Protocol), {"__module__": __name__})
    return HeadTimeoutH11Protocol


def _httptools_protocol():
    global HeadTimeoutHttpToolsProtocol
    if "HeadTimeoutHttpToolsProtocol" not in globals():
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        HeadTimeoutHttpToolsProtocol = type("HeadTimeoutHttpToolsProtocol", (_HeadTimeout, HttpToolsProtocol),
                                            {"__module__": __name__})
    return HeadTimeoutHttpToolsProtocol


_HEAD_TIMEOUT_PROTOCOLS = {"h11": _h11_protocol, "httptools": _httptools_protocol}


def __getattr__(name):  # a worker process unpickles the protocol class by name before anything made it
    if name in ("HeadTimeoutH11Protocol", "HeadTimeoutHttpToolsProtocol"):
        return (_h11_protocol if "H11" in name else _httptools_protocol)()
    raise AttributeError(name)


def _return_large_blocks_to_the_os() -> None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
        libc.mallopt(m_mmap_threshold, 1 << 20)  # fixed: glibc otherwise raises it up to 32 MiB
        libc.mallopt(m_trim_threshold, 8 << 20)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def config_dict(config: ServeConfig) -> dict:
    return asdict(config)
