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

from ..deploy.pipeline import PredictionError  # noqa: F401 - part of this module's API
from ..errors import (
    ConfigError,
    DownloadError,
    HubclsError,
    ImageDecodeError,
    WeightsUnavailableError,  # noqa: F401 - re-exported (hubcls.hub.WeightsUnavailableError)
)

RANDOM_WEIGHTS = "random"




def _check_gpu(use_gpu: bool) -> bool:
    if not use_gpu:
        return False
    from .._paddle import import_paddle

    paddle = import_paddle()
    if not (paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0):
        raise HubclsError("use_gpu=True but this Paddle build has no usable CUDA device "
                          "(install hubcls[gpu] on a GPU machine, or pass use_gpu=False)")
    return True


class Module:
    """A pretrained image classifier (PaddleHub-style).

    Args:
        name: a zoo name in any spelling (``ResNet50_vd_ssld``, ``resnet50_vd_ssld``, PaddleHub's
            ``resnet50_vd_imagenet_ssld``), or any other model form the resolver accepts.
        directory: a model package (``save_pretrained``), a training run (``hubcls train``), an export
            directory (``hubcls export``) or a ``modules/<name>/`` PaddleHub module package.
        weights: None = the model's own (official weights for a zoo name, downloaded once into
            HUBCLS_HOME; HUBCLS_OFFLINE=1 never downloads; a directory's own weights); a weights file
            (.pdparams / .safetensors, any key scheme the zoo loads; its class count is used);
            a package or run directory; or ``"random"`` for untrained weights (demos and tests only; warns).
        label_list: list of class names or a label file; default: the package's / run's / zoo's,
            else ``class_0..N-1`` with a warning.
        use_gpu: run on GPU (clear error when there is none).
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
        **kwargs: Any,
    ):
        if kwargs:
            raise TypeError(f"Module() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
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
        from ..deploy.pipeline import build_pipeline

        try:
            self.pipeline = build_pipeline(source=self.source, backend=backend if backend is not None else "auto",
                                           device="gpu:0" if self.use_gpu else "cpu", label_list=label_list,
                                           calib_images=calib_images)
        except WeightsUnavailableError:
            raise  # its message already lists every fix, the same one the CLI prints
        except (DownloadError, OSError) as exc:
            if self.source.weights is True:
                raise WeightsUnavailableError(_no_weights_message(self.source.cfg, exc)) from exc
            raise
        self._model = self.pipeline.model
        self.pretrained_cfg = self._model.pretrained_cfg if self._model is not None else self.source.cfg
        self.name = self.pretrained_cfg.name
        self.weights_source = self.source.weights_id

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
        ``channel_order="RGB"``). Returns one ``{label: prob}`` dict per image, most probable first."""
        if use_gpu and not self.use_gpu:
            raise HubclsError("predict(use_gpu=True): create the Module with use_gpu=True")
        return self.pipeline.predict(images, top_k=top_k, batch_size=batch_size, channel_order=channel_order,
                                     on_error=on_error)

    def classification(self, images=None, paths=None, batch_size: int = 1, use_gpu: bool = False,
                       top_k: int = 1, **kwargs) -> List[dict]:
        """PaddleHub's name: ``images`` are BGR arrays (cv2.imread), ``paths`` file paths."""
        from ..data.inputs import as_list

        inputs = as_list(images) + as_list(paths)
        if not inputs:
            raise ValueError("classification() needs images=[...] (BGR arrays) or paths=[...]")
        return self.predict(inputs, batch_size=batch_size, top_k=top_k, use_gpu=use_gpu, **kwargs)

    def serving_method(self, images, **kwargs):
        """PaddleHub Serving entry: base64-encoded images -> classification results."""
        from ..deploy.pipeline import from_base64

        kwargs.setdefault("on_error", "return")
        return self.classification(images=from_base64(images), **kwargs)

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

    def backbone(self, out_indices=(1, 2, 3, 4)):
        """A features_only model with this Module's weights (for detection/segmentation)."""
        return self.source.create(features_only=True, out_indices=tuple(out_indices))

    def save_inference_model(self, dirname: str, *args, **kwargs) -> str:
        """Export a model package + Paddle inference program (hubcls.deploy's export)."""
        from ..deploy.export import export_model

        out = export_model(self.model, dirname, cfg=self.pretrained_cfg, labels=self.labels,
                           name=self.name, onnx=bool(kwargs.pop("onnx", False)),
                           provenance={"source_weights": self.weights_source})
        return str(out)


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
