"""CPU inference: every runtime side by side with hubcls's ``auto``, in one process, on the same
exported model and the same real photos.

**Runtimes** (issue 16.3's target; always run): a float32 batch of real photos, already through the
model's eval preprocessing, in; logits out. Each runtime is built with its own API on the files
hubcls exported (the paddle2onnx ONNX file / the Paddle program), ``--threads`` threads:

* ``onnxruntime``   ``InferenceSession`` (ORT_ENABLE_ALL, intra-op threads, no spin-waiting)
* ``openvino:fp32`` ``Core().compile_model(onnx, "CPU", INFERENCE_PRECISION_HINT=f32, INFERENCE_NUM_THREADS)``
* ``openvino:bf16`` the same with bf16 (only on CPUs with AVX512-BF16/AMX)
* ``paddle:fp32``   Paddle Inference + oneDNN, math-library threads
* ``paddle:bf16``   the same + ``enable_mkldnn_bfloat16`` (only on CPUs with AVX512-BF16/AMX)
* ``int8``          (``--int8``) onnxruntime on hubcls's QDQ model calibrated on other photos; reported,
                    not one of the runtimes ``auto`` is compared with
* ``hubcls:auto``   the backend ``hub.Module(name, weights=...)`` chose (every candidate timed once,
                    bf16/INT8 only through the accuracy gate, whose figures are printed)

Per (model, batch): img/s at the p50 batch time, p50/p99 ms, and per contestant the top-1 agreement and
max |dprob| against onnxruntime fp32 on those photos; then ``auto / fastest runtime`` (target >= 0.9).

**End to end** (``--e2e``): uint8 images in, top-5 dicts out, preprocessing included:

* ``peer:paddlehub``  PaddleHub 2.x's dygraph module path: ``paddlehub.vision.transforms``
  (Resize(256,256) -> CenterCrop(224) -> Normalize, to_rgb) per image + ``ImageClassifierModule.predict``'s
  loop (np.array batch -> paddle.to_tensor -> forward -> softmax -> argsort). The transforms are PaddleHub's
  own code, loaded from the PaddleHub venv that tests/install_peers.sh builds (the loop is re-typed from
  paddlehub/module/cv_module.py because importing paddlehub pulls protobuf 3.20 into this process).
* ``peer:paddleclas`` PaddleClas 2.6's Python inference path (``paddleclas.deploy.python.predict_cls
  .ClsPredictor``: its preprocess ops + Paddle Inference with oneDNN + Topk postprocess) on the program
  hubcls exported.
* ``hubcls:<backend>`` ``hub.Module(...).predict`` with backend dygraph / auto (the default).

Each contestant runs --warmup untimed + --iters timed calls back to back; the sequence is repeated
--rounds times and each keeps its best round (the machine may be shared: the load average is printed).

    python benchmarks/bench_inference.py [--models MobileNetV3_large_x1_0,ResNet50_vd] [--batches 1,8]
        [--iters 10] [--threads N] [--weights informative|random|FILE] [--calib photos] [--int8] [--e2e]
        [--json out.json]

Weights: official ones cannot be downloaded here. ``informative`` (default) re-draws them so activations
and logits have sane scales (He-normal convs, unit BN statistics, logits with std ~1 on the photos:
tests/_deploy_helpers.informative_init); ``random`` keeps the untrained initialisation (logits of deep
untrained nets blow up, which makes any rounding flip the top-1); speed does not depend on the values,
the accuracy gate does.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PH_VENV = REPO / "build" / "peers" / "paddlehub-venv"


@contextlib.contextmanager
def captured_fds(sink: list):
    """Capture what C/C++ and Python print on fd 1/2 inside the block (to count log lines)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for s in saved:
                os.close(s)
            f.seek(0)
            sink.extend(ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip())


