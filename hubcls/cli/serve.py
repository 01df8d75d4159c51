"""``hubcls serve`` / ``hubcls serving start|stop``: HTTP serving, with PaddleHub Serving's flags.

PaddleHub's protocol (POST /predict/<module>), a v1 API, health checks, Prometheus metrics, API pages
and a web page at /. Binds 127.0.0.1 unless --host says otherwise. See docs/serving.md.

PaddleHub Serving's command line works as it is (``hub serving start`` -> ``hubcls serving start``):
``-m A B`` (or ``-m A -m B``; ``name==version`` accepted, the version ignored), ``-p 8866``,
``--use_gpu``, ``--gpu 0``, ``--use_multiprocess``, ``--workers N``, ``-c config.json`` (PaddleHub's
schema: ``modules_info`` with per-module ``init_args`` / ``predict_args``, ``port``, ``use_gpu``,
``use_multiprocess``, ``workers``, ``gpu``; the PaddleHub 1.x list form too) and ``--modules_info JSON``;
``hubcls serving stop -p 8866`` stops a server started on that port.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ._common import MODEL_HELP, add_parser


def _per_model(values, names, flag):
    from ..errors import ConfigError

    values = list(values or [])
    if values and len(values) != len(names):
        raise ConfigError(f"{flag} was given {len(values)} times for {len(names)} -m models; give one {flag} per -m, "
                          f"in the same order" + (" (or 'official' / 'random')" if flag == "--weights" else ""))
    return values or [None] * len(names)


def _strip_version(spec: str) -> str:
    """PaddleHub's ``name==version``: hubcls models have one version (the weights say which)."""
    return spec.split("==", 1)[0] if "==" in spec and not os.path.exists(spec) else spec


def _modules_info_entries(info, where: str) -> list:
    """PaddleHub's ``modules_info`` -> serve entries. 2.x: ``{name: {"init_args": {...},
    "predict_args": {...}}}``; 1.x: ``[{"module": name, "version": v, "batch_size": n}, ...]``."""
    from ..errors import ConfigError

    entries = []
    if isinstance(info, dict):
        for name, spec in info.items():
            spec = spec or {}
            if not isinstance(spec, dict) or set(spec) - {"init_args", "predict_args"}:
                raise ConfigError(f"{where}: modules_info.{name} takes init_args and predict_args (PaddleHub's "
                                  f"schema), got {spec!r:.200}")
            init = dict(spec.get("init_args") or {})
            name = init.pop("name", None) or name
            entries.append({"model": _strip_version(name), "route": None if init.get("directory") else
                            _strip_version(name), "init_args": init, "predict_args": dict(spec.get("predict_args") or {})})
    elif isinstance(info, list):
        for item in info:
            if not isinstance(item, dict) or "module" not in item:
                raise ConfigError(f"{where}: each modules_info item needs \"module\" (PaddleHub 1.x form), got {item!r:.200}")
            predict = {"batch_size": item["batch_size"]} if "batch_size" in item else {}
            entries.append({"model": _strip_version(item["module"]), "route": _strip_version(item["module"]),
                            "init_args": {}, "predict_args": predict})
    else:
        raise ConfigError(f"{where}: modules_info must be an object {{name: {{init_args, predict_args}}}} "
                          f"(or PaddleHub 1.x's list)")
    return entries


def _read_config(path: str) -> dict:
    from ..errors import ConfigError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"-c {path}: no such file (PaddleHub's serving config.json)")
    try:
        cfg = json.loads(p.read_text())
    except ValueError as exc:
        raise ConfigError(f"-c {path}: not JSON ({exc})") from None
    if not isinstance(cfg, dict) or "modules_info" not in cfg:
        raise ConfigError(f"-c {path}: PaddleHub's serving config needs \"modules_info\"")
    known = {"modules_info", "port", "use_gpu", "use_multiprocess", "workers", "gpu"}
    unknown = set(cfg) - known
    if unknown:
        raise ConfigError(f"-c {path}: unknown keys {sorted(unknown)} (PaddleHub's schema: {', '.join(sorted(known))})")
    return cfg


def _entries(args) -> list:
    """Every model to serve, from -m/--weights/--label-list, --model-dir, -c and --modules_info."""
    names = [_strip_version(n) for n in args.model or []]
    weights = _per_model(args.weights, names, "--weights")
    label_lists = _per_model(args.label_list, names, "--label-list")
    entries = []
    for n, w, ll in zip(names, weights, label_lists):
        init = {k: v for k, v in (("weights", w), ("label_list", ll)) if v is not None}
        entries.append({"model": n, "init_args": init, "predict_args": {}})
    entries += [{"model": d, "init_args": {}, "predict_args": {}} for d in args.model_dir or []]
    if args.config_data is not None:
        entries += _modules_info_entries(args.config_data["modules_info"], args.config)
    if args.modules_info:
        try:
            info = json.loads(args.modules_info)
        except ValueError as exc:
            from ..errors import ConfigError

            raise ConfigError(f"--modules_info: not JSON ({exc})") from None
        entries += _modules_info_entries(info, "--modules_info")
    for e in entries:
        init = e["init_args"]
        if args.use_gpu:
            init.setdefault("use_gpu", True)
        if args.backend is not None:
            init.setdefault("backend", args.backend)
    return entries


