"""The inference backend layer: selection (argument > HUBCLS_BACKEND > auto), the on-disk program
cache (keyed by weights + versions, atomic, never stale), threads, quiet logs, warm start (issue 10)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import hubcls  # noqa: E402
from hubcls.deploy import _cache  # noqa: E402
from hubcls.deploy import backends as B  # noqa: E402
from hubcls.errors import ConfigError  # noqa: E402

HAS_ORT = B._has_module("onnxruntime") and B._has_module("paddle2onnx")
SIZE = (3, 64, 64)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HUBCLS_BACKEND", raising=False)
    monkeypatch.delenv("HUBCLS_NUM_THREADS", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def model():
    paddle.seed(1)
    m = hubcls.create_model("ResNet18")
    m.eval()
    return m


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).standard_normal((3, *SIZE)).astype(np.float32)


def test_backend_choice_argument_over_env_over_auto(home, monkeypatch):
    auto = B.auto_backend("cpu")
    assert auto == ("onnxruntime" if HAS_ORT else "inference")
    assert B.resolve_backend_name(None, "cpu") == auto
    monkeypatch.setenv("HUBCLS_BACKEND", "dygraph")
    assert B.resolve_backend_name(None, "cpu") == "dygraph"
    assert B.resolve_backend_name("auto", "cpu") == "dygraph"  # env sets what "auto" means for this process
    assert B.resolve_backend_name("inference", "cpu") == "inference"  # an explicit argument wins
    assert B.resolve_backend_name("ORT", "cpu") == "onnxruntime"  # aliases, case-insensitive
    monkeypatch.setenv("HUBCLS_BACKEND", "tensorflow")
    with pytest.raises(ConfigError, match="tensorflow"):
        B.resolve_backend_name(None, "cpu")
    with pytest.raises(ConfigError, match="backend must be one of"):
        B.resolve_backend_name("nope", "cpu")


def test_available_backends_and_devices(home):
    avail = B.available_backends("cpu")
    assert set(avail) == set(B.backend_names()) >= {"dygraph", "inference", "onnxruntime", "int8"}
    assert avail["dygraph"][0] and avail["inference"][0]
    with pytest.raises(ConfigError, match="device must be"):
        B.resolve_device("tpu")
    if not B._gpu_available():
        with pytest.raises(B.BackendUnavailableError, match="no CUDA GPU"):
            B.resolve_device("gpu")


def test_threads_default_env_and_errors(home, monkeypatch):
    assert B.default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("HUBCLS_NUM_THREADS", "1")
    assert B.default_threads() == 1
    monkeypatch.setenv("HUBCLS_NUM_THREADS", "zero")
    with pytest.raises(ConfigError, match="HUBCLS_NUM_THREADS"):
        B.default_threads()


@pytest.mark.parametrize("backend", ["inference"] + (["onnxruntime"] if HAS_ORT else []))
def test_load_backend_caches_program_and_warm_start_skips_the_model(home, model, batch, backend):
    ref = B.DygraphBackend(model)(batch)
    be = B.load_backend(backend, model=model, name="r18", input_size=SIZE, threads=1)
    assert be.name == backend and be.threads == 1 and be.warmup_runs == 1
    np.testing.assert_allclose(be(batch), ref, atol=1e-4)
    entries = sorted(p.name for p in (home / "deploy").iterdir() if p.is_dir())
    assert any(e.startswith("r18-inference-") for e in entries)

    def no_build():
        raise AssertionError("a cached program must not rebuild the model")

    wid = _cache.weights_hash_of_model(model)
    t = time.time()
    warm = B.load_backend(backend, model_fn=no_build, name="r18", weights_id=wid, input_size=SIZE, threads=1)
    warm_s = time.time() - t
    np.testing.assert_allclose(warm(batch), ref, atol=1e-4)
    print(f"{backend}: warm start {warm_s:.2f}s")
    assert sorted(p.name for p in (home / "deploy").iterdir() if p.is_dir()) == entries  # nothing new exported


def test_cache_key_changes_with_weights_and_versions(home, model, monkeypatch):
    size = SIZE
    k1 = _cache.cache_key("r18", "aaaa", "inference", size)
    assert _cache.cache_dir_for(k1) == _cache.cache_dir_for(_cache.cache_key("r18", "aaaa", "inference", size))
    assert _cache.cache_dir_for(k1) != _cache.cache_dir_for(_cache.cache_key("r18", "bbbb", "inference", size))
    assert _cache.cache_dir_for(k1) != _cache.cache_dir_for(_cache.cache_key("r18", "aaaa", "inference", (3, 32, 32)))
    assert _cache.cache_dir_for(k1) != _cache.cache_dir_for(_cache.cache_key("r18", "aaaa", "onnx", size))
    # a new Paddle / hubcls version never reuses an old program
    real = _cache.tool_versions
    monkeypatch.setattr(_cache, "tool_versions", lambda kind: {**real(kind), "paddle": "9.9.9"})
    assert _cache.cache_dir_for(k1) != _cache.cache_dir_for(_cache.cache_key("r18", "aaaa", "inference", size))
    # the weights hash follows the values
    w1 = _cache.weights_hash_of_model(model)
    m2 = hubcls.create_model("ResNet18")
    m2.set_state_dict(model.state_dict())
    assert _cache.weights_hash_of_model(m2) == w1
    p = next(iter(m2.parameters()))
    p.set_value(p.numpy() + 1e-3)
    assert _cache.weights_hash_of_model(m2) != w1


def test_cache_entry_is_atomic(home):
    key = _cache.cache_key("broken", "w", "inference", SIZE)

    def fails(tmp):
        (tmp / "half_written").write_text("x")
        raise RuntimeError("export crashed")

    with pytest.raises(RuntimeError, match="export crashed"):
        _cache.cached(key, fails)
    target = _cache.cache_dir_for(key)
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.is_dir()]  # no temp dir left behind
    calls = []
    d = _cache.cached(key, lambda tmp: calls.append((tmp / "ok").write_text("1")))
    d2 = _cache.cached(key, lambda tmp: calls.append("again"))
    assert d == d2 and (d / "ok").read_text() == "1" and len(calls) == 1


def test_file_hash_is_content_based(home, tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 100)
    h1 = _cache.weights_hash_of_file(f)
    assert _cache.weights_hash_of_file(f) == h1
    f.write_bytes(b"b" * 101)
    assert _cache.weights_hash_of_file(f) != h1


def test_backend_rejects_bad_batches(home, model):
    be = B.DygraphBackend(model)
    with pytest.raises(ValueError, match="float32 NCHW"):
        be(np.zeros((1, 3, 8, 8), np.float64))
    with pytest.raises(ValueError, match="float32 NCHW"):
        be(np.zeros((3, 8, 8), np.float32))


def test_the_pipeline_backend_is_the_hub_seam(home, model, batch):
    from hubcls.deploy.pipeline import build_pipeline

    pipe = build_pipeline("ResNet18", weights="random", dygraph_model=model, backend="inference", threads=1)
    assert pipe.input_size == (3, 224, 224) and pipe.backend.describe()["onednn"] is True
    x = np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype(np.float32)
    np.testing.assert_allclose(pipe.logits(x), B.DygraphBackend(model)(x), atol=1e-4)


def test_the_registry_is_the_dispatch(home, model, batch, monkeypatch):
    """Adding a backend is one class: registered, it is listed, resolvable, and loadable by name."""
    from hubcls.registry import Registry

    reg = Registry("inference backend")  # this test's copy, so the class does not outlive it
    for name, cls in B.BACKENDS.items():
        reg.register(cls, name=name)
    monkeypatch.setattr(B, "BACKENDS", reg)

    @reg.register(name="scaled")
    class Scaled(B.Backend):
        name = "scaled"
        aliases = ("times2",)

        def __init__(self, model, **kw):
            super().__init__(**kw)
            self.inner = B.DygraphBackend(model)

        @classmethod
        def from_model(cls, artifacts, *, device, threads, precision, **options):
            return cls(artifacts.model(), device=device, threads=threads)

        def run(self, x):
            return 2 * self.inner(x)

    assert "scaled" in B.backend_names() and B.available_backends("cpu")["scaled"][0]
    assert B.resolve_backend_name("TIMES2", "cpu") == "scaled"
    be = B.load_backend("times2", model=model, input_size=SIZE, threads=1)
    np.testing.assert_allclose(be(batch), 2 * B.DygraphBackend(model)(batch), rtol=1e-6)
    with pytest.raises(ConfigError, match="does not run an export"):
        B.backend_from_export(home, "scaled")


@pytest.mark.skipif(not HAS_ORT, reason="needs onnxruntime + paddle2onnx")
def test_int8_backend_needs_calibration_and_caches_per_calibration(home, model, batch):
    with pytest.raises(ConfigError, match="calibration"):
        B.load_backend("int8", model=model, name="r18", input_size=SIZE)
    be = B.load_backend("int8", model=model, name="r18", input_size=SIZE, threads=1, calib_data=lambda: batch)
    assert be.name == "int8" and be.precision == "int8"
    assert be(batch).shape == (3, 1000)
    assert any(p.name.startswith("r18-int8-onnx-") for p in (home / "deploy").iterdir())


def _hubcls(*args, env=None):
    e = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "hubcls", *args], capture_output=True, text=True, env=e, timeout=600)


@pytest.mark.skipif(not HAS_ORT, reason="needs onnxruntime + paddle2onnx")
def test_export_cli_is_quiet_and_verbose_shows_paddle_logs(tmp_path):
    env = {"HUBCLS_HOME": str(tmp_path / "home")}
    out = _hubcls("export", "-m", "MobileNetV3_small_x0_35", "--random", "--output", str(tmp_path / "e"), "--onnx",
                  "--input-size", "64", "--check", env=env)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    # only hubcls's own lines: the export summary and one check line per backend
    assert len(lines) == 3, lines
    assert lines[0].startswith("exported MobileNetV3_small_x0_35 (3x64x64 input, dynamic batch, 1000 classes)")
    assert all(ln.startswith("check ") for ln in lines[1:])
    for ln in lines[1:]:
        assert float(ln.rsplit("=", 1)[1]) <= 1e-4
    loud = _hubcls("--verbose", "export", "-m", "MobileNetV3_small_x0_35", "--random", "--output", str(tmp_path / "v"),
                   "--onnx", "--input-size", "64", env=env)
    assert loud.returncode == 0, loud.stderr
    assert "Paddle2ONNX" in loud.stdout + loud.stderr  # the converter's own log, shown on request


def test_export_cli_errors(tmp_path):
    both = _hubcls("export", "-m", "ResNet18", "-c", "x.yaml", "--output", str(tmp_path / "o"))
    assert both.returncode == 2 and "exactly one of -c CONFIG or -m MODEL" in both.stderr
    lite = _hubcls("export", "-m", "MobileNetV3_small_x0_35", "--random", "--format", "lite", "--output", str(tmp_path / "l"))
    if not B._has_module("paddlelite"):
        assert lite.returncode == 2 and "paddlelite" in lite.stderr and "Python" in lite.stderr


@pytest.mark.skipif(not HAS_ORT, reason="needs onnxruntime + paddle2onnx")
def test_bench_cli_table_and_json(tmp_path):
    js = tmp_path / "b.json"
    bf16 = B._has_module("openvino") and B.cpu_bf16()[0]
    backends = "dygraph,onnxruntime" + (",openvino:bf16" if bf16 else "")
    out = _hubcls("bench", "-m", "MobileNetV3_small_x0_35", "--batch", "1,2", "--backend", backends,
                  "--threads", "1", "--warmup", "1", "--iters", "2", "--json", str(js),
                  env={"HUBCLS_HOME": str(tmp_path / "home")})
    assert out.returncode == 0, out.stderr
    assert "threads=1" in out.stdout and "warm-up=1" in out.stdout
    assert "p50 ms" in out.stdout and "img/s" in out.stdout
    res = json.loads(js.read_text())
    rows = [(r["backend"], r["batch"]) for r in res["rows"]]
    assert rows == [("dygraph", 1), ("dygraph", 2), ("onnxruntime", 1), ("onnxruntime", 2)] + (
        [("openvino:bf16", 1), ("openvino:bf16", 2)] if bf16 else [])
    for r in res["rows"]:
        assert r["p90_ms"] >= r["p50_ms"] > 0 and r["img_per_s"] > 0
        if r["backend"] != "openvino:bf16":
            assert r["max_abs_diff"] <= 1e-4 and r["top1_agree"] == 1.0
        else:  # bf16 really runs in bf16: close, not equal
            assert 0 < r["max_abs_diff"] < 1.0


@pytest.mark.skipif(not HAS_ORT, reason="needs onnxruntime + paddle2onnx")
def test_auto_measures_every_candidate_once_gates_reduced_precision_and_remembers(home, model, batch):
    """Real backends: every available (backend, precision) candidate is timed, a reduced-precision
    choice has passed the gate - re-checked here on the same calibration images -, and the choice is
    the best-ranked candidate within AUTO_TOLERANCE of the fastest that may be used."""
    from hubcls.deploy.gate import MAX_DPROB, TOP1_MIN, accuracy_gate, preprocess_images, shipped_images

    be = B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1)
    choices = list((home / "deploy").glob("r18-auto-choice-*/choice.json"))
    assert len(choices) == 1
    rec = json.loads(choices[0].read_text())
    assert rec == be.auto_record
    expected = [f"{n}/{p}" for n, p in B.auto_candidates("cpu")]
    assert rec["candidates"] == expected and "onnxruntime/fp32" in expected and "int8/int8" not in expected
    assert set(rec["seconds_per_batch"]) | set(rec["failed"]) == set(expected)
    label = f"{be.name}/{be.precision}"
    assert rec["choice"] == {"backend": be.name, "precision": be.precision}
    usable = [c for c in rec["slowdown_vs_fastest"] if c.endswith("/fp32") or rec["gate"].get(c, {}).get("passed")]
    assert rec["slowdown_vs_fastest"][label] <= min(rec["slowdown_vs_fastest"][c] for c in usable) / B.AUTO_TOLERANCE
    for g in rec["gate"].values():
        assert g["passed"] == (g["top1_agreement"] >= TOP1_MIN and g["max_abs_dprob"] <= MAX_DPROB) and g["images"] == 32
    x = preprocess_images(shipped_images(), model.pretrained_cfg, SIZE)
    ref = B.DygraphBackend(model)(x)
    if be.precision == "fp32":
        np.testing.assert_allclose(be(batch), B.DygraphBackend(model)(batch), atol=1e-4)
    else:
        assert rec["gate"][label]["passed"] and accuracy_gate(ref, be(x)).passed
    if B.cpu_bf16()[0] and B._has_module("openvino"):
        assert "openvino/bf16" in expected and "inference/bf16" in expected

    def no_build():
        raise AssertionError("warm start must not rebuild the model")

    again = B.load_backend(None, model_fn=no_build, name="r18", weights_id=_cache.weights_hash_of_model(model),
                           input_size=SIZE, threads=1)
    assert (again.name, again.precision) == (be.name, be.precision)
    assert len([p for p in (home / "deploy").glob("r18-auto-choice-*") if p.is_dir()]) == 1
    exact = B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1, precision="fp32")
    assert exact.precision == "fp32"
    np.testing.assert_allclose(exact(batch), B.DygraphBackend(model)(batch), atol=1e-4)


# --------------------------------------------------------------------------- reduced precision + the gate
def test_accuracy_gate_figures_and_thresholds():
    from hubcls.deploy.gate import MAX_DPROB, TOP1_MIN, accuracy_gate
    from hubcls.deploy.postprocess import softmax

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((100, 10)) * 3
    g = accuracy_gate(ref, ref, "same")
    assert g.passed and g.top1_agreement == 1.0 and g.max_abs_dprob == 0.0 and g.images == 100
    flipped = ref.copy()
    top = ref.argmax(1)
    flipped[0, top[0]] -= 100  # one image's top-1 moves elsewhere: 99% agreement still passes on probabilities?
    g = accuracy_gate(ref, flipped)
    assert g.top1_agreement == 0.99 and g.max_abs_dprob == pytest.approx(softmax(ref)[0].max(), rel=1e-6)
    assert not g.passed  # its probability moved by far more than MAX_DPROB
    # small logit noise: agreement stays, |dprob| is measured exactly
    noisy = ref + rng.normal(0, 1e-3, ref.shape)
    g = accuracy_gate(ref, noisy)
    expect = np.abs(softmax(ref) - softmax(noisy)).max()
    assert g.max_abs_dprob == pytest.approx(expect) and g.passed == (expect <= MAX_DPROB)
    assert TOP1_MIN == 0.99 and MAX_DPROB == 0.02
    assert not accuracy_gate(ref, np.full_like(ref, np.nan)).passed
    with pytest.raises(ValueError):
        accuracy_gate(ref, ref[:5])
    assert "top-1 agreement 100.0%" in accuracy_gate(ref, ref, "x/bf16").line()


def test_auto_rejects_a_fast_wrong_candidate_and_takes_a_fast_close_one(home, model, monkeypatch):
    """The selection rule on three registered test backends with known speeds and errors: the fastest
    (bf16, wrong answers) fails the gate and is never used, the next (bf16, tiny error) passes and wins
    over the slow exact fp32 one; figures are in the cached record; precision='fp32' keeps fp32."""
    from hubcls.registry import Registry

    reg = Registry("inference backend")
    reg.register(B.DygraphBackend, name="dygraph")  # auto's last fallback
    monkeypatch.setattr(B, "BACKENDS", reg)

    _answers = {}

    class _Test(B.Backend):
        delay, noise, auto_rank = 0.0, 0.0, {}

        def __init__(self, model, precision, **kw):
            super().__init__(**kw)
            self.inner, self.precision = B.DygraphBackend(model), precision

        @classmethod
        def from_model(cls, artifacts, *, device, threads, precision, **options):
            return cls(artifacts.model(), precision, device=device, threads=threads)

        def forward(self, x):  # the model's answer, computed once per input: the timed speed is the delay's
            key = (x.shape, hash(x.tobytes()))
            if key not in _answers:
                _answers[key] = self.inner(x)
            return _answers[key]

        def run(self, x):
            out = self.forward(x)
            time.sleep(self.delay)
            if self.noise:  # deterministic per input: a reversed class order is a wrong model
                out = out[:, ::-1] * self.noise
            return np.ascontiguousarray(out)

    @reg.register(name="exact")
    class Exact(_Test):
        name, delay, auto_rank = "exact", 0.25, {"cpu": 0}

    @reg.register(name="close")
    class Close(_Test):
        name, delay, auto_rank = "close", 0.05, {"cpu": 1}

        @classmethod
        def auto_precisions(cls, device):
            return ("bf16",)

        def run(self, x):
            time.sleep(self.delay)
            return self.forward(x) + np.float32(1e-3)  # a shift leaves softmax unchanged: passes the gate

    @reg.register(name="wrong")
    class Wrong(_Test):
        name, delay, noise, auto_rank = "wrong", 0.0, 1.0, {"cpu": 2}

        @classmethod
        def auto_precisions(cls, device):
            return ("bf16",)

    assert B.auto_candidates("cpu") == [("exact", "fp32"), ("close", "bf16"), ("wrong", "bf16")]
    be = B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1, warmup=())
    assert (be.name, be.precision) == ("close", "bf16")
    rec = be.auto_record
    assert rec["gate"]["wrong/bf16"]["passed"] is False and rec["gate"]["close/bf16"]["passed"] is True
    assert rec["gate"]["close/bf16"]["top1_agreement"] == 1.0 and rec["gate"]["close/bf16"]["images"] == 32
    assert rec["gate"]["wrong/bf16"]["top1_agreement"] < 0.99
    assert "wrong/bf16" not in rec["slowdown_vs_fastest"]  # gated out before the choice
    assert rec["seconds_per_batch"]["exact/fp32"]["8"] >= 0.25
    exact = B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1, warmup=(), precision="fp32")
    assert (exact.name, exact.precision) == ("exact", "fp32")
    monkeypatch.setenv("HUBCLS_PRECISION", "fp32")
    assert B.load_backend(None, model=model, name="r18", input_size=SIZE, threads=1, warmup=()).name == "exact"


def test_auto_gate_runs_on_the_users_images(home, model, monkeypatch, tmp_path):
    """calib_images (or HUBCLS_CALIB_IMAGES) replaces the shipped set: another cached choice, its
    description names the folder; an empty folder is a clear error."""
    import cv2

    from hubcls.deploy.gate import shipped_images
    from hubcls.errors import ConfigError as CE

    folder = tmp_path / "mine"
    folder.mkdir()
    for i, im in enumerate(shipped_images(6, seed=5)):
        cv2.imwrite(str(folder / f"{i}.jpg"), im[:, :, ::-1])
    from hubcls.registry import Registry

    reg = Registry("inference backend")
    reg.register(B.DygraphBackend, name="dygraph")  # auto's last fallback
    monkeypatch.setattr(B, "BACKENDS", reg)

    @reg.register(name="exact")
    class Exact(B.DygraphBackend):
        name, auto_rank = "exact", {"cpu": 0}

    @reg.register(name="half")
    class Half(B.DygraphBackend):
        name, auto_rank = "half", {"cpu": 1}

        @classmethod
        def auto_precisions(cls, device):
            return ("bf16",)

        @classmethod
        def from_model(cls, artifacts, *, device, threads, precision, **options):
            b = cls(artifacts.model(), device=device, threads=threads)
            b.precision = precision
            return b

        def run(self, x):  # bf16-rounded input: a real reduced-precision error
            x16 = (x.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
            return super().run(np.ascontiguousarray(x16))

    be = B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1, warmup=(), calib_images=folder)
    rec = be.auto_record
    assert "6 images from" in rec["calibration"] and str(folder) in rec["calibration"]
    if "half/bf16" in rec["gate"]:
        assert rec["gate"]["half/bf16"]["images"] == 6
    monkeypatch.setenv("HUBCLS_CALIB_IMAGES", str(folder))
    B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1, warmup=())
    B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1, warmup=(), calib_images=None)
    monkeypatch.delenv("HUBCLS_CALIB_IMAGES")
    B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1, warmup=())  # shipped set
    assert len(list((home / "deploy").glob("r18-auto-choice-*/choice.json"))) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(CE, match="none found"):
        B.load_backend("auto", model=model, name="r18", input_size=SIZE, calib_images=tmp_path / "empty")


def test_bf16_only_where_the_cpu_has_it(home, model, monkeypatch):
    monkeypatch.setattr(B, "cpu_bf16", lambda: (False, "this CPU has neither AVX512-BF16 nor AMX-BF16"))
    cands = B.auto_candidates("cpu")
    assert all(p == "fp32" for _, p in cands)
    with pytest.raises(B.BackendUnavailableError, match="AVX512-BF16"):
        B.load_backend("inference", model=model, name="r18", input_size=SIZE, precision="bf16")
    if B._has_module("openvino") and HAS_ORT:
        with pytest.raises(B.BackendUnavailableError, match="AVX512-BF16"):
            B.load_backend("openvino", model=model, name="r18", input_size=SIZE, precision="bf16")
    with pytest.raises(ConfigError, match="onnxruntime runs fp32"):
        B.OnnxRuntimeBackend("x.onnx", precision="bf16")
    with pytest.raises(ConfigError, match="precision must be"):
        B.load_backend("auto", model=model, name="r18", input_size=SIZE, precision="fp8")


def test_int8_joins_auto_only_with_the_users_calibration_images():
    if not HAS_ORT:
        pytest.skip("needs onnxruntime + paddle2onnx")
    assert ("int8", "int8") not in B.auto_candidates("cpu")
    assert ("int8", "int8") in B.auto_candidates("cpu", calibrated=True)
    assert B.auto_backend("cpu") == "onnxruntime"  # the static order never names a reduced-precision backend


@pytest.mark.skipif(not (HAS_ORT and B._has_module("openvino")), reason="needs openvino + paddle2onnx")
def test_openvino_backend_matches_dygraph_and_bf16_is_close(home, model, batch):
    ov = B.load_backend("openvino", model=model, name="r18", input_size=SIZE, threads=1)
    assert ov.describe()["precision"] == "fp32" and B.resolve_backend_name("OV", "cpu") == "openvino"
    ref = B.DygraphBackend(model)(batch)
    np.testing.assert_allclose(ov(batch), ref, atol=1e-4)
    assert ov(batch[:1]).shape == (1, 1000)  # dynamic batch
    if not B.cpu_bf16()[0]:
        pytest.skip("this CPU has no AVX512-BF16/AMX: bf16 is not offered")
    for name in ("openvino", "inference"):
        b16 = B.load_backend(name, model=model, name="r18", input_size=SIZE, threads=1, precision="bf16")
        assert b16.precision == "bf16"
        out = b16(batch)
        # bf16 keeps 8 mantissa bits: close to fp32 but not equal (it really runs in bf16)
        assert 0 < np.abs(out - ref).max() < 0.05 * np.abs(ref).max()


def test_cli_precision_and_calib_flags_set_what_every_call_site_reads(monkeypatch, tmp_path):
    from hubcls.cli import build_parser

    for var in ("HUBCLS_PRECISION", "HUBCLS_CALIB_IMAGES"):  # recorded, so the flags' values are undone after
        monkeypatch.setenv(var, "")
    args = build_parser().parse_args(["infer", "x.jpg", "-m", "ResNet18", "--precision", "fp32", "--calib", str(tmp_path)])
    assert args.precision == "fp32" and os.environ["HUBCLS_PRECISION"] == "fp32"
    assert os.environ["HUBCLS_CALIB_IMAGES"] == str(tmp_path)


def test_calibration_folder_is_capped_and_spread_over_classes(tmp_path):
    import cv2

    from hubcls.deploy.gate import calibration_source, images_from_folder

    for c in ("a", "b", "c"):
        (tmp_path / c).mkdir()
        for i in range(5):
            img = np.full((8, 8, 3), {"a": 10, "b": 120, "c": 240}[c] + i, np.uint8)
            cv2.imwrite(str(tmp_path / c / f"{i}.png"), img)
    picked = images_from_folder(tmp_path, 3)
    assert sorted(int(im[0, 0, 0]) // 100 for im in picked) == [0, 1, 2]  # one per class folder, not a's first 3
    imgs, cid, desc = calibration_source(tmp_path, 4)
    assert len(imgs) == 4 and cid.startswith("user-") and "4 images from" in desc
    assert calibration_source(tmp_path, 4)[1] == cid  # the id is the content's
    assert len(calibration_source(tmp_path)[0]) == 15


def test_quiet_in_a_background_thread_never_swallows_the_users_output():
    """auto exports in a background thread while the Module answers: what the user's code prints
    meanwhile must reach the terminal (fd 1/2 are the process's; the main thread keeps them silenced
    for its own native steps)."""
    code = textwrap.dedent("""
        import os, threading
        from hubcls.deploy._quiet import quiet
        inside, done = threading.Event(), threading.Event()
        def background():
            with quiet():
                os.write(1, b"NATIVE-BACKGROUND\\n")  # a C++ line may get through: the lesser harm
                inside.set()
                done.wait(30)
        t = threading.Thread(target=background)
        t.start()
        assert inside.wait(30)
        print("USER-LINE", flush=True)
        os.write(2, b"USER-ERR\\n")
        done.set()
        t.join()
        with quiet():
            os.write(1, b"NATIVE-MAIN\\n")  # the main thread still silences native output
        print("END", flush=True)
    """)
    env = dict(os.environ)
    env.pop("HUBCLS_VERBOSE", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert "USER-LINE" in r.stdout and "END" in r.stdout and "USER-ERR" in r.stderr, (r.stdout, r.stderr)
    assert "NATIVE-MAIN" not in r.stdout


def test_dygraph_forward_while_another_thread_exports(home, batch, tmp_path):
    """The dygraph backend answers while its model is traced to a program in another thread (auto's
    background switch). Paddle keeps its tracer in a module global that a thread copies on its first
    use: a thread starting while a trace holds the tracer off stayed in static mode for good
    ("conv2d(): argument must be Value, but got EagerParamBase"; every answer of `hubcls serve` was
    then a 500). A new thread's first forward now waits for the trace to end (paddle_thread_ready)."""
    import threading

    from paddle.base import framework

    from hubcls.deploy._program import save_inference_program

    paddle.seed(3)
    model = hubcls.create_model("MobileNetV3_small_x0_35")
    be = B.DygraphBackend(model)
    ref = be(batch)
    errors, outs = [], []

    def export():
        try:
            save_inference_program(model, tmp_path / "p" / "model", SIZE)
        except Exception as exc:  # noqa: BLE001 - recorded, asserted below
            errors.append(exc)

    def answer():  # a fresh thread, as the serving batcher's is, first touching paddle now
        try:
            outs.extend(be(batch) for _ in range(3))
        except Exception as exc:  # noqa: BLE001 - recorded, asserted below
            errors.append(exc)

    exporter = threading.Thread(target=export)
    exporter.start()
    deadline = time.time() + 120
    while framework._dygraph_tracer_ is not None and exporter.is_alive() and time.time() < deadline:
        time.sleep(0.0002)  # until the trace holds the tracer off
    assert exporter.is_alive(), "the export ended before its trace was seen"
    answerer = threading.Thread(target=answer)
    answerer.start()
    answerer.join(300)
    exporter.join(300)
    assert not errors, errors
    assert len(outs) == 3
    for out in outs:
        np.testing.assert_allclose(out, ref, atol=1e-5)