def paddlehub_transforms():
    """PaddleHub's own vision/transforms.py + functional.py, loaded by path from the PaddleHub venv."""
    sp = sorted(PH_VENV.glob("lib/python3*/site-packages/paddlehub/vision"))
    if not sp:
        return None
    vision = sp[0]
    for name in ("paddlehub", "paddlehub.vision"):
        sys.modules.setdefault(name, types.ModuleType(name))
    mods = {}
    for name in ("functional", "transforms"):
        spec = importlib.util.spec_from_file_location(f"paddlehub.vision.{name}", vision / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        setattr(sys.modules["paddlehub.vision"], name, mod)
        mods[name] = mod
    T = mods["transforms"]
    return T.Compose([T.Resize((256, 256)), T.CenterCrop(224),
                      T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])], to_rgb=True)


class PaddleHubStyle:
    """ImageClassifierModule.predict (PaddleHub 2.4 cv_module.py) around a dygraph network."""

    def __init__(self, model, transforms, labels):
        self.model, self.transforms, self.labels = model, transforms, labels

    def predict(self, images, batch_size=1, top_k=1):
        import paddle
        import paddle.nn.functional as F

        self.model.eval()
        with paddle.no_grad():
            res = []
            for it in range(int(np.ceil(len(images) / batch_size))):
                batch = []
                for j in range(batch_size):
                    try:
                        batch.append(self.transforms(images[it * batch_size + j]))
                    except Exception:  # noqa: BLE001 - as PaddleHub does (bare except)
                        pass
                preds = self.model(paddle.to_tensor(np.array(batch, dtype="float32")))
                preds = F.softmax(preds, axis=1).numpy()
                for i, pred in enumerate(np.argsort(preds)[:, ::-1][:, :top_k]):
                    res.append({self.labels[int(k)]: preds[i][k] for k in pred})
            return res


def paddleclas_predictor(export_dir, threads, batch, top_k=5):
    import paddle.inference
    from paddleclas.deploy.python.predict_cls import ClsPredictor
    from paddleclas.deploy.utils.config import AttrDict

    # PaddleClas calls config.enable_memory_optim(), which fails in Paddle 3.3.1's predictor creation
    # ("Not find predictor_id 0 and pass_name memory_optimize_pass"); skip just that call so the peer runs.
    paddle.inference.Config.enable_memory_optim = lambda self, *a, **k: None

    def ad(d):
        return AttrDict({k: ad(v) if isinstance(v, dict) else v for k, v in d.items()})

    cfg = ad({
        "Global": {"inference_model_dir": str(export_dir), "batch_size": batch, "use_gpu": False, "enable_mkldnn": True,
                   "cpu_num_threads": threads, "ir_optim": True, "use_tensorrt": False, "use_fp16": False,
                   "gpu_mem": 8000, "enable_profile": False, "benchmark": False},
        "PreProcess": {"transform_ops": [{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
                                         {"NormalizeImage": {"scale": 0.00392157, "mean": [0.485, 0.456, 0.406],
                                                             "std": [0.229, 0.224, 0.225], "order": ""}},
                                         {"ToCHWImage": None}]},
        "PostProcess": {"main_indicator": "Topk", "Topk": {"topk": top_k, "class_id_map_file": None}},
    })
    return ClsPredictor(cfg)


def time_calls(fn, warmup, iters, cpu=None):
    """Wall seconds of each timed call; ``cpu`` (a list) gets the process CPU seconds per call, which
    a shared machine disturbs less than wall time (spin-waiting threads do count)."""
    for _ in range(warmup):
        fn()
    lat = []
    c0 = time.process_time()
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)
    if cpu is not None:
        cpu.append((time.process_time() - c0) / iters)
    return np.asarray(lat)


