"""Writing programs: paddle.jit.save with a dynamic batch, and the paddle2onnx conversion.

Shared by export.py (``hubcls export``) and backends.py (the on-disk cache of programs a backend
runs), so neither imports the other.
"""
from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import List, Optional

from ..errors import ExportError
from ..models._package import PROGRAM
from ._quiet import quiet

ONNX_FILE = "model.onnx"
# Paddle builds a program from a dygraph model (jit.save / to_static) on process-wide state (its
# block stack, the IR guard): two threads exporting at once fail with "The block obtained before and
# after calling the static API ... is inconsistent" (seen with a background backend switch next to a
# foreground export). Every export and ONNX conversion (paddle2onnx loads programs and switches IR
# modes) in hubcls takes this lock; see also paddle_thread_ready.
EXPORT_LOCK = threading.RLock()
_THREAD = threading.local()


def paddle_thread_ready(paddle) -> None:
    """Call before a dygraph forward. Paddle makes a thread's eager state on the thread's first use,
    from a module global that a trace in another thread holds at None: a thread that first ran a
    forward during auto's background export stayed in static mode for good ("conv2d(): argument must
    be Value, but got EagerParamBase"; `hubcls serve` answered 500 to everything after). A new
    thread's first use therefore happens under EXPORT_LOCK (at most one trace's wait, once); forwards
    in a thread whose state is made run beside traces (the main thread's is made at import)."""
    if getattr(_THREAD, "ready", False) or threading.current_thread() is threading.main_thread():
        return
    with EXPORT_LOCK:
        paddle.in_dynamic_mode()  # reads the thread's state: made now, outside any trace
    _THREAD.ready = True


ONNX_INT8_FILE = "model_int8.onnx"
ONNX_OPSET = 13


def input_size_of(cfg, input_size=None):
    """(3, H, W): ``input_size`` (an int or (H, W) / (3, H, W)) when given, else the model's."""
    if input_size is not None:
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if len(size) == 1:
            size = (size[0], size[0])
        return (3, int(size[-2]), int(size[-1]))
    from ..models._package import input_size_of as of_cfg

    return of_cfg(cfg)


def save_inference_program(model, path_prefix, input_size, *, legacy_program: bool = False) -> None:
    """paddle.jit.save with a dynamic batch dimension: writes <prefix>.json + <prefix>.pdiparams.

    ``legacy_program``: also write <prefix>.pdmodel, the same program as a ProgramDesc (what Paddle
    2.x and PaddleHub's tools read). It is saved under Paddle's old-IR mode into a scratch folder and
    kept only when its parameter file is byte-identical to the one beside the .json, so both programs
    read the one <prefix>.pdiparams."""
    from .._paddle import import_paddle

    paddle = import_paddle()
    with EXPORT_LOCK:
        _save_program(paddle, tracing_copy(model), path_prefix, input_size, legacy_program)


def tracing_copy(model):
    """The model's layers copied with its parameters and buffers shared (no weight memory, ~15 ms for
    MobileNetV3). dy2static patches each layer's ``forward`` attribute while it traces it: tracing the
    very object another thread answers with sent that thread's forwards through converted code (a
    0.05 s first answer took 1.4 s beside auto's background export), and two threads patching and
    restoring the same attribute can leave a patch behind. A model deepcopy refuses is traced itself."""
    import copy

    shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    try:
        return copy.deepcopy(model, shared)
    except Exception:  # noqa: BLE001 - an exotic attribute; the trace then runs on the model itself
        return model


def _save_program(paddle, model, path_prefix, input_size, legacy_program: bool) -> None:
    _jit_save(paddle, model, str(path_prefix), input_size)
    if not any(Path(str(path_prefix) + ext).is_file() for ext in (".json", ".pdmodel")):
        raise ExportError(f"paddle.jit.save wrote no program {path_prefix}.json")
    if legacy_program and Path(str(path_prefix) + ".json").is_file():
        try:
            _save_legacy_program(paddle, model, Path(str(path_prefix)), input_size)
        except ExportError as exc:  # the .json program is complete on its own
            import warnings

            warnings.warn(f"{path_prefix}.pdmodel was not written ({exc}); {path_prefix}.json is the program",
                          stacklevel=2)


