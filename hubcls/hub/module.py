"""``hubcls.hub.Module``: a pretrained classifier you can ``predict`` with, PaddleHub style.

    import hubcls.hub as hub
    m = hub.Module(name="resnet50_vd_imagenet_ssld")          # official weights (download + cache)
    m.predict(["cat.jpg"], top_k=5)                           # [{"tabby, tabby cat": 0.61, ...}]

Everything model-specific (architecture, weights URL, eval resize/crop/mean/std, label list) comes
from the model's PretrainedCfg; preprocessing is ``hubcls.data.eval_transforms_for(cfg)``, the same
pipeline training-time eval uses, so ``predict``/``serve`` answers equal eval answers.

Prediction goes through ONE seam: ``Module.logits(batch)`` (float32 NCHW -> float32 logits), which
calls ``self.runner``. The runner comes from the inference-backend layer,
``hubcls.deploy.backends.create_runner(model, cfg, backend=...)``: ``backend=None`` means "auto"
(the fastest installed backend, HUBCLS_BACKEND overrides), ``"dygraph"`` the eval-mode model itself,
or any callable. ``hubcls serve`` batches requests into that same seam.

Bad images: ``predict(..., on_error="raise")`` (default) decodes every image first and raises one
``ImageDecodeError`` naming every bad image before any compute; ``on_error="return"`` keeps going
and puts a :class:`PredictionError` (a dict ``{"error": message}`` with ``.index``/``.source``) at
the bad image's position, so one bad image never sinks the others. ``hubcls serve`` uses "return".
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np

from ..errors import ConfigError, DownloadError, HubclsError, ImageDecodeError
from ..errors import WeightsUnavailableError  # noqa: F401 - re-exported (hubcls.hub.WeightsUnavailableError)
from . import images as _images

RANDOM_WEIGHTS = "random"
ON_ERROR = ("raise", "return")


class PredictionError(dict):
    """Per-image failure inside a ``predict(..., on_error="return")`` result list.

    A dict (``{"error": message}``) so results stay JSON-serialisable; ``.index``, ``.source`` and
    ``.reason`` give the details."""

    def __init__(self, index: int, source: str, reason: str):
        super().__init__(error=f"{source}: {reason}")
        self.index, self.source, self.reason = index, source, reason

    def __repr__(self):
        return f"PredictionError(index={self.index}, source={self.source!r}, reason={self.reason!r})"


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def topk_dicts(probs: np.ndarray, labels: Sequence[str], top_k: int) -> List[dict]:
    """One ``{label: prob}`` dict per row, most probable first (ties: lower class index first)."""
    k = max(1, min(int(top_k), probs.shape[-1]))
    out = []
    for row in probs:
        idx = np.argsort(-row, kind="stable")[:k]
        out.append({labels[i]: float(row[i]) for i in idx})
    return out


def unique_labels(labels: Sequence[str]) -> List[str]:
    """Results are ``{label: prob}`` dicts, so a repeated name would drop a class (ImageNet-1k names
    "crane" and "maillot" twice): later repeats get their class index appended, ``"crane (517)"``."""
    seen, out = set(), []
    for i, name in enumerate(labels):
        name = str(name)
        out.append(name if name not in seen else f"{name} ({i})")
        seen.add(name)
    return out


def read_label_file(path) -> List[str]:
    try:
        from ..deploy.export import read_labels  # one parser for "<index> <name>" and plain lines

        return read_labels(path)
    except ImportError:  # pragma: no cover - deploy is part of hubcls
        return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def labels_of_cfg(cfg) -> Optional[List[str]]:
    name = getattr(cfg, "label_list", None)
    if not name:
        return None
    if isinstance(name, (list, tuple)):
        return [str(x) for x in name]
    path = Path(name)
    if not path.is_file():
        path = Path(__file__).resolve().parent.parent / "data" / "labels" / f"{name}.txt"
    return read_label_file(path) if path.is_file() else None


class DygraphRunner:
    """The default runner: eval-mode dygraph forward under no_grad."""

    name = "dygraph"

    def __init__(self, model, use_gpu: bool = False):
        from .._paddle import import_paddle

        self.paddle = import_paddle()
        self.model = model
        self.model.eval()
        self.device = "gpu" if use_gpu else "cpu"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        paddle = self.paddle
        with paddle.no_grad():
            x = paddle.to_tensor(batch, place=paddle.CUDAPlace(0) if self.device == "gpu" else paddle.CPUPlace())
            out = self.model(x)
            if isinstance(out, (list, tuple)):
                out = out[0]
            return out.numpy().astype(np.float32, copy=False)


def _check_gpu(use_gpu: bool) -> bool:
    if not use_gpu:
        return False
    from .._paddle import import_paddle

    paddle = import_paddle()
    if not (paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0):
        raise HubclsError("use_gpu=True but this Paddle build has no usable CUDA device "
                          "(install hubcls[gpu] on a GPU machine, or pass use_gpu=False)")
    return True


def _module_dir_model_name(directory: Path) -> Optional[str]:
    """A modules/<name>/ PaddleHub package names its model as ``HUBCLS_MODEL = "..."`` in module.py."""
    module_py = directory / "module.py"
    if not module_py.is_file():
        return None
    m = re.search(r"""^HUBCLS_MODEL\s*=\s*["']([^"']+)["']""", module_py.read_text(encoding="utf-8"), re.M)
    return m.group(1) if m else None


class Module:
    """A pretrained image classifier (PaddleHub-style).

    Args:
        name: any spelling the zoo resolves (``ResNet50_vd_ssld``, ``resnet50_vd_ssld``,
            PaddleHub's ``resnet50_vd_imagenet_ssld``).
        directory: a model directory written by ``model.save_pretrained(dir)`` / ``hubcls train``
            (weights + config), or a ``modules/<name>/`` PaddleHub module package.
        weights: None = the official weights (downloaded once into HUBCLS_HOME; HUBCLS_OFFLINE=1 never
            downloads); a weights file (.pdparams / .safetensors, any key scheme the zoo loads); or
            ``"random"`` for untrained weights (demos and tests only; warns).
        label_list: list of class names or a label file; default: the model's label list.
        use_gpu: run on GPU (clear error when there is none).
        backend: a runner ``callable(float32 NCHW batch) -> logits`` or a backend name understood
            by hubcls.deploy ("dygraph", "inference", "onnxruntime", ...); None = "auto".
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
        **kwargs: Any,
    ):
        if kwargs:
            raise TypeError(f"Module() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        if name is None and directory is None:
            # a PaddleHub module package class sets these as class attributes
            name = getattr(type(self), "HUBCLS_MODEL", None)
            if name is None:
                raise ConfigError("Module needs name=... (e.g. 'resnet50_vd_imagenet_ssld') or directory=...")
        self.use_gpu = _check_gpu(use_gpu)
        self.model, self.pretrained_cfg, self.weights_source = self._build(name, directory, weights)
        self.name = self.pretrained_cfg.name
        self.labels = self._labels(label_list)
        self.transform = self._eval_transform()
        self.runner = self._make_runner(backend)

    # ----------------------------------------------------------------------------- construction
    def _build(self, name, directory, weights):
        from .. import models

        create_model = models.create_model
        if directory is not None and name is None:
            d = Path(directory)
            if not d.is_dir():
                raise ConfigError(f"Module(directory=...): {d} is not a directory")
            hub_name = _module_dir_model_name(d)
            if hub_name is not None:  # a modules/<name>/ package: just a name
                name = hub_name
            else:  # a save_pretrained / `hubcls train` output directory
                if weights not in (None,):
                    raise ConfigError("Module(directory=...) loads the directory's own weights; do not pass weights=")
                model = create_model(str(d), pretrained=str(d)) if _is_pretrained_dir(d) else None
                if model is None:
                    raise ConfigError(f"{d} holds no model (expected a save_pretrained directory or a modules/<name>/ package)")
                return model, model.pretrained_cfg, str(d)
        cfg = models.resolve(name)
        if weights is None:
            if not cfg.has_weights:
                raise WeightsUnavailableError(
                    f"{cfg.name} has no official pretrained weights; pass weights=FILE "
                    f"(or weights='random' for an untrained model)")
            try:
                model = create_model(cfg.name, pretrained=True)
            except WeightsUnavailableError:
                raise  # its message already lists every fix, the same one the CLI prints
            except (DownloadError, OSError) as exc:
                raise WeightsUnavailableError(_no_weights_message(cfg, exc)) from exc
            return model, model.pretrained_cfg, "official"
        if isinstance(weights, str) and weights.lower() == RANDOM_WEIGHTS:
            warnings.warn(f"hub.Module({cfg.name!r}, weights='random'): untrained weights, predictions are meaningless",
                          stacklevel=3)
            model = create_model(cfg.name, pretrained=False)
            return model, model.pretrained_cfg, RANDOM_WEIGHTS
        path = Path(os.fspath(weights))
        if not path.exists():
            raise WeightsUnavailableError(f"weights file {path} does not exist")
        model = create_model(cfg.name, pretrained=str(path))
        return model, model.pretrained_cfg, str(path)

    def _labels(self, label_list) -> List[str]:
        n = self.num_classes
        if label_list is None:
            labels = labels_of_cfg(self.pretrained_cfg)
            if labels is None or len(labels) != n:
                labels = [str(i) for i in range(n)]  # no names known: class indices
        elif isinstance(label_list, (str, os.PathLike)):
            labels = read_label_file(label_list)
        else:
            labels = [str(x) for x in label_list]
        if len(labels) != n:
            raise ConfigError(f"label_list has {len(labels)} names but {self.name} has {n} classes")
        return unique_labels(labels)

    def _eval_transform(self):
        from ..data import eval_transforms_for

        return eval_transforms_for(self.pretrained_cfg)

    def _make_runner(self, backend):
        if backend is None:
            # the deploy layer's default: the fastest installed backend (exported once, cached under
            # HUBCLS_HOME); HUBCLS_BACKEND=dygraph|inference|onnxruntime overrides it
            backend = "auto"
        if backend == "dygraph":
            return DygraphRunner(self.model, self.use_gpu)
        if callable(backend):
            return backend
        try:
            from ..deploy import backends as _backends  # the deployment engineer's backend layer
        except ImportError as exc:
            raise ConfigError(f"backend={backend!r} needs hubcls.deploy.backends, which is not available") from exc
        return _backends.create_runner(self.model, self.pretrained_cfg, backend=backend, use_gpu=self.use_gpu)

    # ----------------------------------------------------------------------------- properties
    @property
    def num_classes(self) -> int:
        return int(getattr(self.pretrained_cfg, "num_classes", 1000))

    @property
    def label_list(self) -> List[str]:
        return list(self.labels)

    def __repr__(self):
        return f"hubcls.hub.Module(name={self.name!r}, weights={self.weights_source!r}, classes={self.num_classes})"

    # ----------------------------------------------------------------------------- the seam
    def preprocess(self, rgb_images: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 RGB HWC images -> float32 NCHW batch (the shared eval preprocessing; one fused
        kernel call over the whole batch when the pipeline supports it)."""
        if hasattr(self.transform, "batch"):
            return np.asarray(self.transform.batch(list(rgb_images)), dtype=np.float32)
        return np.stack([np.asarray(self.transform(img), dtype=np.float32) for img in rgb_images])

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW batch -> float32 logits. Every prediction path goes through here."""
        return self.runner(np.ascontiguousarray(batch, dtype=np.float32))

    def postprocess(self, logits: np.ndarray, top_k: int = 1) -> List[dict]:
        return topk_dicts(softmax(logits), self.labels, top_k)

    # ----------------------------------------------------------------------------- prediction
    def decode(self, images, channel_order: str = "BGR"):
        """Inputs -> list of (RGB array | PredictionError)."""
        if channel_order not in _images.CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {_images.CHANNEL_ORDERS}, got {channel_order!r}")
        out = []
        for i, img in enumerate(_as_list(images)):
            try:
                out.append(_images.to_rgb(img, channel_order, index=None))
            except ImageDecodeError as exc:
                out.append(PredictionError(i, exc.source, exc.reason))
        return out

    def predict(
        self,
        images,
        batch_size: int = 1,
        top_k: int = 1,
        use_gpu: bool = False,
        *,
        channel_order: str = "BGR",
        on_error: str = "raise",
    ) -> List[dict]:
        """Classify ``images`` (paths, bytes, file objects, PIL images, uint8 arrays — BGR unless
        ``channel_order="RGB"``). Returns one ``{label: prob}`` dict per image, most probable first."""
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if use_gpu and not self.use_gpu:
            raise HubclsError("predict(use_gpu=True): create the Module with use_gpu=True")
        decoded = self.decode(images, channel_order)
        bad = [d for d in decoded if isinstance(d, PredictionError)]
        if bad and on_error == "raise":
            detail = "; ".join(f"#{e.index} {e.source}: {e.reason}" for e in bad)
            raise ImageDecodeError(", ".join(e.source for e in bad),
                                   f"{len(bad)} of {len(decoded)} images could not be decoded ({detail}); "
                                   f"pass on_error='return' to get per-image errors instead")
        results: List[Optional[dict]] = [d if isinstance(d, PredictionError) else None for d in decoded]
        good = [i for i, d in enumerate(decoded) if not isinstance(d, PredictionError)]
        for start in range(0, len(good), int(batch_size)):
            idx = good[start:start + int(batch_size)]
            batch, ok = self._preprocess_each([decoded[i] for i in idx], idx, results)
            if ok:
                for i, r in zip(ok, self.postprocess(self.logits(batch), top_k)):
                    results[i] = r
        return results  # type: ignore[return-value]

    def _preprocess_each(self, rgbs, idx, results):
        """Preprocess the batch at once; if that fails, one by one so an image the transform
        rejects becomes its own error and the others still go through."""
        try:
            return self.preprocess(rgbs), list(idx)
        except Exception:  # noqa: BLE001 - find the culprit below
            pass
        arrays, ok = [], []
        for i, rgb in zip(idx, rgbs):
            try:
                arrays.append(np.asarray(self.transform(rgb), dtype=np.float32))
                ok.append(i)
            except Exception as exc:  # noqa: BLE001 - e.g. a 1x1 image the crop cannot handle
                results[i] = PredictionError(i, _images.describe(rgb, i), f"preprocessing failed: {exc}")
        return (np.stack(arrays) if arrays else None), ok

    def classification(self, images=None, paths=None, batch_size: int = 1, use_gpu: bool = False,
                       top_k: int = 1, **kwargs) -> List[dict]:
        """PaddleHub's name: ``images`` are BGR arrays (cv2.imread), ``paths`` file paths."""
        inputs = list(_as_list(images)) if images is not None else []
        inputs += list(_as_list(paths)) if paths is not None else []
        if not inputs:
            raise ValueError("classification() needs images=[...] (BGR arrays) or paths=[...]")
        return self.predict(inputs, batch_size=batch_size, top_k=top_k, use_gpu=use_gpu, **kwargs)

    def serving_method(self, images, **kwargs):
        """PaddleHub Serving entry: base64-encoded images -> classification results."""
        decoded = [_images.b64decode_image(b, i) for i, b in enumerate(images)]
        kwargs.setdefault("on_error", "return")
        return self.classification(images=decoded, **kwargs)

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
        if not hasattr(self.model, "forward_features"):
            raise HubclsError(f"{self.name} has no forward_features")
        chunks = []
        self.model.eval()
        for start in range(0, len(decoded), int(batch_size)):
            batch = self.preprocess(decoded[start:start + int(batch_size)])
            with paddle.no_grad():
                f = self.model.forward_features(paddle.to_tensor(batch))
                if isinstance(f, (list, tuple)):
                    f = f[-1]
                if hasattr(self.model, "forward_head"):
                    # the classifier's input: pooled (+ head conv for MobileNetV3-style heads)
                    f = self.model.forward_head(f, pre_logits=True)
                f = f.numpy()
            if f.ndim == 4:
                f = f.mean(axis=(2, 3))
            chunks.append(f.reshape(f.shape[0], -1).astype(np.float32))
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)

    def backbone(self, out_indices=(1, 2, 3, 4)):
        """A features_only model with this Module's weights (for detection/segmentation)."""
        from .. import models

        pretrained = {"official": True, RANDOM_WEIGHTS: False}.get(self.weights_source, self.weights_source)
        return models.create_model(self.pretrained_cfg.name, features_only=True,
                                   out_indices=tuple(out_indices), pretrained=pretrained)

    def save_inference_model(self, dirname: str, *args, **kwargs) -> str:
        """Export a Paddle inference program + preprocessing JSON + labels (hubcls.deploy's export)."""
        from ..deploy.export import export_model

        out = export_model(self.model, dirname, cfg=self.pretrained_cfg, labels=self.labels,
                           name=self.name, onnx=bool(kwargs.pop("onnx", False)))
        return str(out)


def _as_list(images):
    if images is None:
        return []
    if isinstance(images, (list, tuple)):
        return list(images)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)  # an NHWC batch
    # a single image (path, bytes, array, PIL) is one input, not a sequence of inputs
    return [images]


def _is_pretrained_dir(d: Path) -> bool:
    return any((d / f).is_file() for f in ("config.json", "hubcls_config.json", "pretrained_cfg.json")) or any(
        d.glob("*.pdparams")) or any(d.glob("*.safetensors"))


def _no_weights_message(cfg, exc) -> str:
    try:
        from .._download import cache_path

        urls = cfg.weight_urls() if hasattr(cfg, "weight_urls") else [u for u in (cfg.url, cfg.url_legendary) if u]
        where = " or ".join(dict.fromkeys(str(cache_path(u)) for u in urls))
    except Exception:  # noqa: BLE001 - the message must still come out
        urls, where = [cfg.url or cfg.url_legendary], "the HUBCLS_HOME cache"
    return (f"official weights for {cfg.name} are not available: {exc}\n"
            f"Download {urls[0] if urls else '(no URL)'} and put it at {where} "
            f"(HUBCLS_HOME moves the cache), or pass weights=FILE (serve: --weights FILE), "
            f"or weights='random' for an untrained demo model")