def warm_start_subprocess(name, weights, home, backend="auto"):
    """Fresh interpreter: import + Module(...) on a cached program + first predict; returns seconds split."""
    code = (
        "import time; t0=time.time(); import numpy as np; import hubcls.hub as hub; t1=time.time();"
        f"m=hub.Module(name={name!r}, weights={str(weights)!r}, backend={backend!r}); t2=time.time();"
        "m.predict([np.zeros((300,400,3),np.uint8)]); t3=time.time();"
        "print('TIMES', t1-t0, t2-t1, t3-t2, m.runner.name if hasattr(m.runner,'name') else '?')"
    )
    env = dict(os.environ, HUBCLS_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("TIMES")]
    other = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip() and not ln.startswith("TIMES")
             and "ccache" not in ln and "warnings.warn" not in ln]
    if not line:
        return {"error": out.stderr[-500:]}
    _, imp, load, first, backend_used = line[0].split()
    return {"import_s": float(imp), "module_load_s": float(load), "first_predict_s": float(first),
            "backend": backend_used, "log_lines": len(other), "log_sample": other[:3]}


def _load_string():
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def runtime_contestants(export_dir: Path, threads: int, want_int8: bool):
    """name -> callable(float32 batch) -> logits, each runtime through its own API."""
    from hubcls.deploy.backends import cpu_bf16

    out, skipped = {}, {}
    onnx_file = export_dir / "model.onnx"
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # no spin-waiting between calls, as hubcls configures it: with ORT's default (spinning on) its idle
    # threads burn the CPU the next call and the other runtimes in this process need (measured here:
    # ~2x the CPU time per image at batch 1 on a shared 2-core machine)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(onnx_file), so, providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    out["onnxruntime"] = lambda x, sess=sess: sess.run(None, {iname: x})[0]
    bf16, why = cpu_bf16()
    try:
        import openvino as ov

        core = ov.Core()
        for prec, hint in (("fp32", "f32"), ("bf16", "bf16")):
            if prec == "bf16" and not bf16:
                skipped["openvino:bf16"] = why
                continue
            cm = core.compile_model(str(onnx_file), "CPU", {"INFERENCE_PRECISION_HINT": hint,
                                                            "INFERENCE_NUM_THREADS": threads})
            req = cm.create_infer_request()
            port = cm.output(0)
            out[f"openvino:{prec}"] = lambda x, req=req, port=port: req.infer({0: x})[port]
    except ImportError:
        skipped["openvino"] = "not installed (pip install 'hubcls[openvino]')"
    import paddle.inference as pi

    for prec in ("fp32", "bf16"):
        if prec == "bf16" and not bf16:
            skipped["paddle:bf16"] = why
            continue
        cfg = pi.Config(str(export_dir / "inference.json"), str(export_dir / "inference.pdiparams"))
        cfg.disable_gpu()
        cfg.enable_mkldnn()
        cfg.set_cpu_math_library_num_threads(threads)
        if prec == "bf16":
            cfg.enable_mkldnn_bfloat16()
        cfg.switch_ir_optim(True)
        cfg.disable_glog_info()
        pred = pi.create_predictor(cfg)
        ih = pred.get_input_handle(pred.get_input_names()[0])
        oh = pred.get_output_handle(pred.get_output_names()[0])

        def run(x, pred=pred, ih=ih, oh=oh):
            ih.reshape(list(x.shape))
            ih.copy_from_cpu(x)
            pred.run()
            return oh.copy_to_cpu()

        out[f"paddle:{prec}"] = run
    if want_int8:
        q = ort.InferenceSession(str(export_dir / "model_int8.onnx"), so, providers=["CPUExecutionProvider"])
        out["int8"] = lambda x, q=q: q.run(None, {iname: x})[0]
    return out, skipped