def _jit_save(paddle, model, path_prefix: str, input_size) -> None:
    was_training = model.training
    model.eval()
    spec = [paddle.static.InputSpec([None, *input_size], "float32", "x")]
    try:
        for attempt in range(2):
            try:
                with quiet():
                    paddle.jit.save(model, path_prefix, input_spec=spec)
                break
            except ValueError as exc:
                # dy2static writes the transformed forward to a temp module and imports it; under heavy
                # concurrent load that import was seen (rarely) to come back without the function.
                if attempt or "transformed from AST" not in str(exc):
                    raise
    except Exception as exc:  # noqa: BLE001 - to_static failures come in many types
        raise ExportError(f"paddle.jit.save failed for {type(model).__name__}: {exc}") from exc
    finally:
        if was_training:
            model.train()


def _save_legacy_program(paddle, model, prefix: Path, input_size) -> None:
    guard = getattr(getattr(paddle, "pir_utils", None), "OldIrGuard", None)
    if guard is None:  # a Paddle without PIR writes .pdmodel already
        return
    try:
        _legacy_into(paddle, guard, model, prefix, input_size)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - old-IR tracing fails in many types
        raise ExportError(f"Paddle could not write the old-IR program: {exc}") from exc


def _legacy_into(paddle, guard, model, prefix: Path, input_size) -> None:
    import filecmp
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix=".legacy-", dir=str(prefix.parent)) as tmp:
        scratch = Path(tmp) / "model"
        with guard(), _old_ir_sigmoid(paddle):
            _jit_save(paddle, model, str(scratch), input_size)
        pdmodel, params = scratch.with_suffix(".pdmodel"), scratch.with_suffix(".pdiparams")
        if not pdmodel.is_file() or not filecmp.cmp(params, str(prefix) + ".pdiparams", shallow=False):
            raise ExportError(f"{prefix}.pdmodel: the old-IR program's parameters differ from {prefix}.pdiparams; "
                              f"only {prefix}.json was written")
        shutil.move(str(pdmodel), str(prefix) + ".pdmodel")


@contextlib.contextmanager
def _old_ir_sigmoid(paddle):
    """Paddle 3.3's F.sigmoid calls the PIR op even while tracing an old-IR program (TypeError "must
    be Value, but got Variable"); under tracing this appends ProgramDesc's own "sigmoid" op (the same
    kernel) instead. Dygraph and PIR calls, from any thread, go to Paddle's function unchanged."""
    from paddle.base.layer_helper import LayerHelper

    F = paddle.nn.functional
    original = F.sigmoid

    def sigmoid(x, name=None):
        if paddle.in_dynamic_mode() or paddle.framework.in_pir_mode():
            return original(x, name)
        helper = LayerHelper("sigmoid", name=name)
        out = helper.create_variable_for_type_inference(x.dtype)
        helper.append_op(type="sigmoid", inputs={"X": x}, outputs={"Out": out})
        return out

    F.sigmoid = F.activation.sigmoid = sigmoid
    try:
        yield
    finally:
        F.sigmoid = F.activation.sigmoid = original


def program_files(directory, prefix: str = PROGRAM):
    """(model file, params file) of an inference program; .json (PIR) preferred over .pdmodel."""
    directory = Path(directory)
    for ext in (".json", ".pdmodel"):
        model_file = directory / f"{prefix}{ext}"
        if model_file.is_file():
            return model_file, directory / f"{prefix}.pdiparams"
    raise ExportError(f"no inference program {prefix}.json / {prefix}.pdmodel in {directory}")


def export_onnx(directory, prefix: str = PROGRAM, out_file: Optional[str] = None, opset: int = ONNX_OPSET) -> Path:
    """Convert an exported program to ONNX with paddle2onnx (no run-time package installs)."""
    try:
        import paddle2onnx
    except ImportError as exc:
        raise ExportError("ONNX export needs paddle2onnx: pip install 'hubcls[onnx]'") from exc
    model_file, params_file = program_files(directory, prefix)
    out = Path(out_file) if out_file else Path(directory) / ONNX_FILE
    if out.exists():
        out.unlink()
    # optimize_tool: "polygraphy" (the default) auto-installs onnx-graphsurgeon with pip when it is
    # missing, and onnxoptimizer's pass list in paddle2onnx 2.1 names a pass that does not exist; the
    # converter's own optimiser (enable_optimize) already folds what onnxruntime needs.
    options = dict(opset_version=opset, enable_onnx_checker=True, enable_optimize=True, optimize_tool="none")
    if threading.current_thread() is not threading.main_thread():
        _convert_in_child(model_file, params_file, out, options)
    else:
        try:
            with EXPORT_LOCK, quiet():  # it loads the program with paddle.jit.load and switches IR modes
                paddle2onnx.export(str(model_file), str(params_file), str(out), **options)
        except Exception as exc:  # noqa: BLE001 - paddle2onnx logs the cause and then fails on a NameError
            raise ExportError(f"paddle2onnx could not convert {model_file}: {exc} (run with --verbose to see its "
                              f"log)") from exc
    if not out.is_file():
        raise ExportError(f"paddle2onnx did not write {out} (run with --verbose to see its log)")
    if model_file.suffix == ".json":
        _fix_hardtanh_clips(model_file, out)
    return out


