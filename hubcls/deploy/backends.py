"""The inference backend layer: a backend turns a float32 NCHW batch (already preprocessed) into
float32 logits. It is the "backend" step of the one prediction pipeline (pipeline.py).

==============  ======================================================================================
``dygraph``     the paddle.nn.Layer itself, eval mode, no_grad (the reference every other is tested against)
``inference``   Paddle Inference on the exported program: oneDNN fp32/bf16 on CPU, GPU, TensorRT fp16/int8 on GPU
``onnxruntime`` onnxruntime on the paddle2onnx conversion: CPU, or CUDA when onnxruntime-gpu is present
``openvino``    OpenVINO (optional extra) on the same ONNX file: CPU, fp32 or bf16 (INFERENCE_PRECISION_HINT)
``int8``        onnxruntime on a statically quantised (QDQ, per-channel) ONNX model, calibrated on images
==============  ======================================================================================

The registry ``BACKENDS`` is the dispatch: a backend is one registered :class:`Backend` subclass
that says whether it can run here (``availability``), where it ranks for ``"auto"``
(``auto_rank``), how to start from a model (``from_model``, given a :class:`ModelArtifacts` that
builds and caches programs on demand) and from an export directory (``from_export``). Nothing else
names backends, so adding one is adding a class.

``backend="auto"`` (the default) picks from what is installed and the device; ``HUBCLS_BACKEND``
overrides the default, an explicit argument overrides both. On CPU, auto times every candidate
(backend, precision) on the model once and caches the choice; reduced-precision candidates (bf16 where
the CPU has AVX512-BF16/AMX, INT8) count only when the accuracy gate (gate.py) passes on calibration
images. ``precision="fp32"`` or ``HUBCLS_PRECISION=fp32`` keeps auto to fp32. Exported programs are cached on disk under
HUBCLS_HOME (see _cache.py) so the second start of a model does not export again.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import BackendUnavailableError, ConfigError  # noqa: F401 - BackendUnavailableError re-exported
from ..registry import Registry
from ._quiet import quiet

BACKENDS = Registry("inference backend", group="hubcls.backends")  # plugins add backends too
ENV_BACKEND = "HUBCLS_BACKEND"
ENV_THREADS = "HUBCLS_NUM_THREADS"
ENV_PRECISION = "HUBCLS_PRECISION"
ENV_CALIB = "HUBCLS_CALIB_IMAGES"  # a folder of the user's images for the accuracy gate (and auto's int8)
REDUCED = ("bf16", "int8")  # precisions that change answers: auto uses them only through the accuracy gate
log = logging.getLogger("hubcls.deploy")


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


@functools.lru_cache(maxsize=None)
def _cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=None)
def cpu_bf16() -> Tuple[bool, str]:
    """(whether this CPU multiplies bf16 natively, why): AMX-BF16 or AVX512-BF16, read at run time
    (never from the build machine). Without them oneDNN/OpenVINO would emulate bf16, slower than fp32."""
    flags = _cpu_flags()
    if flags:
        if "amx_bf16" in flags:
            return True, "AMX-BF16"
        if "avx512_bf16" in flags:
            return True, "AVX512-BF16"
        return False, "this CPU has neither AVX512-BF16 nor AMX-BF16"
    try:  # no /proc/cpuinfo (macOS, Windows): ask oneDNN through Paddle
        from .._paddle import import_paddle

        if import_paddle().base.core.supports_bfloat16_fast_performance():
            return True, "oneDNN reports fast bf16"
    except Exception:  # noqa: BLE001
        pass
    return False, "no native bf16 found on this CPU"


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def backend_names() -> Tuple[str, ...]:
    """Registered backends, in registration order (built-ins first, then plugins)."""
    return tuple(name for name, _ in BACKENDS.items())


def available_backends(device: Optional[str] = None) -> Dict[str, Tuple[bool, str]]:
    """name -> (usable here, reason) for every backend, without loading anything heavy."""
    device = resolve_device(device)
    return {name: BACKENDS.get(name).availability(device) for name in backend_names()}


def _auto_order(device: str):
    """Backends "auto" may choose on ``device``, best first (``auto_rank``; dygraph is the fallback)."""
    kind = "gpu" if device.startswith("gpu") else "cpu"
    ranked = [(BACKENDS.get(n).auto_rank.get(kind), n) for n in backend_names()]
    return [n for r, n in sorted((r, n) for r, n in ranked if r is not None)]


def auto_candidates(device: str, precision: Optional[str] = None, calibrated: bool = False) -> list:
    """(backend, precision) pairs "auto" may choose on ``device``: fp32 ones in ``auto_rank`` order,
    then the reduced-precision ones (only usable through the accuracy gate), each available here.
    Backends built from calibration images (int8) join only when the user gave some (``calibrated``):
    activation ranges from the shipped demo scenes would not fit the user's photos."""
    kind = "gpu" if device.startswith("gpu") else "cpu"
    fp32, reduced = [], []
    for name in _auto_order(device):
        cls = BACKENDS.get(name)
        if not cls.availability(device)[0] or (cls.needs_calibration and not calibrated):
            continue
        for prec in cls.auto_precisions(device):
            if precision not in (None, prec):
                continue
            (reduced if prec in REDUCED else fp32).append((name, prec))
    return fp32 + reduced if kind == "cpu" else fp32


