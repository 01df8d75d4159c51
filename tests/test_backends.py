"""The inference backend layer: selection (argument > HUBCLS_BACKEND > auto), the on-disk program
cache (keyed by weights + versions, atomic, never stale), threads, quiet logs, warm start (issue 10)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import hubcls  # noqa: E402
from hubcls.deploy import backends as B  # noqa: E402
from hubcls.deploy import _cache  # noqa: E402
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
    out = _hubcls("bench", "-m", "MobileNetV3_small_x0_35", "--batch", "1,2", "--backend", "dygraph,onnxruntime",
                  "--threads", "1", "--warmup", "1", "--iters", "2", "--json", str(js),
                  env={"HUBCLS_HOME": str(tmp_path / "home")})
    assert out.returncode == 0, out.stderr
    assert "threads=1" in out.stdout and "warm-up=1" in out.stdout
    assert "p50 ms" in out.stdout and "img/s" in out.stdout
    res = json.loads(js.read_text())
    rows = [(r["backend"], r["batch"]) for r in res["rows"]]
    assert rows == [("dygraph", 1), ("dygraph", 2), ("onnxruntime", 1), ("onnxruntime", 2)]
    for r in res["rows"]:
        assert r["p90_ms"] >= r["p50_ms"] > 0 and r["img_per_s"] > 0
        assert r["max_abs_diff"] <= 1e-4 and r["top1_agree"] == 1.0


@pytest.mark.skipif(not HAS_ORT, reason="needs onnxruntime + paddle2onnx")
def test_auto_measures_both_cpu_backends_once_and_remembers(home, model, batch):
    be = B.load_backend("auto", model=model, name="r18", input_size=SIZE, threads=1)
    choices = list((home / "deploy").glob("r18-auto-choice-onnxruntime-inference-*/choice.json"))
    assert len(choices) == 1
    rec = json.loads(choices[0].read_text())
    assert set(rec["seconds_per_batch"]) == {"onnxruntime", "inference"}
    sec = rec["seconds_per_batch"]
    assert rec["choice"] == ("inference" if sec["inference"] < 0.9 * sec["onnxruntime"] else "onnxruntime") == be.name
    np.testing.assert_allclose(be(batch), B.DygraphBackend(model)(batch), atol=1e-4)

    def no_build():
        raise AssertionError("warm start must not rebuild the model")

    again = B.load_backend(None, model_fn=no_build, name="r18", weights_id=_cache.weights_hash_of_model(model),
                           input_size=SIZE, threads=1)
    assert again.name == be.name
    assert len([p for p in (home / "deploy").glob("r18-auto-choice-*") if p.is_dir()]) == 1
