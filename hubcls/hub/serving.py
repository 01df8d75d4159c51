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
queue -> 503 with Retry-After when full). Bodies larger than ``max_request_bytes`` get 413.
"""
import asyncio
import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

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
    max_delay_ms: float = 5.0         # how long the batcher waits to fill a batch
    max_queue: int = 64               # images waiting per model; more -> 503
    batching: bool = True             # False: every request runs alone (baseline)
    max_request_bytes: int = 20 << 20  # larger bodies -> 413
    max_images_per_request: int = 64
    max_top_k: int = 100
    drain_timeout_s: float = 30.0     # graceful shutdown: finish queued work for at most this long


def _key(name: str) -> str:
    from ..models import canonical_name

    return canonical_name(name)


class _Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.queue_depth = Gauge("hubcls_queue_depth", "Images waiting for the model", ["model"], registry=r)
        self.rejected = Counter("hubcls_rejected_total", "Requests rejected before the model",
                                ["reason"], registry=r)
        self.in_flight = Gauge("hubcls_requests_in_flight", "Prediction requests being worked on", registry=r)


class _Served:
    """One loaded Module + its batcher."""

    def __init__(self, key: str, module, config: ServeConfig, metrics: _Metrics):
        self.key = key
        self.module = module
        self.preparing = 0  # requests between arrival and submit (decode + preprocess)
        self._lock = threading.Lock()
        m = metrics
        self.batcher = Batcher(
            module.logits,
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
        return {
            "name": self.key,
            "model": cfg.name,
            "arch": cfg.arch,
            "num_classes": self.module.num_classes,
            "input_size": cfg.input_size,
            "resize_short": cfg.resize_short,
            "weights": self.module.weights_source,
        }


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
        self.ready = True
        self.stopping = False

    def lookup(self, name: str) -> Optional[_Served]:
        key = self.aliases.get(name.lower()) or self.aliases.get(_key(name))
        return self.models.get(key) if key else None

    # -------------------------------------------------------------------- the prediction path
    def _prepare(self, served: _Served, raw: List, channel_order: str):
        """Decode + preprocess (in a worker thread): -> (batch or None, per-image error list), through
        the model's prediction pipeline (one fused call for the good images; an image the transform
        rejects becomes its own error)."""
        return served.module.pipeline.prepare(raw, channel_order)

    async def predict(self, served: _Served, raw: List, top_k: int, channel_order: str = "RGB"):
        """-> list of (probabilities row, or PredictionError) in input order."""
        self.metrics.in_flight.inc()
        try:
            return await self._predict(served, raw, top_k, channel_order)
        finally:
            self.metrics.in_flight.dec()

    async def _predict(self, served: _Served, raw: List, top_k: int, channel_order: str):
        cfg = self.config
        if self.stopping:
            self.metrics.rejected.labels("shutting_down").inc()
            raise PredictFailure(503, "server is shutting down")
        if not raw:
            raise PredictFailure(400, "no images in the request", "101")
        if len(raw) > cfg.max_images_per_request:
            self.metrics.rejected.labels("too_many_images").inc()
            raise PredictFailure(413, f"{len(raw)} images in one request; the limit is {cfg.max_images_per_request}")
        if not 1 <= top_k <= cfg.max_top_k:
            raise PredictFailure(400, f"top_k must be between 1 and {cfg.max_top_k}, got {top_k}")
        loop = asyncio.get_running_loop()
        served.enter()
        try:
            batch, errors = await loop.run_in_executor(None, self._prepare, served, raw, channel_order)
            future = None
            if batch is not None:
                try:
                    future = served.batcher.submit(batch)
                except QueueFull as exc:
                    self.metrics.rejected.labels("queue_full").inc()
                    raise PredictFailure(503, str(exc)) from exc
                except ShuttingDown as exc:
                    raise PredictFailure(503, str(exc)) from exc
        finally:
            served.leave()
        logits = None
        if future is not None:
            try:
                logits = await asyncio.wrap_future(future)
            except ShuttingDown as exc:
                raise PredictFailure(503, str(exc)) from exc
            except Exception as exc:  # noqa: BLE001 - a model failure is this request's 500
                raise PredictFailure(500, f"prediction failed: {type(exc).__name__}: {exc}") from exc
        probs = served.module.pipeline.probabilities(logits) if logits is not None else None
        out, row = [], 0
        for err in errors:
            if err is not None:
                out.append(err)
                self.metrics.images.labels(served.key, "error").inc()
            else:
                out.append(probs[row])
                row += 1
                self.metrics.images.labels(served.key, "ok").inc()
        return out

    def stop(self, drain: bool = True):
        self.ready = False
        self.stopping = True
        for served in self.models.values():
            served.batcher.stop(drain=drain, timeout=self.config.drain_timeout_s)


def create_app(modules: Dict[str, object], config: Optional[ServeConfig] = None):
    """FastAPI app serving ``modules`` ({route name: hubcls.hub.Module})."""
    from contextlib import asynccontextmanager

    if FastAPI is None:
        from ..errors import HubclsError

        raise HubclsError(f"hubcls serve needs FastAPI and uvicorn: pip install 'hubcls[serve]' ({_FASTAPI_ERROR})")

    server = Server(modules, config)
    cfg = server.config

    @asynccontextmanager
    async def lifespan(app):
        yield
        # graceful shutdown: uvicorn has stopped accepting connections and finished in-flight
        # requests; refuse new work, drain the queues, stop the worker threads
        await asyncio.get_running_loop().run_in_executor(None, server.stop, True)

    app = FastAPI(
        title="hubcls serve",
        description="Image classification with hubcls models: PaddleHub-compatible and v1 APIs.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_middleware(_BodyLimit, limit=cfg.max_request_bytes, on_reject=lambda: server.metrics.rejected.labels("too_large").inc())

    # ------------------------------------------------------------------ PaddleHub protocol
    @app.post("/predict/{module_name}", tags=["PaddleHub"], summary="PaddleHub Serving protocol")
    async def predict_paddlehub(module_name: str, request: Request):
        t0 = time.perf_counter()
        served = server.lookup(module_name)
        if served is None:
            server.metrics.requests.labels("<unknown>", "paddlehub", "404").inc()
            return _hub("111", f"Module {module_name} is not available.", "")
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except Exception:  # noqa: BLE001 - any parse failure is PaddleHub's "112"
            server.metrics.requests.labels(served.key, "paddlehub", "400").inc()
            return _hub("112", f"This usage is out of date, please use 'application/json' as content-type to post "
                                f"to /predict/{module_name} with a JSON object body.", "")
        try:
            imgs = body.get("images")
            if not isinstance(imgs, list):
                raise PredictFailure(400, "the request needs \"images\": a list of base64-encoded images")
            top_k = _int(body.get("top_k", 1), "top_k")
            raw = from_base64(imgs)
            # PaddleHub clients send cv2-encoded images; decoded bytes are RGB either way
            rows = await server.predict(served, raw, top_k, "RGB")
        except PredictFailure as exc:
            server.metrics.requests.labels(served.key, "paddlehub", str(exc.http_status)).inc()
            resp = _hub(exc.hub_status, str(exc), "")
            if exc.http_status == 503:
                return JSONResponse(resp, status_code=503, headers={"Retry-After": "1"})
            return resp
        labels = served.module.labels
        results = []
        for r in rows:
            if isinstance(r, PredictionError):
                results.append(dict(r))
            else:
                idx, probs = served.module.pipeline.topk(r, top_k)
                results.append({labels[i]: p for i, p in zip(idx, probs)})
        n_bad = sum(isinstance(r, PredictionError) for r in rows)
        server.metrics.requests.labels(served.key, "paddlehub", "200").inc()
        server.metrics.latency.labels(served.key, "paddlehub").observe(time.perf_counter() - t0)
        msg = f"{n_bad} of {len(rows)} images could not be decoded" if n_bad else ""
        return _hub("000", msg, results)

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
            raw, body_top_k = await _read_v1_body(request)
            k = _int(top_k if top_k is not None else (body_top_k if body_top_k is not None else 5), "top_k")
            rows = await server.predict(served, raw, k, "RGB")
        except PredictFailure as exc:
            server.metrics.requests.labels(served.key, "v1", str(exc.http_status)).inc()
            headers = {"Retry-After": "1"} if exc.http_status == 503 else None
            return JSONResponse({"error": str(exc)}, status_code=exc.http_status, headers=headers)
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
        return {"model": served.key, "predictions": preds}

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
        return {"status": "ready", "models": list(server.models)}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/static/{fname}", include_in_schema=False)
    async def static(fname: str):
        path = (STATIC_DIR / fname).resolve()
        if path.parent != STATIC_DIR.resolve() or not path.is_file():
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(path)

    return app


def _hub(status: str, msg: str, results):
    return {"status": status, "msg": msg, "results": results}


def _int(value, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise PredictFailure(400, f"{what} must be an integer, got {value!r}") from None


async def _read_v1_body(request):
    """-> (list of raw image bytes / errors, top_k from the body or None)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form()
        except Exception as exc:  # noqa: BLE001
            raise PredictFailure(400, f"bad multipart body: {exc}") from exc
        raw = []
        for field in ("images", "image", "file", "files"):
            for item in form.getlist(field):
                if hasattr(item, "read"):
                    raw.append(await item.read())
                else:  # a text field: base64
                    try:
                        raw.append(b64decode_image(item, len(raw)))
                    except ImageDecodeError as exc:
                        raw.append(PredictionError(len(raw), exc.source, exc.reason))
        if not raw:
            raise PredictFailure(400, "multipart body has no file field named 'images' (or 'file')")
        return raw, form.get("top_k")
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise PredictFailure(400, f"body is neither multipart/form-data nor JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("images"), list):
        raise PredictFailure(400, "JSON body needs \"images\": a list of base64-encoded images")
    return from_base64(body["images"]), body.get("top_k")


class _BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes (by Content-Length, or while streaming)."""

    def __init__(self, app, limit: int, on_reject=None):
        self.app, self.limit, self.on_reject = app, int(limit), on_reject or (lambda: None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    self.on_reject()
                    return await self._reject(send)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            self.on_reject()
            if not started:
                await self._reject(send)

    async def _reject(self, send):
        body = json.dumps({"status": "101", "msg": f"request body larger than {self.limit} bytes",
                           "error": f"request body larger than {self.limit} bytes", "results": ""}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _version() -> str:
    from .. import __version__

    return __version__


def serve(modules: Dict[str, object], host: str = "127.0.0.1", port: int = 8866,
          config: Optional[ServeConfig] = None, log_level: str = "info", workers_note: bool = True) -> None:
    """Run the server in this process until SIGINT/SIGTERM (graceful: drains the queues)."""
    import signal
    import threading

    import uvicorn

    app = create_app(modules, config)
    cfg = app.state.server.config
    # uvicorn drains on SIGTERM, then restores the previous handler and re-raises the signal; a
    # Python-level no-op handler there makes a drained SIGTERM shutdown exit with status 0.
    main = threading.current_thread() is threading.main_thread()
    prev = signal.signal(signal.SIGTERM, lambda signum, frame: None) if main else None
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=int(cfg.drain_timeout_s), access_log=False)
    finally:
        if main:
            signal.signal(signal.SIGTERM, prev)


def config_dict(config: ServeConfig) -> dict:
    return asdict(config)