def auto_backend(device: Optional[str] = None) -> str:
    """The fastest fp32 backend available: Paddle Inference on GPU; on CPU onnxruntime, else Paddle
    Inference with oneDNN (measured on ResNet50_vd/MobileNetV3 here: see docs/deployment.md)."""
    device = resolve_device(device)
    for name in _auto_order(device):
        cls = BACKENDS.get(name)
        if "fp32" in cls.auto_precisions(device) and cls.availability(device)[0]:
            return name
    return "dygraph"


def _canonical_name(name: str) -> Optional[str]:
    name = str(name).strip().lower()
    for n in backend_names():
        cls = BACKENDS.get(n)
        if name == n or name in cls.aliases:
            return n
    return None


def resolve_backend_name(backend: Optional[str] = None, device: Optional[str] = None) -> str:
    """A named backend > HUBCLS_BACKEND > auto. ``None`` and ``"auto"`` both defer to the env var,
    so one setting switches every default call site (hub.Module, serve, infer, Predictor)."""
    explicit = backend if backend and str(backend).strip().lower() != "auto" else None
    name = str(explicit or os.environ.get(ENV_BACKEND) or "auto").strip().lower()
    if name == "auto":
        return auto_backend(device)
    canonical = _canonical_name(name)
    if canonical is None:
        raise ConfigError(f"backend must be one of auto, {', '.join(backend_names())}; "
                          f"got {backend or os.environ.get(ENV_BACKEND)!r}")
    return canonical


def _chosen_automatically(backend) -> bool:
    return not (backend and str(backend).strip().lower() != "auto") and not os.environ.get(ENV_BACKEND)


# --------------------------------------------------------------------------- what a backend may need
class ModelArtifacts:
    """A model and the artefacts backends run, built on first use and cached on disk.

    ``model`` is the eval-mode paddle.nn.Layer, or ``model_fn`` builds it only when an artefact is
    missing from the cache (a warm start then never constructs the dygraph model). The cache key is
    (``name``, ``weights_id`` - a hash of the weights, computed from the model when not given -,
    artefact kind, input size, tool versions)."""

    def __init__(self, model=None, model_fn: Optional[Callable[[], object]] = None, *, name: Optional[str] = None,
                 weights_id: Optional[str] = None, input_size=None, calib_data: Optional[Callable[[], np.ndarray]] = None,
                 calib_id: Optional[str] = None, cache_root=None):
        if model is None and model_fn is None:
            raise ConfigError("a backend needs model= or model_fn=")
        from ._program import input_size_of

        self._model, self._model_fn = model, model_fn
        cfg = getattr(model, "pretrained_cfg", None) if model is not None else None
        self.input_size = input_size_of(cfg, input_size) if (cfg is not None or input_size is not None) else None
        self._name, self._weights_id = name, weights_id
        self.calib_data, self.calib_id, self.cache_root = calib_data, calib_id, cache_root

    def model(self):
        if self._model is None:
            self._model = self._model_fn()
        self._model.eval()
        return self._model

    @property
    def name(self) -> str:
        if self._name is None:
            cfg = getattr(self.model(), "pretrained_cfg", None)
            self._name = getattr(cfg, "name", None) or type(self.model()).__name__
        return self._name

    @property
    def weights_id(self) -> str:
        if self._weights_id is None:
            from ._cache import weights_hash_of_model

            self._weights_id = weights_hash_of_model(self.model())
        return self._weights_id

    def _size(self):
        if self.input_size is None:
            raise ConfigError("a program backend needs input_size= when the model is built lazily")
        return self.input_size

    def cached(self, kind: str, build: Callable[[Path], None], extra=None) -> Path:
        from ._cache import cache_key, cached

        return cached(cache_key(self.name, self.weights_id, kind, self._size(), extra=extra), build, self.cache_root)

    def program_dir(self) -> Path:
        from ._program import PROGRAM, save_inference_program

        return self.cached("inference", lambda tmp: save_inference_program(self.model(), tmp / PROGRAM, self._size()))

    def onnx_file(self) -> Path:
        from ._program import ONNX_FILE, export_onnx

        prog = self.program_dir()
        return self.cached("onnx", lambda tmp: export_onnx(prog, out_file=str(tmp / ONNX_FILE))) / ONNX_FILE

    def int8_onnx_file(self) -> Path:
        if self.calib_data is None:
            raise ConfigError("backend 'int8' needs calibration images (calib_data=)")
        from ._program import ONNX_FILE
        from .quant import quantize_onnx_int8

        onnx_file, batch = self.onnx_file(), None
        if self.calib_id is None:
            import hashlib

            batch = self.calib_data()
            self.calib_id = hashlib.blake2b(np.ascontiguousarray(batch).tobytes(), digest_size=12).hexdigest()

        def quantize(tmp: Path):
            quantize_onnx_int8(onnx_file, tmp / ONNX_FILE, batch if batch is not None else self.calib_data())

        return self.cached("int8-onnx", quantize, extra={"calib": self.calib_id}) / ONNX_FILE


