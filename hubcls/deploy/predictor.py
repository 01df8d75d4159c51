"""``Predictor``: a deployed model ready to classify images; same inputs and answers as hub.Module.predict.

    from hubcls.deploy import Predictor
    p = Predictor("out/resnet50_vd")            # a `hubcls export` directory (or any model form)
    p.predict(["cat.jpg"], top_k=5)             # [{"tabby, tabby cat": 0.61, ...}]

A thin face over the one prediction pipeline (pipeline.py): an export directory runs its program
(Paddle Inference with oneDNN / GPU / TensorRT, or onnxruntime); any other model form the resolver
accepts (zoo name, package, run directory, ...) is exported and cached by the backend layer.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import numpy as np


class Predictor:
    """A model (an export directory, or any form ``hubcls.models.resolve_model`` accepts) ready to
    classify images.

    Args:
        model: export directory, package, run directory, zoo name, ...
        backend: "auto" (default; HUBCLS_BACKEND overrides), "inference", "onnxruntime", "int8", "dygraph".
        device: "cpu", "gpu", "gpu:N" or None/"auto".
        threads: CPU threads (default: HUBCLS_NUM_THREADS or the CPUs this process may use).
        precision: None (fp32; with backend "auto" on a model that is not an export directory, bf16/int8
            too when the accuracy gate passes), "fp32", "bf16" (CPU with AVX512-BF16/AMX: "inference",
            "openvino"); on GPU with Paddle Inference also "fp16" / "int8" / "trt_fp32" (TensorRT).
        calib_images: the accuracy gate's images (a folder or a list), else HUBCLS_CALIB_IMAGES, else
            the shipped set.
        use_mkldnn: oneDNN for Paddle Inference on CPU (default on).
        warmup: run this many zero batches (batch 1) at load so the first call is not slow.
        weights, label_list: as for hub.Module (a name's weights; class names).
    """

    def __init__(self, model, backend: Optional[str] = "auto", *, device: Optional[str] = None,
                 threads: Optional[int] = None, precision: Optional[str] = None, use_mkldnn: bool = True,
                 warmup: int = 1, weights=None, label_list=None, calib_images=None):
        from .pipeline import build_pipeline

        t0 = time.time()
        self.pipeline = build_pipeline(model, weights=weights, backend=backend, device=device, threads=threads,
                                       precision=precision, label_list=label_list, mkldnn=use_mkldnn, calib_images=calib_images,
                                       warmup=(1,) if warmup else ())
        src = self.pipeline.source
        self.directory = src.directory if src.directory is not None else None
        self.meta = self._manifest()
        self.load_seconds = time.time() - t0

    def _manifest(self) -> dict:
        if self.directory is None:
            return {}
        from ..models._package import MANIFEST

        f = Path(self.directory) / MANIFEST
        if not f.is_file():
            return {}
        import json

        return json.loads(f.read_text(encoding="utf-8"))

    @property
    def backend(self):
        return self.pipeline.backend

    @property
    def labels(self) -> List[str]:
        return self.pipeline.labels

    @property
    def input_size(self):
        return self.pipeline.input_size

    @property
    def preprocess_ops(self):
        return self.pipeline.preprocess_ops

    def preprocess(self, images, channel_order: str = "BGR") -> np.ndarray:
        """Inputs -> float32 NCHW batch (raises one ImageDecodeError naming every bad image)."""
        from ..errors import ImageDecodeError
        from .pipeline import PredictionError

        batch, errors = self.pipeline.prepare(images, channel_order)
        bad = [e for e in errors if isinstance(e, PredictionError)]
        if bad:
            raise ImageDecodeError(", ".join(e.source for e in bad), "; ".join(f"#{e.index}: {e.reason}" for e in bad))
        return batch

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW (already preprocessed) -> logits."""
        return self.pipeline.logits(batch)

    def predict(self, images, top_k: int = 1, batch_size: int = 8, *, channel_order: str = "BGR",
                on_error: str = "raise") -> list:
        """One ``{label: prob}`` dict per image, most probable first (as hub.Module.predict returns)."""
        return self.pipeline.predict(images, top_k=top_k, batch_size=batch_size, channel_order=channel_order,
                                     on_error=on_error)

    def __repr__(self):
        where = self.directory if self.directory is not None else self.pipeline.name
        return f"Predictor({str(where)!r}, {self.backend!r})"
