"""``Predictor``: classify images with an exported model, same inputs and answers as hub.Module.predict.

    from hubcls.deploy import Predictor
    p = Predictor("out/resnet50_vd")            # a `hubcls export` directory
    p.predict(["cat.jpg"], top_k=5)             # [{"tabby, tabby cat": 0.61, ...}]

Preprocessing is rebuilt from the directory's preprocess.json with ``hubcls.data.build_transforms``
(the code training-time eval, hub.Module and serve use), run as one fused batch call into a reused
buffer. The backend (Paddle Inference with oneDNN / GPU / TensorRT, or onnxruntime) comes from
hubcls.deploy.backends.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..errors import ConfigError, ImageDecodeError


class BatchClassifier:
    """Images -> preprocessed batch (reused buffer) -> backend logits -> top-k dicts.

    Shared by Predictor and the runner hub.Module uses, so both batch and post-process the same way."""

    def __init__(self, backend, transform, labels: Optional[Sequence[str]], input_size):
        self.backend = backend
        self.transform = transform
        self.labels = list(labels) if labels else None
        self.input_size = tuple(input_size)
        self._buf = None
        import threading

        self._lock = threading.Lock()  # the reused buffer belongs to one call at a time
        self._rngs = [np.random.default_rng(0)]  # eval ops draw nothing; run_batch wants one per item

    def preprocess(self, rgb_images: Sequence[np.ndarray]) -> np.ndarray:
        n = len(rgb_images)
        if self._buf is None or self._buf.shape[0] < n:
            self._buf = np.empty((n, *self.input_size), np.float32)
        run_batch = getattr(self.transform, "run_batch", None)
        if run_batch is not None:
            batch, _ = run_batch(list(rgb_images), self._rngs * n, out=self._buf[:n])
            if batch.shape[1:] != self.input_size:
                raise ConfigError(f"preprocessing produced {batch.shape[1:]}, the program expects {self.input_size}")
            return batch
        for i, img in enumerate(rgb_images):
            self._buf[i] = self.transform(img)
        return self._buf[:n]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.backend(batch)

    def postprocess(self, logits: np.ndarray, top_k: int) -> List[dict]:
        from ..hub.module import softmax, topk_dicts

        labels = self.labels if self.labels and len(self.labels) == logits.shape[-1] else [
            str(i) for i in range(logits.shape[-1])]
        return topk_dicts(softmax(logits.astype(np.float64)), labels, top_k)

    def predict_rgb(self, rgb_images: Sequence[np.ndarray], top_k: int = 1, batch_size: int = 8) -> List[dict]:
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out: List[dict] = []
        for start in range(0, len(rgb_images), int(batch_size)):
            chunk = rgb_images[start:start + int(batch_size)]
            with self._lock:
                logits = self.logits(self.preprocess(chunk))
            out.extend(self.postprocess(logits, top_k))
        return out


def to_rgb_list(images, channel_order: str = "BGR") -> List[np.ndarray]:
    """Paths, bytes, file objects, PIL images or uint8 arrays (BGR unless channel_order="RGB"), like
    hub.Module.predict; raises one ImageDecodeError naming every bad image."""
    from ..hub import images as _images

    if images is None:
        return []
    if isinstance(images, np.ndarray) and images.ndim == 4:
        items = list(images)
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        items = [images]
    out, bad = [], []
    for i, img in enumerate(items):
        try:
            out.append(_images.to_rgb(img, channel_order))
        except ImageDecodeError as exc:
            bad.append(f"#{i} {exc.source}: {exc.reason}")
    if bad:
        raise ImageDecodeError(", ".join(b.split(":")[0] for b in bad), f"{len(bad)} of {len(items)} images could not be decoded ({'; '.join(bad)})")
    return out


class Predictor:
    """An exported model (``hubcls export`` directory) ready to classify images.

    Args:
        directory: the export directory.
        backend: "auto" (default; HUBCLS_BACKEND overrides), "inference", "onnxruntime" or "int8".
        device: "cpu", "gpu", "gpu:N" or None/"auto".
        threads: CPU threads (default: HUBCLS_NUM_THREADS or the CPUs this process may use).
        precision: "fp32"; on GPU with Paddle Inference also "fp16" / "int8" / "trt_fp32" (TensorRT).
        use_mkldnn: oneDNN for Paddle Inference on CPU (default on).
        warmup: run this many zero batches (batch 1) at load so the first call is not slow.
    """

    def __init__(self, directory, backend: Optional[str] = "auto", *, device: Optional[str] = None,
                 threads: Optional[int] = None, precision: str = "fp32", use_mkldnn: bool = True, warmup: int = 1):
        import time

        from .backends import PaddleInferenceBackend, backend_from_export, resolve_backend_name, resolve_device
        from .export import build_preprocess, read_export

        t0 = time.time()
        self.directory = Path(directory)
        spec = read_export(self.directory)
        self.meta = spec["meta"]
        self.input_size = tuple(spec["input_size"])
        self.preprocess_ops = spec["ops"]
        dev = resolve_device(device)
        if resolve_backend_name(backend, dev) == "inference" and not use_mkldnn:
            self.backend = PaddleInferenceBackend(self.directory, device=dev, threads=threads, precision=precision,
                                                  mkldnn=False, input_size=self.input_size)
        else:
            self.backend = backend_from_export(self.directory, backend, device=dev, threads=threads, precision=precision)
        self._clf = BatchClassifier(self.backend, build_preprocess(self.preprocess_ops), spec["labels"], self.input_size)
        if warmup:
            from ._quiet import quiet

            with quiet():
                self.backend.warmup(self.input_size, (1,), runs=int(warmup))
        self.load_seconds = time.time() - t0

    @property
    def labels(self):
        return self._clf.labels

    def preprocess(self, images, channel_order: str = "BGR") -> np.ndarray:
        return self._clf.preprocess(to_rgb_list(images, channel_order)).copy()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW (already preprocessed) -> logits."""
        return self.backend(batch)

    def predict(self, images, top_k: int = 1, batch_size: int = 8, *, channel_order: str = "BGR") -> List[dict]:
        """One ``{label: prob}`` dict per image, most probable first (as hub.Module.predict returns)."""
        return self._clf.predict_rgb(to_rgb_list(images, channel_order), top_k=top_k, batch_size=batch_size)

    def __repr__(self):
        return f"Predictor({str(self.directory)!r}, {self.backend!r})"
