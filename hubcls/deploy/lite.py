"""Paddle-Lite ``.nb`` export (mobile / ARM deployment) through the ``paddlelite`` package's opt tool.

paddlelite's last release (2.12, 2022) ships wheels for CPython <= 3.10 only, so on Python 3.11+ this
raises a clear error instead (checked: `pip install paddlelite` finds no distribution for 3.11). It
also predates Paddle 3's PIR programs: opt reads the old ``.pdmodel`` format, which hubcls writes with
``paddle.jit.save`` under Paddle's old-IR guard for this export.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import BackendUnavailableError

LITE_UNAVAILABLE = (
    "Paddle-Lite export needs the `paddlelite` package (its opt tool), which has no wheel for Python "
    f"{sys.version_info.major}.{sys.version_info.minor} (paddlelite 2.12 supports CPython <= 3.10). Use a Python 3.10 "
    "environment with `pip install paddlelite==2.12`, or run Paddle-Lite's `opt` binary on the program "
    "this command exports with --format paddle."
)


def export_lite(model, out_dir, *, input_size, valid_targets: str = "arm", name: str = "model") -> Path:
    """Write ``<out_dir>/<name>.nb`` with paddlelite's Opt (raises BackendUnavailableError without it)."""
    try:
        from paddlelite.lite import Opt  # noqa: WPS433
    except ImportError as exc:
        raise BackendUnavailableError(LITE_UNAVAILABLE) from exc
    from .._paddle import import_paddle
    from ._quiet import quiet

    paddle = import_paddle()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    spec = [paddle.static.InputSpec([None, *input_size], "float32", "x")]
    from ._program import EXPORT_LOCK, tracing_copy

    with EXPORT_LOCK, quiet(), paddle.pir_utils.DygraphOldIrGuard():  # opt reads .pdmodel, not PIR .json
        paddle.jit.save(tracing_copy(model), str(out / "lite_src"), input_spec=spec)
    opt = Opt()
    opt.set_model_file(str(out / "lite_src.pdmodel"))
    opt.set_param_file(str(out / "lite_src.pdiparams"))
    opt.set_valid_places(valid_targets)
    opt.set_model_type("naive_buffer")
    opt.set_optimize_out(str(out / name))
    with quiet():
        opt.run()
    nb = out / f"{name}.nb"
    if not nb.is_file():
        raise BackendUnavailableError(f"paddlelite opt wrote no {nb}")
    return nb
