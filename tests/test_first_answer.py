"""First answer fast (issue 16.5): on a cold cache a new ``hub.Module`` answers on its dygraph model while
"auto" exports and times the backends in a background thread, then switches; ``hubcls serve``'s
/health/ready is 200 from the first moment a model can answer and lists the switches still running.

The background load is held on an Event here so every state is observed deterministically (how long it
takes is a benchmark's business: benchmarks/bench_first_answer.py)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from _hub_helpers import MODEL, jpeg_bytes, photo, write_weights

pytest.importorskip("paddle")


@pytest.fixture()
def held_load(monkeypatch, tmp_path):
    """hubcls.deploy.backends.load_backend, held until ``release`` is set (or made to fail)."""
    import hubcls.deploy.backends as backends

    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))  # a cold cache
    monkeypatch.delenv("HUBCLS_BACKEND", raising=False)
    monkeypatch.delenv("HUBCLS_BACKGROUND_BACKEND", raising=False)
    real = backends.load_backend
    state = {"release": threading.Event(), "fail": None, "calls": 0, "thread": None}

    def held(*args, **kwargs):
        state["calls"] += 1
        state["thread"] = threading.current_thread().name
        assert state["release"].wait(120), "the test never released the background load"
        if state["fail"]:
            raise RuntimeError(state["fail"])
        return real(*args, **kwargs)

    monkeypatch.setattr(backends, "load_backend", held)
    yield state
    state["release"].set()  # never leave a background load waiting


def test_module_answers_on_dygraph_then_switches(held_load, tmp_path):
    import hubcls.hub as hub

    w = write_weights(tmp_path / "w.pdparams")
    m = hub.Module(name=MODEL, weights=str(w))  # returns although the backend load is held
    assert m.pipeline.backend_pending and m.runner.name == "dygraph"
    assert "switching" in m.pipeline.backend_state
    images = [jpeg_bytes(photo(i)) for i in range(3)]
    first = m.predict(images, top_k=3)  # answered now, by the dygraph model
    assert held_load["calls"] == 1 and held_load["thread"].startswith("hubcls-backend-")
    ref = hub.Module(name=MODEL, weights=str(w), backend="dygraph").predict(images, top_k=3)
    assert first == ref

    held_load["release"].set()
    assert m.wait_for_backend(300)
    assert not m.pipeline.backend_pending and m.pipeline.backend_state == "ready"
    assert m.runner.name != "dygraph"  # the auto-chosen backend took over
    after = m.predict(images, top_k=3)
    for a, b in zip(after, first):
        assert list(a) == list(b)
        np.testing.assert_allclose(list(a.values()), list(b.values()), atol=1e-4)


def test_a_failed_background_load_keeps_answering(held_load, tmp_path):
    import hubcls.hub as hub

    held_load["fail"] = "paddle2onnx exploded"
    held_load["release"].set()
    m = hub.Module(name=MODEL, weights=str(write_weights(tmp_path / "w.pdparams")))
    assert m.wait_for_backend(60)
    assert m.runner.name == "dygraph" and "paddle2onnx exploded" in m.pipeline.backend_state
    assert len(m.predict([jpeg_bytes(photo(0))], top_k=2)[0]) == 2


def test_a_runner_set_meanwhile_is_not_replaced(held_load, tmp_path):
    import hubcls.hub as hub

    m = hub.Module(name=MODEL, weights=str(write_weights(tmp_path / "w.pdparams")))
    mine = m.runner
    m.runner = lambda batch: mine(batch)  # the user's own runner, set while the switch is pending
    custom = m.runner
    held_load["release"].set()
    assert m.wait_for_backend(300)
    assert m.runner is custom


def test_synchronous_when_asked(held_load, tmp_path, monkeypatch):
    import hubcls.hub as hub

    monkeypatch.setenv("HUBCLS_BACKGROUND_BACKEND", "0")
    held_load["release"].set()
    m = hub.Module(name=MODEL, weights=str(write_weights(tmp_path / "w.pdparams")))
    assert not m.pipeline.backend_pending and m.runner.name != "dygraph"


def test_serve_is_ready_while_the_backend_switches(held_load, tmp_path):
    pytest.importorskip("fastapi")
    import base64

    from fastapi.testclient import TestClient

    import hubcls.hub as hub
    from hubcls.hub.serving import create_app

    m = hub.Module(name=MODEL, weights=str(write_weights(tmp_path / "w.pdparams")))
    with TestClient(create_app({"m": m})) as c:
        r = c.get("/health/ready")
        assert r.status_code == 200 and list(r.json()["backends_switching"]) == ["m"]
        body = {"images": [base64.b64encode(jpeg_bytes(photo(1))).decode()], "top_k": 2}
        assert c.post("/predict/m", json=body).json()["status"] == "000"  # answered during the switch
        assert c.get("/v1/models").json()["models"][0]["backend"] == "dygraph"
        held_load["release"].set()
        assert m.wait_for_backend(300)
        r = c.get("/health/ready")
        assert r.status_code == 200 and r.json()["backends_switching"] == {}
        info = c.get("/v1/models").json()["models"][0]
        assert info["backend"] != "dygraph" and info["backend_state"] == "ready"
        assert c.post("/predict/m", json=body).json()["status"] == "000"


_EXIT_SCRIPT = r"""
import atexit, json, sys, threading, time
from pathlib import Path