def report(name, mres, threads):
    """The runtime table and auto's ratios (wall img/s and CPU time per image) from one model's rows."""
    rows, rec = mres["rows"], mres.get("auto_record") or {}
    print(f"\n{name} ({threads} threads; accuracy vs onnxruntime fp32 on {mres.get('photos', '?')} photos)")
    print(f"{'contestant':<14} {'batch':>5} {'img/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/img':>10} "
          f"{'top-1 agr':>9} {'max|dprob|':>10}")
    for r in rows:
        print(f"{r['contestant']:<14} {r['batch']:>5} {r['img_per_s']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
              f"{r['cpu_ms_per_img']:>10.1f} {100 * r['top1_agree']:>8.1f}% {r['max_dprob']:>10.4f}")
    # the runtimes auto may use: fp32 ones, and reduced-precision ones whose gate passed in auto's record
    passed = {lab.replace("inference/", "paddle:").replace("/", ":") for lab, g in rec.get("gate", {}).items()
              if g["passed"]}
    for n in sorted({r["batch"] for r in rows}):
        by = {r["contestant"]: r for r in rows if r["batch"] == n}
        auto = by["hubcls:auto"]
        field = {k: r for k, r in by.items() if k not in ("hubcls:auto", "int8")}
        allowed = {k: r for k, r in field.items() if k == "onnxruntime" or k.endswith("fp32") or k in passed}
        out = {}
        for what, pool in (("", field), ("_gate_allowed", allowed)):
            wall = max(pool, key=lambda k: pool[k]["img_per_s"])
            cpu = min(pool, key=lambda k: pool[k]["cpu_ms_per_img"])
            out[what] = (wall, auto["img_per_s"] / pool[wall]["img_per_s"],
                         cpu, pool[cpu]["cpu_ms_per_img"] / auto["cpu_ms_per_img"])
            mres.update({f"batch{n}_fastest{what}": wall, f"batch{n}_auto_vs_fastest{what}": out[what][1],
                         f"batch{n}_cheapest_cpu{what}": cpu, f"batch{n}_auto_vs_cheapest_cpu{what}": out[what][3]})
        wall, r_wall, cpu, r_cpu = out[""]
        print(f"{name} batch {n}: auto ({mres['auto_choice']}) = {r_wall:.2f}x the fastest runtime by wall time "
              f"({wall}, {field[wall]['img_per_s']:.1f} img/s), {r_cpu:.2f}x by CPU time per image ({cpu}, "
              f"{field[cpu]['cpu_ms_per_img']:.1f} ms): by CPU time {'meets' if r_cpu >= 0.9 else 'below'} the "
              f">= 0.9x target, by wall time {'meets' if r_wall >= 0.9 else 'below'} it; against the runtimes the "
              f"gate allowed: {out['_gate_allowed'][1]:.2f}x / "
              f"{out['_gate_allowed'][3]:.2f}x", flush=True)


