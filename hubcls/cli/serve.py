"""``hubcls serve -m MODEL [-m MODEL2] [--weights FILE] [--model-dir DIR]``: HTTP serving.

PaddleHub's protocol (POST /predict/<module>), a v1 API, health checks, Prometheus metrics and a
web page at /. Binds 127.0.0.1 unless --host says otherwise. See docs/serving.md.
"""
from __future__ import annotations

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


def _load_modules(args) -> dict:
    from ..errors import ConfigError
    from ..hub.module import Module
    from ..models._resolve import _looks_like_path

    names = list(args.model or [])
    weights = _per_model(args.weights, names, "--weights")
    label_lists = _per_model(args.label_list, names, "--label-list")
    entries = [(n, w, ll) for n, w, ll in zip(names, weights, label_lists)]
    entries += [(d, None, None) for d in args.model_dir or []]
    modules = {}
    for spec, w, ll in entries:
        w = None if w in (None, "official") else w
        is_dir = _looks_like_path(spec)
        # a directory is routed under its own name: a fine-tuned model must not shadow the zoo model
        route = Path(spec).resolve().name if is_dir else spec
        print(f"loading {spec}" + ("" if is_dir else f" (weights: {w or 'official'})") + " ...", file=sys.stderr, flush=True)
        m = Module(name=spec, weights=w, label_list=ll, use_gpu=args.use_gpu, backend=args.backend)
        if route in modules:
            raise ConfigError(f"two models would be served as {route!r}" + ("; rename the directory" if is_dir else ""))
        modules[route] = m
    if not modules:
        raise ConfigError("hubcls serve needs at least one -m MODEL or --model-dir DIR")
    return modules


def _run(args) -> int:
    from ..hub.serving import ServeConfig, serve

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
    modules = _load_modules(args)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding {args.host}: the server is reachable from other machines "
              "(there is no authentication)", file=sys.stderr)
    routes = ", ".join(f"/predict/{n}" for n in modules)
    print(f"hubcls serve: http://{args.host}:{args.port}/  (PaddleHub routes: {routes}; "
          f"v1: /v1/models/<name>:predict; /docs, /metrics, /health/ready)", file=sys.stderr, flush=True)
    serve(modules, host=args.host, port=args.port, config=config,
          log_level="info" if args.verbose else "warning", tune_malloc=True)
    return 0


def register(sub):
    p = add_parser(sub, "serve", help="serve models over HTTP (PaddleHub protocol + v1 API + web page)",
                   examples=["hubcls serve -m resnet50_vd_imagenet_ssld                  # official weights",
                             "hubcls serve --model-dir output/quickstart --port 8080      # your trained run",
                             "hubcls serve -m MobileNetV3_small_x0_35 --weights best_model.pdparams --label-list labels.txt"])
    p.add_argument("-m", "--model", action="append", metavar="MODEL", help=MODEL_HELP + "; repeatable")
    p.add_argument("--weights", action="append", metavar="FILE",
                   help="weights for the matching -m (repeat in -m order; 'official' or 'random' allowed)")
    p.add_argument("--label-list", action="append", metavar="FILE",
                   help="class names for the matching -m (repeat in -m order)")
    p.add_argument("--model-dir", action="append", metavar="DIR",
                   help="serve a model package / training run / export directory under its directory name; repeatable")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8866, help="port (default 8866, like PaddleHub)")
    p.add_argument("--max-batch-size", type=int, default=8, help="images per model call (default 8)")
    p.add_argument("--max-delay-ms", type=float, default=5.0, help="wait at most this long to fill a batch")
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
                   help="open connections + requests in progress; more -> 503 (default 64)")
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
    p.add_argument("--use-gpu", action="store_true", help="run the models on the GPU")
    p.add_argument("--backend", default=None,
                   help="inference backend (dygraph, inference, onnxruntime, ...; default: auto / HUBCLS_BACKEND)")
    p.set_defaults(func=_run)