def _apply_config_file(args) -> None:
    """-c config.json: its port / use_gpu / use_multiprocess / workers / gpu, unless given as flags."""
    args.config_data = _read_config(args.config) if args.config else None
    cfg = args.config_data or {}
    if args.port is None:
        args.port = int(cfg.get("port", 8866))
    args.use_gpu = args.use_gpu or bool(cfg.get("use_gpu", False))
    args.use_multiprocess = args.use_multiprocess or bool(cfg.get("use_multiprocess", False))
    if args.workers is None and cfg.get("workers") is not None:
        args.workers = int(cfg["workers"])
    if args.gpu is None and cfg.get("gpu") is not None:
        args.gpu = str(cfg["gpu"])


def _load_modules(args) -> dict:
    """The models of a parsed ``serve`` command line, loaded: {route: hub.Module}."""
    from ..hub.serving import load_models

    _apply_config_file(args)
    return load_models(_entries(args), log=lambda m: print(m, file=sys.stderr, flush=True))[0]


def _workers(args) -> int:
    if args.workers is not None:
        n = int(args.workers)
    elif args.use_multiprocess:
        # one process per core (PaddleHub's gunicorn uses 2*cores+1 for I/O-bound Flask workers; a
        # hubcls worker keeps its cores busy with the model, so more workers than cores only contend)
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    else:
        n = 1
    if n < 1:
        from ..errors import ConfigError

        raise ConfigError(f"--workers must be >= 1, got {n}")
    return n


def _pid_file(port: int) -> Path:
    from .._download import hubcls_home

    return Path(hubcls_home()) / "serving" / f"serving_{port}.json"


def _run(args) -> int:
    if getattr(args, "action", "start") == "stop":
        return _stop(args)
    from ..extras import require

    require("serve", "hubcls serve")  # before any model is loaded: the fix in one line
    from ..hub.serving import ServeConfig, load_models, serve, serve_workers

    _apply_config_file(args)
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)  # PaddleHub's --gpu: the cards to use
        args.use_gpu = True
    config = ServeConfig(
        max_batch_size=args.max_batch_size,
        max_delay_ms=args.max_delay_ms,
        max_queue=args.max_queue,
        batching=not args.no_batching,
        max_request_bytes=int(args.max_request_mb * (1 << 20)),
        max_images_per_request=args.max_images,
        max_image_pixels=int(args.max_image_pixels),
        max_request_pixels=int(args.max_request_pixels),
        max_connections=args.max_connections,
        head_timeout_s=args.head_timeout,
        body_timeout_s=args.body_timeout,
        keep_alive_s=args.keep_alive,
        decode_workers=args.decode_workers,
        allowed_hosts=args.allowed_host or None,
    )
    entries = _entries(args)
    if not entries:
        from ..errors import ConfigError

        raise ConfigError("hubcls serve needs at least one -m MODEL, --model-dir DIR or -c config.json")
    workers = _workers(args)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding {args.host}: the server is reachable from other machines "
              "(there is no authentication)", file=sys.stderr)
    log_level = "info" if args.verbose else "warning"
    pid_file = _pid_file(args.port)
    if workers == 1:
        modules, defaults = load_models(entries, log=lambda m: print(m, file=sys.stderr, flush=True))
        _announce(args, list(modules), workers)
        _write_pid(pid_file, args)
        try:
            serve(modules, host=args.host, port=args.port, config=config, log_level=log_level, tune_malloc=True,
                  defaults=defaults)
        finally:
            pid_file.unlink(missing_ok=True)
    else:
        from ..hub.serving import route_names

        _announce(args, route_names(entries), workers)
        _write_pid(pid_file, args)
        try:
            serve_workers(entries, workers, host=args.host, port=args.port, config=config, log_level=log_level)
        finally:
            pid_file.unlink(missing_ok=True)
    return 0


def _announce(args, routes, workers: int) -> None:
    paths = ", ".join(f"/predict/{n}" for n in routes)
    extra = f"; {workers} worker processes, each loading the models" if workers > 1 else ""
    print(f"hubcls serve: http://{args.host}:{args.port}/  (PaddleHub routes: {paths}; "
          f"v1: /v1/models/<name>:predict; /docs, /metrics, /health/ready{extra})", file=sys.stderr, flush=True)


def _write_pid(path: Path, args) -> None:
    import time

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"pid": os.getpid(), "port": args.port, "start_time": time.time()}))
    except OSError:  # a read-only home only loses `hubcls serving stop`
        pass