def run_model(name, args, home, threads, batches):
    import paddle

    import hubcls
    import hubcls.hub as hub
    from hubcls.deploy import export_model
    from hubcls.deploy.bench import sample_images
    from hubcls.deploy.gate import GateResult, accuracy_gate

    paddle.seed(0)
    model = hubcls.create_model(name)
    model.eval()
    photos = sample_images(max(batches) + 8)  # real photos (scikit-image / scikit-learn), cycled with crops
    from hubcls.data import eval_transforms_for
    from hubcls.models._weights import load_pretrained

    data = np.asarray(eval_transforms_for(model.pretrained_cfg).batch(photos), np.float32)
    if args.weights == "informative":
        sys.path.insert(0, str(REPO / "tests"))
        from _deploy_helpers import informative_init

        informative_init(model, seed=0, probe=data[:8])
    elif args.weights != "random":
        load_pretrained(model, args.weights)  # the restricted loader, any key scheme hubcls reads
    wfile = home / f"{name}.pdparams"
    paddle.save(model.state_dict(), str(wfile))
    mres = {"weights": args.weights, "load_before": os.getloadavg()}
    calib = None
    if args.calib == "photos":  # other crops of the photos than the timed batch
        calib = sample_images(48, seed=7)
    t = time.time()
    logs = []
    with captured_fds(logs):
        m_auto = hub.Module(name=name, weights=str(wfile), calib_images=calib)
    mres["auto_cold_s"] = time.time() - t
    runner = m_auto.runner
    rec = runner.auto_record or {}
    mres["auto_choice"] = f"{runner.name}/{runner.precision}"
    mres["auto_record"] = rec
    print(f"{name}: auto chose {runner.name}/{runner.precision} in {mres['auto_cold_s']:.1f} s (cold: export, "
          f"time every candidate, gate)", flush=True)
    for lab, sec in rec.get("seconds_per_batch", {}).items():
        print(f"   auto's probe  {lab:<18} " + "  ".join(f"b{b}: {1000 * s:7.1f} ms" for b, s in sec.items()))
    for g in rec.get("gate", {}).values():
        print("   " + GateResult(**g).line())
    for lab, why in rec.get("failed", {}).items():
        print(f"   candidate {lab} could not run: {why}")
    export_dir = home / f"export_{name}"
    with captured_fds(logs):
        export_model(model, export_dir, onnx=True,
                     int8_calib=np.asarray(eval_transforms_for(model.pretrained_cfg).batch(sample_images(32, seed=1)),
                                           np.float32) if args.int8 else None)
    runners, skipped = runtime_contestants(export_dir, threads, args.int8)
    for k, why in skipped.items():
        print(f"   {k}: skipped ({why})")
    runners["hubcls:auto"] = runner
    ref = runners["onnxruntime"](data)
    accuracy = {}
    for c, fn in runners.items():
        g = accuracy_gate(ref, np.asarray(fn(data)), c, f"{len(data)} photos")
        accuracy[c] = (g.top1_agreement, g.max_abs_dprob)
    rows = []
    for n in batches:
        x = np.ascontiguousarray(data[:n])
        best, best_cpu = {}, {}
        for _ in range(args.rounds):
            for c, fn in runners.items():
                time.sleep(0.5)  # let the previous runtime's worker threads park
                cpu = []
                lat = time_calls(lambda fn=fn, x=x: fn(x), args.warmup, args.iters, cpu)
                if c not in best or np.percentile(lat, 50) < np.percentile(best[c], 50):
                    best[c] = lat
                best_cpu[c] = min(best_cpu.get(c, np.inf), cpu[0])
        for c in runners:
            lat = best[c]
            p50 = float(np.percentile(lat, 50))
            rows.append({"contestant": c, "batch": n, "img_per_s": n / p50, "p50_ms": 1000 * p50,
                         "p99_ms": 1000 * float(np.percentile(lat, 99)), "cpu_ms_per_img": 1000 * best_cpu[c] / n,
                         "top1_agree": accuracy[c][0], "max_dprob": accuracy[c][1]})
    mres["rows"] = rows
    mres["load_after"] = os.getloadavg()
    mres["photos"] = len(data)
    report(name, mres, threads)
    return mres, model, wfile, m_auto


