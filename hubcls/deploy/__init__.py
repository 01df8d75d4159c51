"""hubcls.deploy: the one prediction pipeline (decode -> preprocess -> backend -> postprocess),
the inference backends, export (model package + Paddle inference program, ONNX, INT8), Predictor.

    from hubcls.deploy import export_model, Predictor, build_pipeline
    export_model(hubcls.create_model("ResNet50_vd", pretrained=True), "out/r50")
    Predictor("out/r50").predict(["cat.jpg"], top_k=5)

Heavy submodules import on first attribute access.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "export_model": "hubcls.deploy.export",
    "export_onnx": "hubcls.deploy.export",
    "read_export": "hubcls.deploy.export",
    "ExportError": "hubcls.errors",
    "Predictor": "hubcls.deploy.predictor",
    "PredictionPipeline": "hubcls.deploy.pipeline",
    "PredictionError": "hubcls.deploy.pipeline",
    "build_pipeline": "hubcls.deploy.pipeline",
    "softmax": "hubcls.deploy.postprocess",
    "topk": "hubcls.deploy.postprocess",
    "unique_labels": "hubcls.deploy.postprocess",
    "Backend": "hubcls.deploy.backends",
    "BACKENDS": "hubcls.deploy.backends",
    "BackendUnavailableError": "hubcls.errors",
    "available_backends": "hubcls.deploy.backends",
    "auto_backend": "hubcls.deploy.backends",
    "load_backend": "hubcls.deploy.backends",
    "backend_from_export": "hubcls.deploy.backends",
    "quantize_onnx_int8": "hubcls.deploy.quant",
    "export_lite": "hubcls.deploy.lite",
    "set_verbose": "hubcls.deploy._quiet",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