def _stop(args) -> int:
    """``hubcls serving stop -p PORT``: SIGTERM the server started on PORT (it drains, then exits)."""
    import signal

    from ..errors import HubclsError

    port = args.port or 8866
    path = _pid_file(port)
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        raise HubclsError(f"no hubcls server recorded on port {port} ({path} is missing)") from None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        print(f"hubcls serving: the server on port {port} (pid {pid}) had already stopped", file=sys.stderr)
        return 0
    print(f"hubcls serving: stopping the server on port {port} (pid {pid}; it finishes its requests first)",
          file=sys.stderr)
    return 0


def _add_arguments(p) -> None:
    p.add_argument("-m", "--model", "--modules", action="extend", nargs="+", metavar="MODEL",
                   help=MODEL_HELP + "; several after one -m (PaddleHub style) or repeated; name==version accepted")
    p.add_argument("--weights", action="append", metavar="FILE",
                   help="weights for the matching -m (repeat in -m order; 'official' or 'random' allowed)")
    p.add_argument("--label-list", action="append", metavar="FILE",
                   help="class names for the matching -m (repeat in -m order)")
    p.add_argument("--model-dir", action="append", metavar="DIR",
                   help="serve a model package / training run / export directory under its directory name; repeatable")
    p.add_argument("-c", "--config", metavar="CONFIG_JSON",
                   help="PaddleHub's serving config.json (modules_info with init_args/predict_args, port, use_gpu, "
                        "use_multiprocess, workers, gpu); flags given as well win")
    p.add_argument("--modules_info", "-mi", metavar="JSON", help="PaddleHub's modules_info as a JSON string")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("-p", "--port", type=int, default=None, help="port (default 8866, like PaddleHub)")
    p.add_argument("--workers", "-w", type=int, default=None,
                   help="server processes on the one port, each loading the models (default 1; "
                        "--use_multiprocess without --workers: one per core)")
    p.add_argument("--use_multiprocess", "--use-multiprocess", action="store_true",
                   help="PaddleHub's switch: several worker processes (see --workers)")
    p.add_argument("--max-batch-size", type=int, default=8, help="images per model call (default 8)")
    p.add_argument("--max-delay-ms", type=float, default=0.0,
                   help="wait up to this long for more requests while others are being decoded (default 0: "
                        "adaptive - batch what queued while the model ran, never idle)")
    p.add_argument("--max-queue", type=int, default=64, help="images waiting per model before 503 (default 64)")
    p.add_argument("--no-batching", action="store_true", help="run every request on its own")
    p.add_argument("--max-request-mb", type=float, default=20.0, help="largest request body in MiB (413 above)")
    p.add_argument("--max-images", type=int, default=64, help="most images in one request")
    g = p.add_argument_group("limits (docs/security.md)")
    g.add_argument("--max-image-pixels", type=float, default=40e6,
                   help="largest image in pixels, read from its header before decoding (default 40e6)")
    g.add_argument("--max-request-pixels", type=float, default=100e6,
                   help="pixels of all images of one request together; more -> 413 (default 100e6)")
    g.add_argument("--max-connections", type=int, default=64,
                   help="open connections + requests in progress (per worker); more -> 503 (default 64)")
    g.add_argument("--head-timeout", type=float, default=10.0,
                   help="seconds a client has to send a request's line and headers (default 10)")
    g.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds a client has to send a request's body; else 408 (default 30)")
    g.add_argument("--keep-alive", type=int, default=5, help="seconds an idle keep-alive connection stays open")
    g.add_argument("--decode-workers", type=int, default=0,
                   help="threads decoding requests (JSON, base64, images); 0: min(4, cores)")
    g.add_argument("--allowed-host", action="append", metavar="HOST",
                   help="accept only requests whose Host header is HOST (repeatable; '*.example.com' works); "
                        "default: any")
    p.add_argument("--use-gpu", "--use_gpu", action="store_true", help="run the models on the GPU")
    p.add_argument("--gpu", "-i", default=None, metavar="IDS",
                   help="PaddleHub's --gpu: CUDA devices to use, e.g. 0 or 0,1 (sets CUDA_VISIBLE_DEVICES; implies --use_gpu)")
    p.add_argument("--backend", default=None,
                   help="inference backend (dygraph, inference, onnxruntime, ...; default: auto / HUBCLS_BACKEND)")
    p.set_defaults(func=_run)


EXAMPLES = ["hubcls serve -m resnet50_vd_imagenet_ssld                  # official weights",
            "hubcls serve --model-dir output/quickstart --port 8080      # your trained run",
            "hubcls serve -m resnet50_vd_imagenet_ssld mobilenet_v3_small_imagenet_ssld -p 8866 --workers 2"]


def register(sub):
    p = add_parser(sub, "serve", help="serve models over HTTP (PaddleHub protocol + v1 API + web page)",
                   examples=EXAMPLES)
    _add_arguments(p)
    s = add_parser(sub, "serving", help="PaddleHub's `hub serving start|stop`: the same server as `hubcls serve`",
                   examples=["hubcls serving start -m resnet50_vd_imagenet_ssld -p 8866",
                             "hubcls serving start -c config.json",
                             "hubcls serving stop -p 8866"])
    s.add_argument("action", choices=["start", "stop"], help="start a server, or stop the one on --port")
    _add_arguments(s)
