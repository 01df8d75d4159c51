"""The inference backend layer under hub.Module.predict, ``hubcls serve``, ``hubcls infer`` and Predictor.

A backend turns a float32 NCHW batch (already preprocessed) into float32 logits. Backends:

==============  ======================================================================================
``dygraph``     the paddle.nn.Layer itself, eval mode, no_grad (the reference every other is tested against)
``inference``   Paddle Inference on the exported program: oneDNN on CPU, GPU, TensorRT fp16/int8 on GPU
``onnxruntime`` onnxruntime on the paddle2onnx conversion: CPU, or CUDA when onnxruntime-gpu is present
``int8``        onnxruntime on a statically quantised (QDQ, per-channel) ONNX model, calibrated on images
==============  ======================================================================================

``backend="auto"`` (the default) picks from what is installed and the device; ``HUBCLS_BACKEND``
overrides the default, an explicit argument overrides both. Exported programs are cached on disk under
HUBCLS_HOME (see _cache.py) so the second start of a model does not export again.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, HubclsError
from ..registry import Registry
from ._quiet import quiet

BACKENDS = Registry("inference backend", group="hubcls.backends")
BACKEND_NAMES = ("dygraph", "inference", "onnxruntime", "int8")
ENV_BACKEND = "HUBCLS_BACKEND"
ENV_THREADS = "HUBCLS_NUM_THREADS"


class BackendUnavailableError(HubclsError, RuntimeError):
    """The requested backend cannot run here (the message says what to install)."""


# --------------------------------------------------------------------------- machine facts
def default_threads() -> int:
    """HUBCLS_NUM_THREADS, else the CPUs this process may run on."""
    env = os.environ.get(ENV_THREADS)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ConfigError(f"{ENV_THREADS} must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ConfigError(f"{ENV_THREADS} must be a positive integer, got {env!r}")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def _gpu_available() -> bool:
    from .._paddle import import_paddle

    paddle = import_paddle()
    try:
        return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    except Exception:  # noqa: BLE001 - broken CUDA setups count as "no GPU"
        return False


def resolve_device(device: Optional[str] = None) -> str:
    """"cpu" or "gpu:N"; None/"auto" -> the GPU when Paddle sees one."""
    if device in (None, "auto"):
        return "gpu:0" if _gpu_available() else "cpu"
    device = str(device).lower()
    if device == "cpu":
        return "cpu"
    if device in ("gpu", "cuda"):
        device = "gpu:0"
    if device.startswith(("gpu:", "cuda:")):
        if not _gpu_available():
            raise BackendUnavailableError(f"device {device!r} asked for, but this Paddle build sees no CUDA GPU")
        return "gpu:" + device.split(":", 1)[1]
    raise ConfigError(f"device must be 'cpu', 'gpu', 'gpu:N' or 'auto', got {device!r}")


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def available_backends(device: Optional[str] = None) -> Dict[str, Tuple[bool, str]]:
    """name -> (usable here, reason) for every backend, without loading anything heavy."""
    device = resolve_device(device)
    out = {"dygraph": (True, "paddle")}
    try:
        from .._paddle import import_paddle

        import_paddle().inference  # noqa: B018 - present in every Paddle build, but be sure
        out["inference"] = (True, "paddle.inference")
    except Exception as exc:  # noqa: BLE001
        out["inference"] = (False, f"paddle.inference unavailable: {exc}")
    if not _has_module("onnxruntime"):
        ort = (False, "onnxruntime is not installed (pip install 'hubcls[onnx]')")
    elif not _has_module("paddle2onnx"):
        ort = (False, "paddle2onnx is not installed (pip install 'hubcls[onnx]')")
    elif device.startswith("gpu") and "CUDAExecutionProvider" not in _ort_providers():
        ort = (False, "onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
    else:
        ort = (True, "onnxruntime " + _ort_version())
    out["onnxruntime"] = ort
    out["int8"] = ort if ort[0] and device == "cpu" else (False, ort[1] if not ort[0] else "int8 runs on CPU only (GPU: inference + TensorRT int8)")
    return out


def _ort_providers():
    import onnxruntime

    return onnxruntime.get_available_providers()


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def auto_backend(device: Optional[str] = None) -> str:
    """The fastest fp32 backend available: Paddle Inference on GPU; on CPU onnxruntime, else Paddle
    Inference with oneDNN (measured on ResNet50_vd/MobileNetV3 here: see docs/deployment.md)."""
    device = resolve_device(device)
    avail = available_backends(device)
    order = ("inference", "onnxruntime") if device.startswith("gpu") else ("onnxruntime", "inference")
    for name in order:
        if avail[name][0]:
            return name
    return "dygraph"


def resolve_backend_name(backend: Optional[str] = None, device: Optional[str] = None) -> str:
    """A named backend > HUBCLS_BACKEND > auto. ``None`` and ``"auto"`` both defer to the env var,
    so one setting switches every default call site (hub.Module, serve, infer, Predictor)."""
    explicit = backend if backend and str(backend).strip().lower() != "auto" else None
    name = explicit or os.environ.get(ENV_BACKEND) or "auto"
    name = str(name).strip().lower()
    aliases = {"paddle": "inference", "paddle_inference": "inference", "ort": "onnxruntime", "onnx": "onnxruntime",
               "eager": "dygraph"}
    name = aliases.get(name, name)
    if name == "auto":
        return auto_backend(device)
    if name not in BACKEND_NAMES:
        raise ConfigError(f"backend must be one of auto, {', '.join(BACKEND_NAMES)}; got {backend or os.environ.get(ENV_BACKEND)!r}")
    return name


# --------------------------------------------------------------------------- backends
class Backend:
    """float32 NCHW batch -> float32 logits (N, num_classes)."""

    name = "?"
    precision = "fp32"

    def __init__(self, device: str = "cpu", threads: Optional[int] = None):
        self.device = device
        self.threads = threads or default_threads()
        self.warmup_runs = 0
        self.load_seconds = None

    def run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        if batch.dtype != np.float32 or batch.ndim != 4:
            raise ValueError(f"a backend takes a float32 NCHW batch, got {batch.dtype} with shape {batch.shape}")
        return self.run(np.ascontiguousarray(batch))

    def warmup(self, input_size, batch_sizes: Sequence[int] = (1,), runs: int = 1) -> None:
        """Run once per batch size so first-request latency does not pay for kernel selection."""
        for n in batch_sizes:
            x = np.zeros((n, *input_size), np.float32)
            for _ in range(runs):
                self.run(x)
                self.warmup_runs += 1

    def describe(self) -> dict:
        return {"backend": self.name, "device": self.device, "threads": self.threads, "precision": self.precision}

    def __repr__(self):
        return f"<{type(self).__name__} " + " ".join(f"{k}={v}" for k, v in self.describe().items()) + ">"


@BACKENDS.register(name="dygraph")
class DygraphBackend(Backend):
    name = "dygraph"

    def __init__(self, model, device: str = "cpu", threads: Optional[int] = None):
        super().__init__(device, threads)
        from .._paddle import import_paddle

        self._paddle = import_paddle()
        self.model = model
        model.eval()

    def run(self, batch):
        paddle = self._paddle
        with paddle.no_grad():
            out = self.model(paddle.to_tensor(batch, place=self._place()))
        if isinstance(out, (list, tuple)):
            out = out[0]
        if isinstance(out, dict):  # distillation students return dicts
            out = out.get("logits", next(iter(out.values())))
        return out.numpy().astype(np.float32, copy=False)

    def _place(self):
        paddle = self._paddle
        if self.device.startswith("gpu"):
            return paddle.CUDAPlace(int(self.device.split(":")[1]))
        return paddle.CPUPlace()


@BACKENDS.register(name="inference")
class PaddleInferenceBackend(Backend):
    """Paddle Inference predictor on an exported program.

    CPU: oneDNN (``mkldnn=True``, default) with ``threads`` math threads. GPU: ``precision`` "fp32",
    or TensorRT with "trt_fp32" / "fp16" / "int8" (int8 needs TensorRT calibration data: Paddle's
    calibration mode runs on the first batches it sees and writes a table next to the program)."""

    name = "inference"

    def __init__(self, model_dir, *, prefix: str = "inference", device: str = "cpu", threads: Optional[int] = None,
                 mkldnn: bool = True, precision: str = "fp32", max_batch: int = 32, input_size=None):
        super().__init__(device, threads)
        from .._paddle import import_paddle
        from .export import program_files

        paddle = import_paddle()
        inference = paddle.inference
        model_file, params_file = program_files(model_dir, prefix)
        t0 = time.time()
        config = inference.Config(str(model_file), str(params_file))
        self.precision = precision
        self.mkldnn = bool(mkldnn) and device == "cpu"
        if device == "cpu":
            config.disable_gpu()
            if self.mkldnn:
                config.enable_mkldnn()
                # oneDNN caches one primitive set per input shape; bound it for varying batch sizes
                config.set_mkldnn_cache_capacity(10)
            config.set_cpu_math_library_num_threads(self.threads)
            if precision not in ("fp32",):
                raise ConfigError(f"Paddle Inference on CPU runs fp32 here (int8 on CPU: backend='int8'); got {precision!r}")
        else:
            config.enable_use_gpu(256, int(device.split(":")[1]))
            if precision in ("fp16", "int8", "trt_fp32"):
                if input_size is None:
                    raise ConfigError("TensorRT needs the input size for its dynamic-shape profile")
                mode = {"fp16": inference.PrecisionType.Half, "int8": inference.PrecisionType.Int8,
                        "trt_fp32": inference.PrecisionType.Float32}[precision]
                config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=max_batch, min_subgraph_size=3,
                                              precision_mode=mode, use_static=True, use_calib_mode=precision == "int8")
                shape = list(input_size)
                config.set_trt_dynamic_shape_info({"x": [1, *shape]}, {"x": [max_batch, *shape]}, {"x": [8, *shape]})
            elif precision != "fp32":
                raise ConfigError(f"precision must be fp32, fp16, int8 or trt_fp32 on GPU; got {precision!r}")
        config.switch_ir_optim(True)
        config.disable_glog_info()
        with quiet():
            self.predictor = inference.create_predictor(config)
        self.config = config
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        import threading

        self._lock = threading.Lock()
        self.load_seconds = time.time() - t0

    def run(self, batch):
        with self._lock:  # a predictor is not thread-safe (serve may call from several threads)
            self._input.reshape(list(batch.shape))
            self._input.copy_from_cpu(batch)
            self.predictor.run()
            return self._output.copy_to_cpu()

    def describe(self):
        d = super().describe()
        if self.device == "cpu":
            d["onednn"] = self.mkldnn
        return d


@BACKENDS.register(name="onnxruntime")
class OnnxRuntimeBackend(Backend):
    """onnxruntime session on an ONNX file: CPU provider, or CUDA when onnxruntime-gpu is installed."""

    name = "onnxruntime"

    def __init__(self, onnx_file, *, device: str = "cpu", threads: Optional[int] = None, precision: str = "fp32"):
        super().__init__(device, threads)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("backend 'onnxruntime' needs onnxruntime: pip install 'hubcls[onnx]'") from exc
        t0 = time.time()
        self.precision = precision
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 0 if _verbose() else 3
        # no busy-waiting between runs: spinning intra-op threads starve whatever runs next in the
        # process (measured: a Paddle Inference predictor called after an onnxruntime session ran ~15x
        # slower with spinning on; onnxruntime's own latency did not get worse without it)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device.startswith("gpu"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError("onnxruntime has no CUDAExecutionProvider here (pip install onnxruntime-gpu)")
            providers = [("CUDAExecutionProvider", {"device_id": int(device.split(":")[1])}), "CPUExecutionProvider"]
        with quiet():
            self.session = ort.InferenceSession(str(onnx_file), opts, providers=providers)
        self._input_name = self.session.get_inputs()[0].name
        self.load_seconds = time.time() - t0

    def run(self, batch):
        return self.session.run(None, {self._input_name: batch})[0]


def _verbose() -> bool:
    from ._quiet import verbose

    return verbose()


# --------------------------------------------------------------------------- loading with the cache
def load_backend(
    backend: Optional[str] = "auto",
    *,
    model=None,
    model_fn: Optional[Callable[[], object]] = None,
    name: Optional[str] = None,
    weights_id: Optional[str] = None,
    input_size=None,
    device: Optional[str] = None,
    threads: Optional[int] = None,
    precision: str = "fp32",
    calib_data: Optional[Callable[[], np.ndarray]] = None,
    calib_id: Optional[str] = None,
    cache_root=None,
    warmup: Sequence[int] = (1,),
) -> Backend:
    """A ready backend for a model; exports (once, cached on disk) when the backend needs a program.

    ``model`` is the eval-mode paddle.nn.Layer, or ``model_fn`` builds it only on a cache miss (a
    warm start then never constructs the dygraph model). The cache key is (``name``, ``weights_id``
    - a hash of the weights, computed from ``model`` when not given -, backend artefact, input size,
    tool versions). ``int8`` needs ``calib_data()`` -> float32 NCHW calibration batch (preprocessed
    images) and ``calib_id`` naming it in the key (a hash of the batch when not given)."""
    dev = resolve_device(device)
    which = resolve_backend_name(backend, dev)
    ok, reason = available_backends(dev)[which]
    if not ok:
        raise BackendUnavailableError(f"backend {which!r} is not available: {reason}")
    if model is None and model_fn is None:
        raise ConfigError("load_backend needs model= or model_fn=")
    chosen_automatically = not (backend and str(backend).lower() != "auto") and not os.environ.get(ENV_BACKEND)
    kwargs = dict(model=model, model_fn=model_fn, name=name, weights_id=weights_id, input_size=input_size, dev=dev,
                  threads=threads, precision=precision, calib_data=calib_data, calib_id=calib_id,
                  cache_root=cache_root, warmup=warmup)
    built: Dict[str, Backend] = {}
    if chosen_automatically and dev == "cpu" and precision == "fp32":
        avail = available_backends(dev)
        if avail["onnxruntime"][0] and avail["inference"][0]:
            try:
                which = _measured_choice(kwargs, built)
            except Exception as exc:  # noqa: BLE001 - measuring is an optimisation; keep the static order
                import warnings

                warnings.warn(f"could not compare backends for {kwargs.get('name') or 'the model'} ({exc}); "
                              f"using {which!r}", stacklevel=2)
    candidates = [which]
    if chosen_automatically:  # a model the converter cannot handle still runs, on the next-best backend
        candidates += [b for b in ("inference", "dygraph") if b != which]
    for i, cand in enumerate(candidates):
        if cand in built:
            b = built[cand]
            if warmup and getattr(b, "input_size", None) is not None:
                with quiet():
                    b.warmup(b.input_size, batch_sizes=tuple(warmup))
            return b
        try:
            return _load_backend(cand, **kwargs)
        except Exception as exc:  # noqa: BLE001 - export/conversion failures come in many types
            if i + 1 == len(candidates):
                raise
            import warnings

            warnings.warn(f"backend {cand!r} failed for {name or 'the model'} ({type(exc).__name__}: {exc}); "
                          f"using {candidates[i + 1]!r}", stacklevel=2)
    raise AssertionError("unreachable")  # pragma: no cover


AUTO_PROBE_BATCH = 4


def _measured_choice(kwargs: dict, built: dict) -> str:
    """On CPU neither onnxruntime nor Paddle Inference + oneDNN wins for every model (measured here:
    onnxruntime ahead on ResNet50_vd, oneDNN ahead on MobileNetV3 with batches > 1), so "auto" times both
    on this model, these threads and a batch of AUTO_PROBE_BATCH once, and remembers the winner in the
    cache (keyed like the programs, plus threads). ``kwargs`` gets the resolved name / weights / size;
    the backends built while measuring are left in ``built`` for reuse."""
    import json

    from ._cache import cache_key, cached, weights_hash_of_model
    from .export import input_size_of

    model, model_fn = kwargs["model"], kwargs["model_fn"]
    if model is None and (kwargs["name"] is None or kwargs["weights_id"] is None):
        model = kwargs["model"] = model_fn()
    cfg = getattr(model, "pretrained_cfg", None) if model is not None else None
    if cfg is None and kwargs["input_size"] is None:
        raise ConfigError("load_backend needs input_size= when the model is built lazily")
    size = kwargs["input_size"] = input_size_of(cfg, kwargs["input_size"])
    if kwargs["name"] is None:
        kwargs["name"] = getattr(cfg, "name", None) or type(model).__name__
    if kwargs["weights_id"] is None:
        model.eval()
        kwargs["weights_id"] = weights_hash_of_model(model)
    threads = kwargs["threads"] or default_threads()

    def measure(tmp: Path):
        seconds = {}
        x = np.zeros((AUTO_PROBE_BATCH, *size), np.float32)
        for cand in ("onnxruntime", "inference"):
            b = built[cand] = _load_backend(cand, **{**kwargs, "warmup": ()})
            time.sleep(0.3)  # let the other runtime's worker threads park (OpenMP spin-waits ~200 ms)
            with quiet():
                b(x)
                b(x)
                t = time.perf_counter()
                for _ in range(3):
                    b(x)
            seconds[cand] = (time.perf_counter() - t) / 3
        # onnxruntime starts several times faster (session vs oneDNN predictor: ~0.5 s vs 3-5 s for
        # ResNet50_vd here), so Paddle Inference has to be clearly faster to be chosen
        choice = "inference" if seconds["inference"] < 0.9 * seconds["onnxruntime"] else "onnxruntime"
        (tmp / "choice.json").write_text(json.dumps(
            {"choice": choice, "seconds_per_batch": seconds, "batch": AUTO_PROBE_BATCH,
             "rule": "inference only when >10% faster than onnxruntime (start-up cost)"}))

    key = cache_key(kwargs["name"], kwargs["weights_id"], "auto-choice-onnx", size,
                    extra={"device": kwargs["dev"], "threads": threads})
    return json.loads((cached(key, measure, kwargs["cache_root"]) / "choice.json").read_text())["choice"]


def _load_backend(which, *, model, model_fn, name, weights_id, input_size, dev, threads, precision, calib_data,
                  calib_id, cache_root, warmup) -> Backend:
    from ._cache import cache_key, cached, weights_hash_of_model
    from .export import export_onnx, input_size_of, save_inference_program

    t0 = time.time()

    def get_model():
        nonlocal model
        if model is None:
            model = model_fn()
        model.eval()
        return model

    cfg = getattr(model, "pretrained_cfg", None) if model is not None else None
    size = input_size_of(cfg, input_size) if (cfg is not None or input_size is not None) else None
    if which == "dygraph":
        b = DygraphBackend(get_model(), device=dev, threads=threads)
    else:
        if size is None:
            raise ConfigError("load_backend needs input_size= when the model is built lazily")
        if name is None:
            cfg = getattr(get_model(), "pretrained_cfg", None)
            name = getattr(cfg, "name", None) or type(model).__name__
        if weights_id is None:
            weights_id = weights_hash_of_model(get_model())

        def program(tmp: Path):
            save_inference_program(get_model(), tmp / "inference", size)

        prog_dir = cached(cache_key(name, weights_id, "inference", size), program, cache_root)
        if which == "inference":
            b = PaddleInferenceBackend(prog_dir, device=dev, threads=threads, precision=precision, input_size=size)
        else:
            onnx_dir = cached(cache_key(name, weights_id, "onnx", size),
                              lambda tmp: export_onnx(prog_dir, out_file=str(tmp / "model.onnx")), cache_root)
            onnx_file = onnx_dir / "model.onnx"
            if which == "int8":
                from .quant import quantize_onnx_int8

                if calib_data is None:
                    raise ConfigError("backend 'int8' needs calibration images (calib_data=)")
                batch = None
                if calib_id is None:
                    import hashlib

                    batch = calib_data()
                    calib_id = hashlib.blake2b(np.ascontiguousarray(batch).tobytes(), digest_size=12).hexdigest()

                def quantize(tmp: Path):
                    quantize_onnx_int8(onnx_file, tmp / "model.onnx", batch if batch is not None else calib_data())

                q_dir = cached(cache_key(name, weights_id, "int8-onnx", size, extra={"calib": calib_id}), quantize, cache_root)
                b = OnnxRuntimeBackend(q_dir / "model.onnx", device=dev, threads=threads, precision="int8")
                b.name = "int8"
            else:
                b = OnnxRuntimeBackend(onnx_file, device=dev, threads=threads)
    if warmup and size is not None:
        with quiet():
            b.warmup(size, batch_sizes=tuple(warmup))
    b.load_seconds = time.time() - t0
    b.input_size = size
    return b


def backend_from_export(directory, backend: Optional[str] = "auto", *, device=None, threads=None, precision="fp32") -> Backend:
    """A backend over an export directory (``hubcls export`` output): inference or onnxruntime.

    onnxruntime converts the program to ONNX beside it on first use if the directory has no model.onnx."""
    from .export import ONNX_FILE, export_onnx

    dev = resolve_device(device)
    which = resolve_backend_name(backend, dev)
    if which == "dygraph":
        raise ConfigError("an export directory holds a static program; use backend 'inference' or 'onnxruntime'")
    ok, reason = available_backends(dev)[which]
    if not ok:
        raise BackendUnavailableError(f"backend {which!r} is not available: {reason}")
    directory = Path(directory)
    if which == "inference":
        return PaddleInferenceBackend(directory, device=dev, threads=threads, precision=precision)
    if which == "int8":
        from .export import ONNX_INT8_FILE

        q_file = directory / ONNX_INT8_FILE
        if not q_file.is_file():
            raise ConfigError(f"{directory} has no {ONNX_INT8_FILE}; export with calibration images: "
                              "`hubcls export -m NAME --int8 CALIB_DIR -o DIR`")
        b = OnnxRuntimeBackend(q_file, device=dev, threads=threads, precision="int8")
        b.name = "int8"
        return b
    onnx_file = directory / ONNX_FILE
    if not onnx_file.is_file():
        export_onnx(directory)
    return OnnxRuntimeBackend(onnx_file, device=dev, threads=threads, precision=precision)


def create_runner(model, cfg=None, *, backend: Optional[str] = "auto", use_gpu: bool = False, device: Optional[str] = None,
                  threads: Optional[int] = None, precision: str = "fp32", weights_id: Optional[str] = None,
                  calib_data=None, input_size=None) -> Backend:
    """The seam hub.Module / serve / infer use: an eval-mode model -> a ready ``Backend`` (a callable
    float32 NCHW batch -> logits), exported and cached on disk as the backend needs."""
    cfg = cfg if cfg is not None else getattr(model, "pretrained_cfg", None)
    if device is None:
        device = "gpu:0" if use_gpu else "cpu"
    return load_backend(backend, model=model, name=getattr(cfg, "name", None), weights_id=weights_id,
                        input_size=input_size or getattr(cfg, "input_size", None), device=device, threads=threads,
                        precision=precision, calib_data=calib_data)