_CHILD_CONVERT = """
import json, sys
import paddle2onnx
paddle2onnx.export(sys.argv[1], sys.argv[2], sys.argv[3], **json.loads(sys.argv[4]))
"""


def _convert_in_child(model_file, params_file, out: Path, options: dict) -> None:
    """paddle2onnx in a child Python, for a conversion off the main thread (auto's background switch):
    its C++ part prints "[Paddle2ONNX] ..." lines straight to fd 1, which only the main thread may
    redirect (see quiet()), so in-process they landed in the middle of the user's own output. The child
    also keeps paddle2onnx's IR-mode switches out of this process. Costs a Python start (~2 s) in
    the background. --verbose (HUBCLS_VERBOSE=1) lets its output through."""
    import subprocess
    import sys

    from ._cancel import checkpoint
    from ._quiet import verbose

    checkpoint()  # a stop point at interpreter exit, as quiet() is for the in-process steps
    cmd = [sys.executable, "-c", _CHILD_CONVERT, str(model_file), str(params_file), str(out), json.dumps(options)]
    loud = verbose()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=not loud, text=True)
    if r.returncode != 0 or not out.is_file():
        tail = "" if loud else " | ".join((r.stderr or r.stdout or "").strip().splitlines()[-3:])[-600:]
        raise ExportError(f"paddle2onnx could not convert {model_file} (exit code {r.returncode}"
                          f"{': ' + tail if tail else ''}; run with --verbose to see its log)")


def _hardtanh_bounds(program_json) -> List[tuple]:
    """(t_min, t_max) of every pd_op.hardtanh in a PIR program, in program order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("#") == "1.hardtanh":
                attrs = {a.get("N"): (a.get("AT") or {}).get("D") for a in node.get("A", [])}
                found.append((float(attrs.get("t_min", -1.0)), float(attrs.get("t_max", 1.0))))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(Path(program_json).read_text()))
    return found


def _fix_hardtanh_clips(program_json, onnx_file) -> int:
    """paddle2onnx 2.1 converts pd_op.hardtanh to Clip(-1, 1) whatever its t_min/t_max (GhostNet's SE
    gate is hardtanh(0, 1): its ONNX logits were off by ~50). Put the program's bounds back."""
    bounds = _hardtanh_bounds(program_json)
    if not bounds or all(b == (-1.0, 1.0) for b in bounds):
        return 0
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_file))
    g = model.graph
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    consts.update({i.name: numpy_helper.to_array(i) for i in g.initializer})

    def hardtanh_index(clip):
        name, seen = clip.output[0], 0
        while seen < 8:  # Identity chains are short
            if name.startswith("p2o.pd_op.hardtanh."):
                return int(name.split(".")[3])
            nxt = [c for c in consumers.get(name, []) if c.op_type == "Identity"]
            if len(nxt) != 1:
                return None
            name, seen = nxt[0].output[0], seen + 1
        return None

    clips = [n for n in g.node if n.op_type == "Clip" and len(n.input) == 3
             and float(np.asarray(consts.get(n.input[1], np.nan))) == -1.0
             and float(np.asarray(consts.get(n.input[2], np.nan))) == 1.0]
    mapping = {}
    for clip in clips:
        k = hardtanh_index(clip)
        if k is not None and k < len(bounds):
            mapping[id(clip)] = (clip, bounds[k])
    if len(mapping) < len(bounds):
        if len(clips) != len(bounds):
            raise ExportError(f"paddle2onnx mis-converts hardtanh and the {len(bounds)} hardtanh ops could not be "
                              f"matched to the ONNX graph's Clip nodes ({len(clips)} candidates)")
        mapping = {id(c): (c, b) for c, b in zip(clips, bounds)}  # both in program order
    for j, (clip, (lo, hi)) in enumerate(mapping.values()):
        for slot, value in ((1, lo), (2, hi)):
            name = f"hubcls.hardtanh_fix.{j}.{slot}"
            g.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
            clip.input[slot] = name
    onnx.save(model, str(onnx_file))
    return len(mapping)