def test_probe_batches_keep_the_largest_probe_within_a_pixel_budget():
    """auto times batch 1 and 8 at 224 px; larger inputs time fewer images in the large probe (batch 8
    of EfficientNetB6 at 528-600 px held 5.6 GB), never fewer than 1, never a duplicate size."""
    assert B.probe_batches((3, 224, 224)) == (1, 8)
    assert B.probe_batches((3, 64, 64)) == (1, 8)  # small inputs keep the sizes serve runs
    assert B.probe_batches((3, 320, 320)) == (1, 3)
    assert B.probe_batches((3, 384, 384)) == (1, 2)
    assert B.probe_batches((3, 528, 528)) == (1,) == B.probe_batches((3, 600, 600))
    assert B.probe_batches((3, 224, 448)) == (1, 4)  # H x W, not H alone
    for side in range(32, 1200, 16):
        bs = B.probe_batches((3, side, side))
        assert bs[0] == 1 and bs[-1] * side * side <= max(B.AUTO_PROBE_PIXELS, side * side)


def test_an_export_never_runs_through_the_answering_model(home, batch, tmp_path):
    """dy2static patches each layer's ``forward`` while it traces: exporting the very object the
    dygraph backend answers with sent concurrent answers through converted code (a 0.05 s first
    answer took 1.4 s beside auto's background export). Exports trace a copy that shares the weights:
    answers given during an export run no converted code, equal the reference, and no layer keeps a
    patched forward."""
    import sys
    import threading

    from hubcls.deploy._program import save_inference_program

    paddle.seed(4)
    model = hubcls.create_model("MobileNetV3_small_x0_35")
    be = B.DygraphBackend(model)
    ref = be(batch)
    exporter = threading.Thread(target=save_inference_program, args=(model, tmp_path / "p" / "model", SIZE))
    converted, outs = set(), []

    def watch(frame, event, arg):
        if event == "call" and "to_static" in frame.f_code.co_filename:
            converted.add(frame.f_code.co_name)

    exporter.start()
    while exporter.is_alive():
        sys.setprofile(watch)
        try:
            outs.append(be(batch))
        finally:
            sys.setprofile(None)
    exporter.join()
    assert outs and not converted, sorted(converted)[:5]
    for out in outs:
        np.testing.assert_allclose(out, ref, atol=1e-5)
    assert not [name for name, layer in model.named_sublayers() if "forward" in vars(layer)]
    assert (tmp_path / "p" / "model.json").is_file()
