"""``hubcls.hub.Module``: a pretrained classifier you can ``predict`` with, PaddleHub style.

    import hubcls.hub as hub
    m = hub.Module(name="resnet50_vd_imagenet_ssld")          # official weights (download + cache)
    m = hub.Module(directory="output/quickstart")             # your own model: a run, package, export
    m.predict(["cat.jpg"], top_k=5)                           # [{"tabby, tabby cat": 0.61, ...}]

The model comes from the model resolver (``hubcls.models.resolve_model``: zoo names, packages, run
and export directories, PaddleHub module directories, weights files), its class count from its
weights and its class names and preprocessing from its package or run. Prediction is the one
pipeline of hubcls.deploy (decode -> fused preprocess -> backend -> postprocess), the same code under
``Predictor``, ``hubcls serve`` and ``hubcls infer``: ``Module.logits(batch)`` is the backend seam
``hubcls serve`` batches into; ``backend=None`` means "auto" (the fastest installed backend,
HUBCLS_BACKEND overrides), ``"dygraph"`` the eval-mode model itself, or any callable.

Bad images: ``predict(..., on_error="raise")`` (default) decodes every image first and raises one
``ImageDecodeError`` naming every bad image before any compute; ``on_error="return"`` keeps going
and puts a :class:`PredictionError` (a dict ``{"error": message}`` with ``.index``/``.source``) at
the bad image's position, so one bad image never sinks the others. ``hubcls serve`` uses "return".
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np

from ..data.inputs import as_list
from ..deploy.pipeline import PredictionError  # noqa: F401 - part of this module's API
from ..errors import (
    ConfigError,
    DownloadError,
    HubclsError,
    ImageDecodeError,
    WeightsUnavailableError,  # noqa: F401 - re-exported (hubcls.hub.WeightsUnavailableError)
)

RANDOM_WEIGHTS = "random"
# how long a new Module waits for the auto-chosen backend before answering on dygraph meanwhile
# (a warm cache is ready within it); HUBCLS_BACKGROUND_BACKEND=0 waits for the backend instead
FIRST_ANSWER_WAIT_S = 0.5
ENV_BACKGROUND_BACKEND = "HUBCLS_BACKGROUND_BACKEND"



def _gpu_available() -> bool:
    from ..deploy.backends import resolve_device

    return resolve_device("auto") != "cpu"


def _check_gpu(use_gpu: bool, what: str = "use_gpu=True") -> bool:
    """Whether to run on the GPU: ``use_gpu`` where there is one; where there is none, the CPU with
    a warning (PaddleHub's modules fall back the same way; a script written on a GPU machine runs)."""
    if not use_gpu:
        return False
    if _gpu_available():
        return True
    warnings.warn(f"{what}, but this Paddle build sees no CUDA GPU: running on the CPU "
                  f"(install hubcls[gpu] on a GPU machine to use one)", stacklevel=3)
    return False


def paddlehub_labels(labels: Sequence[str]) -> List[str]:
    """PaddleHub's ImageNet modules answer with the first name of each class ("Pembroke" for
    "Pembroke, Pembroke Welsh corgi"); repeats get their class index (see deploy.postprocess)."""
    from ..deploy.postprocess import unique_labels

    return unique_labels([str(name).split(",")[0].strip() for name in labels])


class Module:
    """A pretrained image classifier (PaddleHub-style).

    Args:
        name: a zoo name in any spelling (``ResNet50_vd_ssld``, ``resnet50_vd_ssld``, PaddleHub's
            ``resnet50_vd_imagenet_ssld``), or any other model form the resolver accepts. Asked for
            by a PaddleHub module name (``hubcls.models.paddlehub_module``), the Module answers as that
            PaddleHub module does: its class names (the first name of each ImageNet class,
            ``"Pembroke"``), its ``serving_method`` shape and its ``save_inference_model`` file names.
        directory: a model package (``save_pretrained``), a training run (``hubcls train``), an export
            directory (``hubcls export``, or a PaddleClas ``tools/export_model.py`` folder) or a
            PaddleHub module package (``hubcls hub-module``).
        weights: None = the model's own (official weights for a zoo name, downloaded once into
            HUBCLS_HOME; HUBCLS_OFFLINE=1 never downloads; a directory's own weights); a weights file
            (.pdparams / .safetensors, any key scheme the zoo loads; its class count is used);
            a package or run directory; or ``"random"`` for untrained weights (demos and tests only; warns).
            ``load_checkpoint=`` (PaddleHub's spelling) means the same.
        label_list: list of class names or a label file; default: the package's / run's / zoo's,
            else ``class_0..N-1`` with a warning.
        use_gpu: run on the GPU; where Paddle sees none, the CPU with a warning. ``predict`` and
            ``classification`` also take ``use_gpu`` per call.
        backend: a runner ``callable(float32 NCHW batch) -> logits`` or a backend name understood
            by hubcls.deploy ("dygraph", "inference", "onnxruntime", ...); None = "auto".
        calib_images: images (a folder or a list) on which "auto" checks bf16/INT8 against fp32 before
            it may use them (default: HUBCLS_CALIB_IMAGES, else a shipped set).
    """

    def __init__(
        self,
        name: Optional[str] = None,
        directory: Optional[str] = None,
        weights: Optional[str] = None,
        label_list: Union[None, str, Sequence[str]] = None,
        *,
        use_gpu: bool = False,
        backend: Union[None, str, Callable] = None,
        version: Optional[str] = None,  # accepted for PaddleHub signature compatibility; unused
        calib_images=None,
        load_checkpoint: Optional[str] = None,  # PaddleHub's name for a fine-tuned weights file
        **kwargs: Any,
    ):
        if kwargs:
            raise TypeError(f"Module() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        if load_checkpoint is not None:
            if weights is not None:
                raise ConfigError("Module takes weights=... or load_checkpoint=..., not both")
            weights = load_checkpoint
        if name is not None and directory is not None:
            raise ConfigError("Module takes name=... or directory=..., not both")
        if name is None and directory is None:
            # a PaddleHub module package class sets this as a class attribute
            name = getattr(type(self), "HUBCLS_MODEL", None)
            if name is None:
                raise ConfigError("Module needs name=... (e.g. 'resnet50_vd_imagenet_ssld') or directory=...")
        self.use_gpu = _check_gpu(use_gpu)
        if directory is not None and not Path(os.fspath(directory)).is_dir():
            raise ConfigError(f"Module(directory=...): {directory} is not a directory")
        self.source = self._resolve(directory if directory is not None else name, weights)
        self._backend_arg = backend if backend is not None else "auto"
        self._label_list = label_list
        self._calib_images = calib_images
        self._gpu_pipeline = None
        self.pipeline = self._build_pipeline("gpu:0" if self.use_gpu else "cpu")
        self._model = self.pipeline.model
        self.pretrained_cfg = self._model.pretrained_cfg if self._model is not None else self.source.cfg
        self.name = self.pretrained_cfg.name
        self.weights_source = self.source.weights_id
        # the PaddleHub module this Module stands in for (None: hubcls's own conventions)
        self.paddlehub = _paddlehub_contract(self.source, name if directory is None else None)
        if self.paddlehub is not None and label_list is None:
            self.pipeline.labels = paddlehub_labels(self.pipeline.labels)

    # ----------------------------------------------------------------------------- construction
    @staticmethod
    def _resolve(spec, weights):
        from ..models import resolve_model

        if isinstance(weights, (str, os.PathLike)) and not isinstance(weights, bool):
            w = os.fspath(weights)
            if w.lower() == RANDOM_WEIGHTS:
                warnings.warn(f"hub.Module({spec!r}, weights='random'): untrained weights, predictions are meaningless",
                              stacklevel=3)
            elif w.lower() != "official" and not w.startswith(("http://", "https://", "file://")) \
                    and not Path(w).expanduser().exists():
                raise WeightsUnavailableError(f"weights file {w} does not exist")
        source = resolve_model(spec, weights=weights)
        if source.weights is True and not source.cfg.has_weights:
            raise WeightsUnavailableError(f"{source.cfg.name} has no official pretrained weights; pass weights=FILE "
                                          f"(or weights='random' for an untrained model)")
        return source

    def _build_pipeline(self, device: str, dygraph_model=None):
        from ..deploy.pipeline import build_pipeline

        try:
            # first answer fast: on a cold cache "auto" exports and times backends (10-20 s); the
            # Module answers on the dygraph model meanwhile and switches when that is done
            first = None if os.environ.get(ENV_BACKGROUND_BACKEND, "1") == "0" else FIRST_ANSWER_WAIT_S
            return build_pipeline(source=self.source, backend=self._backend_arg, device=device,
                                  label_list=self._label_list, dygraph_model=dygraph_model,
                                  calib_images=self._calib_images, first_answer=first)
        except WeightsUnavailableError:
            raise  # its message already lists every fix, the same one the CLI prints
        except (DownloadError, OSError) as exc:
            if self.source.weights is True:
                raise WeightsUnavailableError(_no_weights_message(self.source.cfg, exc)) from exc
            raise

    def _pipeline_for(self, use_gpu: bool):
        """The pipeline of one call: ``use_gpu=True`` on a CPU Module runs on the GPU when there is
        one (a second pipeline, built on first use), else on the CPU with a warning."""
        if not use_gpu or self.use_gpu or not _check_gpu(True, f"{self.name}: use_gpu=True"):
            return self.pipeline
        if self._gpu_pipeline is None:
            gpu = self._build_pipeline("gpu:0")
            gpu.labels = list(self.pipeline.labels)
            self._gpu_pipeline = gpu
        return self._gpu_pipeline

    # ----------------------------------------------------------------------------- properties
    @property
    def model(self):
        """The eval-mode dygraph model (built on first use for a program-only export directory)."""
        if self._model is None:
            self._model = self.source.create()
        return self._model

    @property
    def labels(self) -> List[str]:
        return self.pipeline.labels

    @property
    def num_classes(self) -> int:
        return self.pipeline.num_classes

    @property
    def label_list(self) -> List[str]:
        return list(self.labels)

    @property
    def transform(self):
        return self.pipeline.transform

    def wait_for_backend(self, timeout: Optional[float] = None) -> bool:
        """Block until the auto-chosen backend has replaced the dygraph model that answers while it is
        exported and timed in the background (True), or ``timeout`` seconds passed (False)."""
        return self.pipeline.wait_for_backend(timeout)

    @property
    def serving_shape(self) -> str:
        """How PaddleHub Serving answers for this Module: ``"data"`` (``results: {"data": [...]}``,
        PaddleHub's ImageClassifierModule modules) or ``"list"`` (``results: [...]``). ``hubcls serve``
        and :meth:`serving_method` read it."""
        return "data" if self.paddlehub is not None and self.paddlehub.answers_data else "list"

    @property
    def runner(self):
        """The backend step of the pipeline (float32 NCHW batch -> logits); replaceable."""
        return self.pipeline.backend

    @runner.setter
    def runner(self, backend):
        self.pipeline.backend = backend

    def __repr__(self):
        return f"hubcls.hub.Module(name={self.name!r}, weights={self.weights_source!r}, classes={self.num_classes})"

    # ----------------------------------------------------------------------------- the pipeline
    def preprocess(self, rgb_images: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 RGB HWC images -> float32 NCHW batch (one fused call over the whole batch)."""
        return self.pipeline.preprocess(rgb_images)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW batch -> float32 logits. Every prediction path goes through here."""
        return self.pipeline.logits(batch)

    def postprocess(self, logits: np.ndarray, top_k: int = 1) -> List[dict]:
        return self.pipeline.postprocess(logits, top_k)

    def decode(self, images, channel_order: str = "BGR"):
        """Inputs -> list of (RGB array | PredictionError)."""
        return self.pipeline.decode(images, channel_order)

    def predict(self, images, batch_size: int = 1, top_k: int = 1, use_gpu: bool = False, *,
                channel_order: str = "BGR", on_error: str = "raise") -> List[dict]:
        """Classify ``images`` (paths, bytes, file objects, PIL images, uint8 arrays - BGR unless
        ``channel_order="RGB"``). Returns one ``{label: prob}`` dict per image, most probable first.
        ``use_gpu=True`` runs this call on the GPU (the CPU with a warning where there is none)."""
        return self._pipeline_for(use_gpu).predict(images, top_k=top_k, batch_size=batch_size,
                                                   channel_order=channel_order, on_error=on_error)

    def classification(self, images=None, paths=None, batch_size: int = 1, use_gpu: bool = False,
                       top_k: int = 1, data: Optional[dict] = None, **kwargs) -> List[dict]:
        """PaddleHub's call: ``images`` are decoded BGR arrays (``cv2.imread``), ``paths`` image files
        (answered first, as PaddleHub does); ``data={"image": [paths]}`` is the Paddle 1.x modules'
        form. PaddleHub's errors: a path that is not a file is an AssertionError, a path string
        passed as ``images=`` a TypeError (file paths go in ``paths=``; :meth:`predict` takes every kind)."""
        if data is not None:
            if not isinstance(data, dict) or "image" not in data:
                raise TypeError('classification(data=...) takes {"image": [image paths]}')
            paths = list(as_list(paths)) + list(as_list(data["image"]))
        path_list = as_list(paths)
        for p in path_list:
            if not isinstance(p, (str, os.PathLike)):
                raise TypeError(f"classification(paths=...) takes file paths, got {type(p).__name__}; "
                                f"pass decoded arrays as images=[...]")
            if not os.path.isfile(p):
                raise AssertionError(f"The {os.fspath(p)} isn't a valid file path.")
        image_list = _as_image_list(images)
        inputs = list(path_list) + image_list
        if not inputs:
            raise ValueError("classification() needs images=[...] (BGR arrays) or paths=[...]")
        return self.predict(inputs, batch_size=batch_size, top_k=top_k, use_gpu=use_gpu, **kwargs)

    def serving_method(self, images, **kwargs):
        """PaddleHub Serving entry: base64-encoded images -> the answers, in the shape of
        :attr:`serving_shape` (``{"data": [...]}`` or a list). A bad image is ``{"error": ...}`` at its
        position."""
        from ..deploy.pipeline import from_base64

        decoded = from_base64(as_list(images))
        kwargs.setdefault("on_error", "return")
        if "top_k" in kwargs:
            kwargs["top_k"] = int(kwargs["top_k"])  # PaddleHub clients may send it as a string
        results = [dict(r) for r in self.predict(decoded, **kwargs)]
        return {"data": results} if self.serving_shape == "data" else results

    def run_cmd(self, argvs: Sequence[str]) -> List[dict]:
        """``hub run <module> --input_path IMAGE [--top_k K] [--batch_size N] [--use_gpu BOOL]``:
        PaddleHub's command-line entry (``hubcls run`` too); ``print()`` of the result is what
        ``hub run`` prints. The probabilities are typed as the PaddleHub module's are: float32 for
        ImageClassifierModule modules (``serving_shape == "data"``), Python floats otherwise."""
        import argparse
        import ast

        prog = f"hub run {getattr(self, 'hub_name', None) or self.name}"
        parser = argparse.ArgumentParser(prog=prog, usage="%(prog)s", description=f"Run the {self.name} module.")
        inputs = parser.add_argument_group("Input options", "Input data. Required")
        config = parser.add_argument_group("Config options",
                                           "Run configuration for controlling module behavior, not required.")
        config.add_argument("--use_gpu", type=ast.literal_eval, default=False, help="whether use GPU or not.")
        config.add_argument("--batch_size", type=ast.literal_eval, default=1, help="batch size.")
        config.add_argument("--top_k", type=ast.literal_eval, default=1, help="Return top k results.")
        inputs.add_argument("--input_path", type=str, required=True, help="path to image.")
        args = parser.parse_args(list(argvs))
        results = self.classification(paths=[args.input_path], batch_size=args.batch_size, top_k=args.top_k,
                                      use_gpu=bool(args.use_gpu))
        if self.serving_shape == "data":
            return [{k: np.float32(v) for k, v in r.items()} for r in results]
        return results

    # ----------------------------------------------------------------------------- features etc.
    def features(self, images, batch_size: int = 8, *, channel_order: str = "BGR") -> np.ndarray:
        """Pooled embeddings (N, D), D = the classifier's input width: what the classifier sees
        (``forward_head(forward_features(x), pre_logits=True)``)."""
        from .._paddle import import_paddle

        paddle = import_paddle()
        decoded = self.decode(images, channel_order)
        bad = [d for d in decoded if isinstance(d, PredictionError)]
        if bad:
            raise ImageDecodeError(", ".join(e.source for e in bad), "could not decode: "
                                   + "; ".join(f"#{e.index}: {e.reason}" for e in bad))
        model = self.model
        if not hasattr(model, "forward_features"):
            raise HubclsError(f"{self.name} has no forward_features")
        chunks = []
        model.eval()
        for start in range(0, len(decoded), int(batch_size)):
            batch = self.preprocess(decoded[start:start + int(batch_size)])
            with paddle.no_grad():
                f = model.forward_features(paddle.to_tensor(batch))
                if isinstance(f, (list, tuple)):
                    f = f[-1]
                if hasattr(model, "forward_head"):
                    # the classifier's input: pooled (+ head conv for MobileNetV3-style heads)
                    f = model.forward_head(f, pre_logits=True)
                f = f.numpy()
            if f.ndim == 4:
                f = f.mean(axis=(2, 3))
            chunks.append(f.reshape(f.shape[0], -1).astype(np.float32))
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)

    def explain(self, images, *, label: Union[None, int, str] = None, top_k: int = 1, stage: Optional[int] = None,
                channel_order: str = "BGR", out_dir: Union[None, str, os.PathLike] = None, alpha: float = 0.45):
        """Grad-CAM heatmaps: for each image, where the evidence for its ``top_k`` classes (or for
        ``label``, a class name or index) is, as :class:`hubcls.hub.explain.Explanation` objects (a
        [0, 1] heatmap on the original image, the class, its probability). ``out_dir``: also write
        each as a PNG overlay. ``stage``: the backbone stage whose map is used (-1: the last; None: the
        last with a map of at least 4x4 cells, see hubcls.hub.explain)."""
        from .explain import explain

        return explain(self, images, label=label, top_k=top_k, stage=stage, channel_order=channel_order,
                       out_dir=out_dir, alpha=alpha)

    def backbone(self, out_indices=(1, 2, 3, 4)):
        """A features_only model with this Module's weights (for detection/segmentation)."""
        return self.source.create(features_only=True, out_indices=tuple(out_indices))

    def export(self, directory: Union[str, os.PathLike], *, onnx: bool = False) -> str:
        """A hubcls export directory: a model package + Paddle inference program (+ ONNX), which
        every entry point (Predictor, ``hubcls serve --model-dir``, Module(directory=...)) takes."""
        from ..deploy.export import export_model

        out = export_model(self.model, directory, cfg=self.pretrained_cfg, labels=self.labels,
                           name=self.name, onnx=onnx, provenance={"source_weights": self.weights_source})
        return str(out)

    def save_inference_model(self, dirname: str, model_filename: Optional[str] = None,
                             params_filename: Optional[str] = None, input_spec=None,
                             include_sub_modules: bool = True, combined: bool = True) -> str:
        """PaddleHub's export: the inference program under PaddleHub's file names and nothing else.

        ``dirname`` is a path prefix: ``<dirname>.pdiparams`` + ``<dirname>.json`` (Paddle 3's
        program) + ``<dirname>.pdmodel`` (the same program for Paddle 2.x tools); an existing
        directory gets ``<dirname>/model.*``, and for PaddleHub's ImageClassifierModule modules
        ``<dirname>/<module name>.*`` (what PaddleHub writes for each). Returns the path prefix.
        The other arguments are PaddleHub's and change nothing here. For a hubcls export directory
        (model package + program, readable by every entry point) use :meth:`export`."""
        from ..deploy._program import save_inference_program

        d = os.fspath(dirname)
        if self.paddlehub is not None and self.paddlehub.api == "predict":
            prefix = os.path.join(d, self.paddlehub.hub_name)
        elif os.path.isdir(d):
            prefix = os.path.join(d, "model")
        else:
            prefix = d
        parent = os.path.dirname(prefix)
        if parent:
            os.makedirs(parent, exist_ok=True)
        save_inference_program(self.model, prefix, self.pipeline.input_size, legacy_program=True)
        return prefix


def _no_weights_message(cfg, exc) -> str:
    try:
        from .._download import cache_path

        urls = cfg.weight_urls()
        where = " or ".join(dict.fromkeys(str(cache_path(u)) for u in urls))
    except Exception:  # noqa: BLE001 - the message must still come out
        urls, where = [cfg.url or cfg.url_legendary], "the HUBCLS_HOME cache"
    return (f"official weights for {cfg.name} are not available: {exc}\n"
            f"Download {urls[0] if urls else '(no URL)'} and put it at {where} "
            f"(HUBCLS_HOME moves the cache), or pass weights=FILE (serve: --weights FILE), "
            f"or weights='random' for an untrained demo model")


def _as_image_list(images) -> list:
    """``classification(images=...)``: decoded arrays only, as PaddleHub's modules take them."""
    if images is None:
        return []
    if isinstance(images, (str, bytes, os.PathLike)):
        raise TypeError(f"classification(images=...) takes a list of decoded BGR arrays (cv2.imread), got "
                        f"{type(images).__name__} {images!r:.80}; pass file paths as paths=[...]")
    items = as_list(images)
    for i, img in enumerate(items):
        if isinstance(img, (str, os.PathLike)):
            raise TypeError(f"classification(images=...) takes decoded BGR arrays (cv2.imread), but image #{i} "
                            f"is the path {os.fspath(img)!r}; pass file paths as paths=[...]")
        if not isinstance(img, np.ndarray):
            raise TypeError(f"classification(images=...) takes decoded BGR arrays (cv2.imread), but image #{i} "
                            f"is a {type(img).__name__}; Module.predict takes bytes, files and PIL images too")
    return items


def _paddlehub_contract(source, given_name):
    """The PaddleHub module a Module was asked for: a PaddleHub module name, or a PaddleHub module
    package directory (named as its module is)."""
    from ..models import paddlehub_module

    candidates = [given_name] if isinstance(given_name, str) else []
    if source.kind == "hub_module" and source.directory is not None:
        candidates.append(Path(source.directory).name)
    for cand in candidates:
        hub = paddlehub_module(cand)
        if hub is not None and hub.model:
            return hub
    return None