# --------------------------------------------------------------------------- backends
class Backend:
    """float32 NCHW batch -> float32 logits (N, num_classes). Subclasses register in BACKENDS."""

    name = "?"
    aliases: Tuple[str, ...] = ()
    precision = "fp32"
    auto_rank: Dict[str, int] = {}  # device kind ("cpu"/"gpu") -> rank for "auto" (lower first); absent: never
    needs_calibration = False  # built from calibration images (int8)
    auto_record = None  # set by load_backend when "auto" measured the choice: times, gate figures

    def __init__(self, device: str = "cpu", threads: Optional[int] = None):
        self.device = device
        self.threads = threads or default_threads()
        self.warmup_runs = 0
        self.load_seconds = None
        self.input_size = None

    # ---- what the registry asks a backend class
    @classmethod
    def availability(cls, device: str) -> Tuple[bool, str]:
        return True, ""

    @classmethod
    def auto_precisions(cls, device: str) -> Tuple[str, ...]:
        """Precisions "auto" may try with this backend on ``device`` (fp32 wherever it is ranked)."""
        return ("fp32",) if ("gpu" if device.startswith("gpu") else "cpu") in cls.auto_rank else ()

    @classmethod
    def from_model(cls, artifacts: ModelArtifacts, *, device: str, threads: Optional[int], precision: str,
                   **options) -> "Backend":  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_export(cls, directory: Path, *, device: str, threads: Optional[int], precision: str, input_size=None,
                    **options) -> "Backend":
        raise ConfigError(f"backend {cls.name!r} does not run an export directory's program")

    # ---- running
    def run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        if batch.dtype != np.float32 or batch.ndim != 4:
            raise ValueError(f"a backend takes a float32 NCHW batch, got {batch.dtype} with shape {batch.shape}")
        return np.asarray(self.run(np.ascontiguousarray(batch)), dtype=np.float32)

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
    aliases = ("eager",)

    def __init__(self, model, device: str = "cpu", threads: Optional[int] = None):
        super().__init__(device, threads)
        from .._paddle import import_paddle

        self._paddle = import_paddle()
        self.model = model
        model.eval()

    @classmethod
    def availability(cls, device):
        return True, "paddle"

    @classmethod
    def from_model(cls, artifacts, *, device, threads, precision, **options):
        if precision != "fp32":
            raise ConfigError(f"the dygraph backend runs fp32; got precision={precision!r}")
        return cls(artifacts.model(), device=device, threads=threads)

    def run(self, batch):
        from ._program import paddle_thread_ready

        paddle = self._paddle
        paddle_thread_ready(paddle)
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

    CPU: oneDNN (``mkldnn=True``, default) with ``threads`` math threads, ``precision`` "fp32" or "bf16"
    (``enable_mkldnn_bfloat16``: only where the CPU has AVX512-BF16/AMX, see :func:`cpu_bf16`). GPU: "fp32",
    or TensorRT with "trt_fp32" / "fp16" / "int8" (int8 needs TensorRT calibration data: Paddle's
    calibration mode runs on the first batches it sees and writes a table next to the program)."""

    name = "inference"
    aliases = ("paddle", "paddle_inference")
    auto_rank = {"gpu": 0, "cpu": 2}

    @classmethod
    def auto_precisions(cls, device):
        if device == "cpu":
            return ("fp32", "bf16") if cpu_bf16()[0] else ("fp32",)
        return super().auto_precisions(device)

    def __init__(self, model_dir, *, prefix: Optional[str] = None, device: str = "cpu", threads: Optional[int] = None,
                 mkldnn: bool = True, precision: str = "fp32", max_batch: int = 32, input_size=None):
        super().__init__(device, threads)
        from .._paddle import import_paddle
        from ._program import PROGRAM, program_files

        paddle = import_paddle()
        inference = paddle.inference
        model_file, params_file = program_files(model_dir, prefix or PROGRAM)
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
            if precision == "bf16":
                ok, why = cpu_bf16()
                if not ok:
                    raise BackendUnavailableError(f"Paddle Inference bf16 needs a CPU with AVX512-BF16 or AMX: {why}")
                if not self.mkldnn:
                    raise ConfigError("Paddle Inference bf16 runs on oneDNN; drop mkldnn=False")
                config.enable_mkldnn_bfloat16()
            elif precision != "fp32":
                raise ConfigError(f"Paddle Inference on CPU runs fp32 or bf16 (int8 on CPU: backend='int8'); got {precision!r}")
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
        self._lock = threading.Lock()
        self.load_seconds = time.time() - t0

    @classmethod
    def availability(cls, device):
        try:
            from .._paddle import import_paddle

            import_paddle().inference  # noqa: B018 - present in every Paddle build, but be sure
            return True, "paddle.inference"
        except Exception as exc:  # noqa: BLE001
            return False, f"paddle.inference unavailable: {exc}"

    @classmethod
    def from_model(cls, artifacts, *, device, threads, precision, **options):
        return cls(artifacts.program_dir(), device=device, threads=threads, precision=precision,
                   input_size=artifacts.input_size, mkldnn=options.get("mkldnn", True))

    @classmethod
    def from_export(cls, directory, *, device, threads, precision, input_size=None, **options):
        return cls(directory, device=device, threads=threads, precision=precision, input_size=input_size,
                   mkldnn=options.get("mkldnn", True))

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


class _OnnxFileBackend(Backend):
    """A runtime that reads the paddle2onnx conversion (onnxruntime, OpenVINO): one file, built once."""

    @classmethod
    def from_model(cls, artifacts, *, device, threads, precision, **options):
        return cls(artifacts.onnx_file(), device=device, threads=threads, precision=precision)

    @classmethod
    def from_export(cls, directory, *, device, threads, precision, input_size=None, **options):
        from ._program import ONNX_FILE, export_onnx

        onnx_file = Path(directory) / ONNX_FILE
        if not onnx_file.is_file():  # converted beside the program on first use
            export_onnx(directory)
        return cls(onnx_file, device=device, threads=threads, precision=precision)


@BACKENDS.register(name="onnxruntime")
class OnnxRuntimeBackend(_OnnxFileBackend):
    """onnxruntime session on an ONNX file: CPU provider, or CUDA when onnxruntime-gpu is installed."""

    name = "onnxruntime"
    aliases = ("ort", "onnx")
    auto_rank = {"cpu": 0, "gpu": 1}

    def __init__(self, onnx_file, *, device: str = "cpu", threads: Optional[int] = None, precision: str = "fp32"):
        super().__init__(device, threads)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("backend 'onnxruntime' needs onnxruntime: pip install 'hubcls[onnx]'") from exc
        if precision not in ("fp32", "int8"):  # int8: the quantised file (Int8Backend)
            raise ConfigError(f"onnxruntime runs fp32 here (bf16: backend 'openvino' or 'inference'); got {precision!r}")
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

    @classmethod
    def availability(cls, device):
        if not _has_module("onnxruntime"):
            return False, "onnxruntime is not installed (pip install 'hubcls[onnx]')"
        if not _has_module("paddle2onnx"):
            return False, "paddle2onnx is not installed (pip install 'hubcls[onnx]')"
        import onnxruntime

        if device.startswith("gpu") and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return False, "onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)"
        return True, "onnxruntime " + onnxruntime.__version__

    def run(self, batch):
        return self.session.run(None, {self._input_name: batch})[0]


@BACKENDS.register(name="int8")
class Int8Backend(OnnxRuntimeBackend):
    """onnxruntime on the statically quantised copy of the ONNX model (calibrated on real images)."""

    name = "int8"
    aliases = ()
    auto_rank = {"cpu": 3}
    needs_calibration = True  # the gate then checks it on images it was not calibrated on

    @classmethod
    def auto_precisions(cls, device):
        return ("int8",) if device == "cpu" else ()

    def __init__(self, onnx_file, *, device: str = "cpu", threads: Optional[int] = None, precision: str = "int8"):
        if precision not in ("int8", "fp32"):  # "fp32" is the default every caller passes
            raise ConfigError(f"backend 'int8' runs int8; got precision={precision!r}")
        super().__init__(onnx_file, device=device, threads=threads, precision="int8")

    @classmethod
    def availability(cls, device):
        ok, reason = OnnxRuntimeBackend.availability(device)
        if ok and device != "cpu":
            return False, "int8 runs on CPU only (GPU: inference + TensorRT int8)"
        return ok, reason

    @classmethod
    def from_model(cls, artifacts, *, device, threads, precision, **options):
        return cls(artifacts.int8_onnx_file(), device=device, threads=threads, precision=precision)

    @classmethod
    def from_export(cls, directory, *, device, threads, precision, input_size=None, **options):
        from ._program import ONNX_INT8_FILE

        q_file = Path(directory) / ONNX_INT8_FILE
        if not q_file.is_file():
            raise ConfigError(f"{directory} has no {ONNX_INT8_FILE}; export with calibration images: "
                              "`hubcls export -m NAME --int8 CALIB_DIR --output DIR`")
        return cls(q_file, device=device, threads=threads)


@BACKENDS.register(name="openvino")
class OpenVinoBackend(_OnnxFileBackend):
    """OpenVINO's CPU plugin on the paddle2onnx ONNX file (the one onnxruntime runs), compiled at load.

    ``precision`` "fp32" or "bf16" becomes INFERENCE_PRECISION_HINT (OpenVINO's own default is bf16
    on CPUs with AVX512-BF16/AMX, so fp32 is asked for explicitly). Optional: ``pip install 'hubcls[openvino]'``."""

    name = "openvino"
    aliases = ("ov",)
    auto_rank = {"cpu": 1}
    HINTS = {"fp32": "f32", "bf16": "bf16"}

    def __init__(self, onnx_file, *, device: str = "cpu", threads: Optional[int] = None, precision: str = "fp32"):
        super().__init__(device, threads)
        if device != "cpu":
            raise BackendUnavailableError("hubcls runs OpenVINO on CPU only (GPU: backend 'inference' or 'onnxruntime')")
        if precision not in self.HINTS:
            raise ConfigError(f"OpenVINO runs fp32 or bf16 here; got precision={precision!r}")
        if precision == "bf16" and not cpu_bf16()[0]:
            raise BackendUnavailableError(f"OpenVINO bf16 needs a CPU with AVX512-BF16 or AMX: {cpu_bf16()[1]}")
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendUnavailableError("backend 'openvino' needs openvino: pip install 'hubcls[openvino]'") from exc
        t0 = time.time()
        self.precision = precision
        core = ov.Core()
        with quiet():
            self.compiled = core.compile_model(str(onnx_file), "CPU", {
                "INFERENCE_PRECISION_HINT": self.HINTS[precision],
                "INFERENCE_NUM_THREADS": int(self.threads),
                "PERFORMANCE_HINT": "LATENCY",  # one stream: all threads on one request, as the other backends
            })
        self._request = self.compiled.create_infer_request()
        self._output = self.compiled.output(0)
        self._lock = threading.Lock()  # one infer request is not thread-safe (serve calls from several threads)
        self.load_seconds = time.time() - t0

    @classmethod
    def availability(cls, device):
        if device != "cpu":
            return False, "hubcls runs OpenVINO on CPU only"
        if not _has_module("openvino"):
            return False, "openvino is not installed (pip install 'hubcls[openvino]')"
        if not _has_module("paddle2onnx"):
            return False, "paddle2onnx is not installed (pip install 'hubcls[onnx]')"
        from importlib.metadata import version

        return True, "openvino " + version("openvino")

    @classmethod
    def auto_precisions(cls, device):
        if device != "cpu":
            return ()
        return ("fp32", "bf16") if cpu_bf16()[0] else ("fp32",)

    def run(self, batch):
        with self._lock:
            return np.array(self._request.infer({0: batch})[self._output], np.float32)


def _verbose() -> bool:
    from ._quiet import verbose

    return verbose()


# --------------------------------------------------------------------------- loading
def _usable(which: str, dev: str):
    ok, reason = BACKENDS.get(which).availability(dev)
    if not ok:
        raise BackendUnavailableError(f"backend {which!r} is not available: {reason}")
    return BACKENDS.get(which)


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
    precision: Optional[str] = None,
    calib_data: Optional[Callable[[], np.ndarray]] = None,
    calib_id: Optional[str] = None,
    calib_images=None,
    cache_root=None,
    warmup: Sequence[int] = (1,),
    **options,
) -> Backend:
    """A ready backend for a model; exports (once, cached on disk) when the backend needs a program.

    ``model`` / ``model_fn`` / ``name`` / ``weights_id`` / ``input_size``: see :class:`ModelArtifacts`.
    ``precision``: None = fp32 for a named backend, and for "auto" any candidate precision, reduced
    ones (bf16, int8) only through the accuracy gate (``HUBCLS_PRECISION`` sets the default). Calibration
    images for the gate and for int8: ``calib_images`` (a folder or a list of images, preprocessed with
    the model's eval transforms), or ``calib_data()`` -> float32 NCHW batch already preprocessed, with
    ``calib_id`` naming it in cache keys (a hash of the batch when not given); neither: the shipped set
    (gate.py). When the backend was chosen automatically, a model its converter cannot handle still
    runs, on the next-best backend."""
    dev = resolve_device(device)
    which = resolve_backend_name(backend, dev)
    _usable(which, dev)
    auto = _chosen_automatically(backend)
    precision = _resolve_precision(precision, auto)
    if calib_images is None and calib_data is None:
        calib_images = os.environ.get(ENV_CALIB) or None
    art = ModelArtifacts(model, model_fn, name=name, weights_id=weights_id, input_size=input_size,
                         calib_data=calib_data, calib_id=calib_id, cache_root=cache_root)
    calib = _Calibration(art, calib_data, calib_id, calib_images)
    if auto:  # int8 calibrates on the first half; the gate checks it on the second
        art.calib_data, art.calib_id = (lambda: calib.batch()[:len(calib.batch()) // 2]), None
    elif calib_images is not None:
        art.calib_data, art.calib_id = calib.batch, None
    t0 = time.time()
    built: Dict[Tuple[str, str], Backend] = {}
    record = None
    prec = "fp32" if precision == "auto" else precision
    if auto and dev == "cpu":
        cands = auto_candidates(dev, None if precision == "auto" else precision,
                                calibrated=calib_images is not None or calib_data is not None)
        if len(cands) >= 2:
            try:
                record = _measured_choice(art, cands, built, dict(device=dev, threads=threads, **options), calib,
                                          gate=precision == "auto")
                which, prec = record["choice"]["backend"], record["choice"]["precision"]
            except Exception as exc:  # noqa: BLE001 - measuring is an optimisation; keep the static order
                warnings.warn(f"could not compare backends for {name or 'the model'} ({type(exc).__name__}: {exc}); "
                              f"using {which!r}",
                              stacklevel=2)
        elif cands:
            which, prec = cands[0]
    candidates = [(which, prec)]
    if auto:  # fallbacks: fp32, static order, then dygraph
        candidates += [(n, "fp32") for n in _auto_order(dev) + ["dygraph"]
                       if n != which and (n == "dygraph" or "fp32" in BACKENDS.get(n).auto_precisions(dev))
                       and BACKENDS.get(n).availability(dev)[0]]
    for i, (cand, cprec) in enumerate(candidates):
        try:
            b = built.get((cand, cprec)) or BACKENDS.get(cand).from_model(art, device=dev, threads=threads,
                                                                          precision=cprec, **options)
            break
        except Exception as exc:  # noqa: BLE001 - export/conversion failures come in many types
            if i + 1 == len(candidates):
                raise
            warnings.warn(f"backend {cand!r} failed for {name or 'the model'} ({type(exc).__name__}: {exc}); "
                          f"using {candidates[i + 1][0]!r}", stacklevel=2)
    b.input_size = art.input_size
    b.auto_record = record if record is not None and (b.name, b.precision) == (which, prec) else None
    if warmup and b.input_size is not None:
        with quiet():
            b.warmup(b.input_size, batch_sizes=tuple(warmup))
    b.load_seconds = time.time() - t0  # export on a cache miss (+ measuring for auto) + start-up
    return b


def _resolve_precision(precision: Optional[str], auto: bool) -> str:
    """"auto" (auto's candidates, reduced ones gated) or one precision."""
    p = precision if precision not in (None, "") else os.environ.get(ENV_PRECISION)
    p = str(p).strip().lower() if p else ("auto" if auto else "fp32")
    if p == "auto" and not auto:
        p = "fp32"  # a named backend runs its own default precision
    allowed = ("auto", "fp32", "bf16", "fp16", "int8", "trt_fp32")
    if p not in allowed:
        raise ConfigError(f"precision must be one of {', '.join(allowed)}; got {precision or os.environ.get(ENV_PRECISION)!r}")
    return p


class _Calibration:
    """The calibration images of one load: built on first use (a warm start with a cached choice
    never renders or preprocesses them), named by an id that goes into cache keys."""

    def __init__(self, art: ModelArtifacts, calib_data, calib_id, calib_images):
        self.art, self._data, self._batch = art, calib_data, None
        if calib_images is not None:
            from .gate import calibration_source

            self._images, self.id, self.description = calibration_source(calib_images)
        elif calib_data is not None:
            self._images, self.id, self.description = None, calib_id, "given calibration batch"
        else:
            from .gate import shipped_id

            self._images, self.id, self.description = None, shipped_id(), "shipped set (generated demo scenes)"

    def batch(self) -> np.ndarray:
        if self._batch is None:
            from .gate import preprocess_images, shipped_images

            if self._data is not None:
                self._batch = np.asarray(self._data(), np.float32)
            else:
                images = self._images if self._images is not None else shipped_images()
                cfg = getattr(self.art.model(), "pretrained_cfg", None)
                self._batch = preprocess_images(images, cfg, self.art.input_size)
            if self.id is None:
                import hashlib

                self.id = "batch-" + hashlib.blake2b(self._batch.tobytes(), digest_size=12).hexdigest()
        return self._batch


AUTO_PROBE_BATCHES = (1, 8)  # the batch sizes predict (1) and serve's batching (8) run most
AUTO_PROBE_PIXELS = 8 * 224 * 224  # the largest probe's input: batch 8 at 224 px, fewer images when larger


def probe_batches(size) -> tuple:
    """The batch sizes auto times for an input of ``size`` (.., H, W): AUTO_PROBE_BATCHES, the larger
    one cut to AUTO_PROBE_PIXELS (batch 8 of EfficientNetB6 at 528-600 px held 5.6 GB in the probe;
    at that size serving rarely batches 8 anyway)."""
    h, w = int(size[-2]), int(size[-1])
    cap = max(1, AUTO_PROBE_PIXELS // (h * w))
    return tuple(sorted({min(bs, cap) for bs in AUTO_PROBE_BATCHES}))
AUTO_TOLERANCE = 0.95  # a better-ranked candidate wins only while it keeps >= 95% of the fastest's speed (the
# target is >= 90% of the fastest runtime; the other 5% are left for the noise of a short probe)


def _probe_seconds(b: Backend, size, n: int, runs: int = 3) -> float:
    x = np.random.default_rng(0).standard_normal((n, *size)).astype(np.float32)
    t = []
    for i in range(runs + 1):  # each run in its own quiet(): a stop point at exit between runs (._cancel)
        with quiet():
            t0 = time.perf_counter()
            b(x)  # the first: kernel selection / oneDNN primitive creation for this shape
            if i:
                t.append(time.perf_counter() - t0)
    return min(t)  # the machine may be shared: the least-disturbed run is the runtime's own speed


def _measured_choice(art: ModelArtifacts, cands, built: dict, kw: dict, calib: "_Calibration", gate: bool = True) -> dict:
    """Time every candidate (backend, precision) on this model, these threads and the batches of
    :func:`probe_batches` once, and remember the choice in the cache (keyed like the programs, plus
    threads, candidates and calibration set). A candidate's score is its worst slowdown against the
    fastest over the probed batches; the choice is the best-ranked candidate (fp32 before reduced
    precision; onnxruntime, then OpenVINO, then Paddle Inference, which starts slowest) within
    AUTO_TOLERANCE of the fastest. A reduced-precision candidate counts only when the accuracy gate
    passes against fp32 on the calibration images (int8: on those it was not calibrated on). The
    backends still running after measuring are left in ``built`` for reuse (the others are freed as
    soon as they are timed, so at most two runtimes hold memory at once)."""
    import gc
    import json

    from ._cancel import checkpoint
    from .gate import MAX_DPROB, TOP1_MIN, accuracy_gate, logits_in_chunks

    size = art._size()
    batches = probe_batches(size)
    threads = kw["threads"] or default_threads()
    labels = [f"{n}/{p}" for n, p in cands]
    reduced = [lab for (n, p), lab in zip(cands, labels) if p in REDUCED]

    def runtime(n: str, p: str) -> Backend:
        if (n, p) not in built:  # started again from the cached program/ONNX file (seconds)
            built[(n, p)] = BACKENDS.get(n).from_model(art, precision=p, **kw)
        return built[(n, p)]

    def measure(tmp: Path):
        seconds, failed, gates = {}, {}, {}
        kept = None  # the first fp32 candidate that ran: the gate's reference, and often the choice
        for (n, p), lab in zip(cands, labels):
            checkpoint()  # the interpreter is exiting: stop between candidates (._cancel)
            try:
                b = runtime(n, p)
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot run here is just not chosen
                failed[lab] = f"{type(exc).__name__}: {exc}"
                continue
            time.sleep(0.3)  # let the previous runtime's worker threads park (OpenMP spin-waits ~200 ms)
            seconds[lab] = {str(bs): _probe_seconds(b, size, bs) for bs in batches}
            if kept is None and p not in REDUCED:
                kept = (n, p)
            else:  # one runtime at a time besides the reference: each holds its weights and the buffers of
                del b  # the largest probed batch (5 at once reached 8 GB for EfficientNetB6 at 528 px)
                built.pop((n, p), None)
                gc.collect()
        alive = [lab for lab in labels if lab in seconds]
        if not alive:
            raise RuntimeError("no candidate ran: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
        ref = {}

        def passes(lab: str) -> bool:
            if not gate or lab not in reduced:
                return True
            if lab not in gates:
                if "logits" not in ref:  # fp32: the first fp32 candidate that ran, else the dygraph model
                    fp32 = [tuple(lab2.split("/")) for lab2 in alive if lab2 not in reduced]
                    runner = runtime(*fp32[0]) if fp32 else DygraphBackend(art.model(), threads=threads)
                    ref["logits"] = logits_in_chunks(runner, calib.batch())
                name, prec = lab.split("/")
                x, r = calib.batch(), ref["logits"]
                if getattr(BACKENDS.get(name), "needs_calibration", False):
                    x, r = x[len(x) // 2:], r[len(r) // 2:]  # the half it was not calibrated on
                g = accuracy_gate(r, logits_in_chunks(runtime(name, prec), x), lab, calib.description)
                gates[lab] = g.as_dict()
                if gates[lab]["passed"] is False:
                    built.pop((name, prec), None)
            return gates[lab]["passed"]

        while True:
            best = {bs: min(seconds[lab][bs] for lab in alive) for bs in seconds[alive[0]]}
            score = {lab: max(seconds[lab][bs] / best[bs] for bs in best) for lab in alive}
            fastest = min(alive, key=lambda lab: score[lab])
            if not passes(fastest):
                alive.remove(fastest)
                continue
            choice = next(lab for lab in alive if score[lab] <= score[fastest] / AUTO_TOLERANCE)
            if passes(choice):
                break
            alive.remove(choice)
        name, prec = choice.split("/")
        (tmp / "choice.json").write_text(json.dumps({
            "choice": {"backend": name, "precision": prec}, "candidates": labels,
            "seconds_per_batch": seconds, "slowdown_vs_fastest": score, "gate": gates, "failed": failed,
            "threads": threads, "calibration": calib.description if gate and reduced else None,
            "rule": f"best-ranked candidate with >= {AUTO_TOLERANCE:.0%} of the fastest's speed (worst ratio over batches "
                    f"{list(batches)}); bf16/int8 only with top-1 agreement >= {TOP1_MIN:.0%} and max "
                    f"|dprob| <= {MAX_DPROB} against fp32"}, indent=1))

    extra = {"device": kw["device"], "threads": threads, "candidates": labels, "probe": list(batches)}
    if gate and reduced:
        if calib.id is None:
            calib.batch()  # a batch given without an id is named by its hash
        extra.update(calibration=calib.id, top1_min=TOP1_MIN, max_dprob=MAX_DPROB)
    rec = json.loads((art.cached("auto-choice", measure, extra=extra) / "choice.json").read_text())
    from .gate import GateResult

    for g in rec.get("gate", {}).values():  # on every load: the figures the choice rests on
        log.info(GateResult(**g).line())
    c = rec["choice"]
    log.info("auto chose %s/%s for %s (%d threads)", c["backend"], c["precision"], art.name, threads)
    return rec


def backend_from_export(directory, backend: Optional[str] = "auto", *, device=None, threads=None, precision=None,
                        input_size=None, warmup: Sequence[int] = (), **options) -> Backend:
    """A backend over an export directory's program (``hubcls export`` output). "auto" takes the static
    order here (fp32; the INT8 file is used when named: backend "int8")."""
    dev = resolve_device(device)
    which = resolve_backend_name(backend, dev)
    precision = _resolve_precision(precision, auto=False)
    if which == "dygraph":
        raise ConfigError("an export directory's program runs on backend 'inference' or 'onnxruntime'; "
                          "'dygraph' needs the package's weights (model.safetensors)")
    t0 = time.time()
    b = _usable(which, dev).from_export(Path(directory), device=dev, threads=threads, precision=precision,
                                        input_size=input_size, **options)
    b.input_size = tuple(input_size) if input_size is not None else None
    if warmup and b.input_size is not None:
        with quiet():
            b.warmup(b.input_size, batch_sizes=tuple(warmup))
    b.load_seconds = time.time() - t0
    return b
