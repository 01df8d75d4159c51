"""INT8 post-training quantisation, calibrated on real images.

Why onnxruntime's static quantiser and not ``paddle.quantization.PTQ`` (measured here with Paddle
3.3.1, paddle2onnx 2.1, see docs/deployment.md): the PTQ-converted model cannot be saved with a
dynamic batch under PIR (``create_persistable_value`` rejects shape -1), a fixed-batch PIR save fails
in Paddle Inference ("holder_ should not be null"), the old-IR save runs under oneDNN int8 but its
logits are wrong (max error ~ the logit range), and paddle2onnx rejects its quantize_linear ops
("Only support e4m3 or e5m2"). paddleslim 2.6 targets Paddle 2.x. onnxruntime's quantiser works on the
same paddle2onnx model every other backend is tested on: QDQ format, per-channel int8 weights, uint8
activations with ranges calibrated on N preprocessed images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError


def _onnx_quantization():
    try:
        from onnxruntime import quantization
    except ImportError as exc:
        raise BackendUnavailableError("INT8 quantisation needs onnxruntime + onnx: pip install 'hubcls[onnx]'") from exc
    return quantization


class _Reader:
    """CalibrationDataReader over a float32 NCHW array, a few images per call."""

    def __init__(self, input_name: str, batch: np.ndarray, step: int = 8):
        self.input_name = input_name
        self.batch = batch
        self.step = step
        self.pos = 0

    def get_next(self):
        if self.pos >= len(self.batch):
            return None
        chunk = self.batch[self.pos:self.pos + self.step]
        self.pos += self.step
        return {self.input_name: np.ascontiguousarray(chunk, dtype=np.float32)}

    def rewind(self):
        self.pos = 0


def quantize_onnx_int8(onnx_in, onnx_out, calib_batch: np.ndarray, *, method: str = "minmax", per_channel: bool = True) -> Path:
    """Statically quantise ``onnx_in`` to ``onnx_out`` with activation ranges from ``calib_batch``.

    ``calib_batch``: float32 (N, 3, H, W), already through the model's eval preprocessing.
    ``method``: "minmax" | "entropy" | "percentile" (onnxruntime's calibrators)."""
    import onnx

    q = _onnx_quantization()
    from ._quiet import quiet

    calib_batch = np.asarray(calib_batch, dtype=np.float32)
    if calib_batch.ndim != 4 or len(calib_batch) == 0:
        raise ValueError(f"calibration data must be a non-empty float32 NCHW batch, got shape {calib_batch.shape}")
    methods = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
               "percentile": q.CalibrationMethod.Percentile}
    if method not in methods:
        raise ValueError(f"method must be one of {sorted(methods)}, got {method!r}")
    onnx_out = Path(onnx_out)
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    input_name = onnx.load(str(onnx_in), load_external_data=False).graph.input[0].name
    pre = onnx_out.with_name(onnx_out.stem + ".pre.onnx")
    with quiet():
        # shape inference + graph optimisation first, as onnxruntime recommends for static quantisation
        q.quant_pre_process(str(onnx_in), str(pre), skip_symbolic_shape=True)
        q.quantize_static(
            str(pre), str(onnx_out), _Reader(input_name, calib_batch),
            quant_format=q.QuantFormat.QDQ, per_channel=per_channel,
            activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
            calibrate_method=methods[method],
        )
    pre.unlink(missing_ok=True)
    return onnx_out