import numpy as np

out = Path(sys.argv[2])
report = {}
# registered before the pipeline's own exit hook, so it runs after it (exit hooks run last-first)
atexit.register(lambda: out.write_text(json.dumps(dict(report, state=m.pipeline.backend_state))))

import paddle

import hubcls.hub as hub

real, entered, answered = paddle.jit.save, threading.Event(), threading.Event()


def held_jit_save(*args, **kwargs):  # a long native step: still running when the main thread exits
    entered.set()
    answered.wait(300)  # until the answer is out (a fixed sleep ran out first on a loaded machine)
    time.sleep(1)  # and the main thread is exiting
    real(*args, **kwargs)
    report["export_finished"] = True


paddle.jit.save = held_jit_save
m = hub.Module(name=sys.argv[3], weights=sys.argv[1])
assert entered.wait(120), "the background export never started"
report["pending"] = m.pipeline.backend_pending
report["answer"] = m.predict([np.zeros((64, 64, 3), np.uint8)])[0]
print("ANSWER", json.dumps(report["answer"]), flush=True)  # not swallowed by the background export's quiet()
answered.set()
"""


def test_exit_while_the_background_export_runs(tmp_path):
    """A process that predicts once and exits while "auto" still exports in the background exits
    cleanly (it aborted with SIGABRT when an exit bound expired mid-export): the exit waits for the
    native step in progress, then the switch stops before the next one (no ONNX conversion, no timing)."""
    import json
    import os
    import subprocess
    import sys

    w = write_weights(tmp_path / "w.pdparams")
    home, out = tmp_path / "home", tmp_path / "report.json"
    env = dict(os.environ, HUBCLS_HOME=str(home), OMP_NUM_THREADS="1")
    for k in ("HUBCLS_BACKEND", "HUBCLS_BACKGROUND_BACKEND", "HUBCLS_VERBOSE"):
        env.pop(k, None)
    p = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, str(w), str(out), MODEL], env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "terminate called" not in p.stderr
    report = json.loads(out.read_text())
    assert report["pending"] is True  # the export was still running when the answer came
    (label, prob), = report["answer"].items()  # PaddleHub's {label: probability}, top-1
    assert isinstance(label, str) and 0.0 < prob <= 1.0
    assert "ANSWER " + json.dumps(report["answer"]) in p.stdout.splitlines()
    assert report.get("export_finished") is True  # waited for, not torn down mid-step
    assert report["state"].endswith("stopped at interpreter exit")
    kinds = {json.loads(f.read_text())["kind"] for f in home.rglob("cache_key.json")}
    assert "inference" in kinds and not kinds & {"onnx", "auto-choice"}, kinds


def test_stop_background_switches_keeps_the_answering_backend(held_load, tmp_path):
    """stop_background_switches() (what tests/conftest.py runs after each test) stops a running switch
    at its next checkpoint; the Module keeps answering on dygraph, and a later switch runs again."""
    import hubcls.hub as hub
    from hubcls.deploy import pipeline as P

    w = write_weights(tmp_path / "w.pdparams")
    m = hub.Module(name=MODEL, weights=str(w))
    assert m.pipeline.backend_pending and m.runner.name == "dygraph"
    stopper = threading.Thread(target=P.stop_background_switches)
    stopper.start()
    held_load["release"].set()  # the held step ends; the switch meets a checkpoint and stops there
    stopper.join(300)
    assert not stopper.is_alive() and not P._PENDING
    assert not m.pipeline.backend_pending and m.runner.name == "dygraph"
    assert m.pipeline.backend_state == "stayed on dygraph: stopped by stop_background_switches()"
    assert m.predict([photo(0)], top_k=1)[0]  # still answers
    m2 = hub.Module(name=MODEL, weights=str(w))  # the stop was lifted: this one switches
    assert m2.wait_for_backend(300) and m2.runner.name != "dygraph"