def e2e_section(name, model, wfile, m_auto, args, home, threads, batches, mres):
    """uint8 images in, top-5 out: PaddleHub's and PaddleClas's paths against hub.Module.predict."""
    import hubcls.hub as hub
    from hubcls.deploy import export_model
    from hubcls.deploy.bench import sample_images

    imgs_rgb = sample_images(max(batches) + 8)
    imgs_bgr = [np.ascontiguousarray(i[:, :, ::-1]) for i in imgs_rgb]
    labels = [str(i) for i in range(1000)]
    export_dir = home / f"export_{name}"
    if not (export_dir / "inference.json").is_file():
        export_model(model, export_dir, onnx=True)
    m_dy = hub.Module(name=name, weights=str(wfile), backend="dygraph")
    runners = {}
    ph_tf = paddlehub_transforms()
    if ph_tf is None:
        print(f"  peer:paddlehub: skipped (no PaddleHub venv at {PH_VENV}; run tests/install_peers.sh)")
    else:
        peer = PaddleHubStyle(model, ph_tf, labels)
        runners["peer:paddlehub"] = lambda n, peer=peer: peer.predict(imgs_bgr[:n], batch_size=n, top_k=5)
    try:
        preds = {n: paddleclas_predictor(export_dir, threads, n) for n in batches}
        runners["peer:paddleclas"] = lambda n, preds=preds: preds[n].predict([i.copy() for i in imgs_rgb[:n]])
    except Exception as exc:  # noqa: BLE001
        print(f"  peer:paddleclas: skipped ({type(exc).__name__}: {exc})")
    for what, mod in (("dygraph", m_dy), ("auto", m_auto)):
        runners[f"hubcls:{what}"] = lambda n, mod=mod: mod.predict(imgs_bgr[:n], batch_size=n, top_k=5)
    rows = []
    for n in batches:
        best = {}
        for _ in range(args.rounds):
            for c, fn in runners.items():
                time.sleep(0.5)
                lat = time_calls(lambda fn=fn, n=n: fn(n), args.warmup, args.iters)
                if c not in best or np.percentile(lat, 50) < np.percentile(best[c], 50):
                    best[c] = lat
        for c in runners:
            p50 = float(np.percentile(best[c], 50))
            rows.append({"contestant": c, "batch": n, "img_per_s": n / p50, "p50_ms": 1000 * p50,
                         "p99_ms": 1000 * float(np.percentile(best[c], 99))})
            print(f"{name:<24} e2e {c:<16} batch {n:>2}: {n / p50:8.1f} img/s  p50 {1000 * p50:8.1f} ms", flush=True)
        by = {r["contestant"]: r["img_per_s"] for r in rows if r["batch"] == n}
        for peer in ("peer:paddlehub", "peer:paddleclas"):
            if peer in by:
                mres[f"e2e_batch{n}_auto_vs_{peer.split(':')[1]}"] = by["hubcls:auto"] / by[peer]
    mres["e2e_rows"] = rows
    mres["warm_start_subprocess"] = warm_start_subprocess(name, wfile, home)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="MobileNetV3_large_x1_0,ResNet50_vd")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=2, help="repeat the contestant sequence; keep each one's best")
    ap.add_argument("--weights", default="informative", help="informative (default), random, or a .pdparams file")
    ap.add_argument("--calib", default=None, choices=("photos",),
                    help="give auto the real photos as calibration images (default: the shipped set, what a user gets)")
    ap.add_argument("--int8", action="store_true", help="also time hubcls's INT8 model (not a runtime auto is compared with)")
    ap.add_argument("--e2e", action="store_true", help="also the end-to-end section with PaddleHub / PaddleClas")
    ap.add_argument("--json", default=None)
    ap.add_argument("--from-json", default=None, help="print the tables and ratios of a saved --json run again")
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        for name, mres in saved["models"].items():
            report(name, mres, saved["machine"]["threads"])
        return

    home = Path(tempfile.mkdtemp(prefix="bench_inference_home_"))
    os.environ["HUBCLS_HOME"] = str(home)
    if args.threads:
        os.environ["HUBCLS_NUM_THREADS"] = str(args.threads)
    import paddle

    from hubcls.deploy.backends import cpu_bf16, default_threads

    threads = default_threads()
    batches = [int(b) for b in args.batches.split(",")]
    results = {"machine": {"cpus": len(os.sched_getaffinity(0)), "threads": threads, "python": sys.version.split()[0],
                           "paddle": paddle.__version__, "bf16": cpu_bf16()},
               "iters": args.iters, "warmup": args.warmup, "models": {}}
    print(f"threads={threads} (HUBCLS_NUM_THREADS / --threads), warm-up={args.warmup}, timed iterations={args.iters}, "
          f"rounds={args.rounds}; bf16: {cpu_bf16()[1]}; {_load_string()}", flush=True)
    for name in args.models.split(","):
        mres, model, wfile, m_auto = run_model(name, args, home, threads, batches)
        if args.e2e:
            e2e_section(name, model, wfile, m_auto, args, home, threads, batches, mres)
        results["models"][name] = mres
        print(json.dumps({name: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in mres.items()
                                 if k not in ("rows", "e2e_rows", "auto_record")}}, indent=1), flush=True)
    print(_load_string())
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
