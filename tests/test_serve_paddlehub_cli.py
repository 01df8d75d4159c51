"""``hubcls serving start|stop`` with PaddleHub Serving's own documented invocations, extras that explain
themselves, and a real 2-worker server started from PaddleHub's config.json schema.

The invocations and the config.json schema are PaddleHub's (docs/docs_en/tutorial/serving.md and
paddlehub/commands/serving.py of PaddleHub 2.4): ``hub serving start -m lac``, ``--modules M1==V1 M2==V2
--port XXXX --use_gpu --use_multiprocess --workers N --gpu``, ``-c serving_config.json`` with
``modules_info: {name: {init_args, predict_args}}`` (and the 1.x list form), ``hub serving stop --port``.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _hub_helpers import MODEL, REPO, free_port, jpeg_bytes, photo, wait_http, write_weights

HUB_NAME = "mobilenetv3_small_x0_35_imagenet"


@pytest.fixture()
def captured(monkeypatch, tmp_path):
    """Run the CLI up to the point where it would load models and listen; capture what it asked for."""
    import hubcls.hub.serving as serving

    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    got = {}

    def fake_load(entries, log=None):
        got["entries"] = entries
        return {e.get("route") or e["model"]: object() for e in entries}, {}

    monkeypatch.setattr(serving, "load_models", fake_load)
    monkeypatch.setattr(serving, "serve", lambda modules, **kw: got.update(mode="one", **kw))
    monkeypatch.setattr(serving, "serve_workers", lambda entries, workers, **kw: got.update(
        mode="workers", entries=entries, workers=workers, **kw))
    return got


def run_cli(argv):
    from hubcls.cli import main

    return main(argv)


def test_paddlehub_command_line(captured, tmp_path):
    # hub serving start -m lac  ->  hubcls serving start -m <model>, PaddleHub's port 8866 by default
    assert run_cli(["serving", "start", "-m", HUB_NAME]) == 0
    assert [e["model"] for e in captured["entries"]] == [HUB_NAME] and captured["port"] == 8866
    assert captured["mode"] == "one"
    # hub serving start --modules M1==V1 M2==V2 --port XXXX --use_multiprocess --workers N
    captured.clear()
    assert run_cli(["serving", "start", "--modules", f"{HUB_NAME}==1.0.0", "resnet50_vd_imagenet_ssld==1.1.0",
                    "--port", "9001", "--use_multiprocess", "--workers", "3"]) == 0
    assert [e["model"] for e in captured["entries"]] == [HUB_NAME, "resnet50_vd_imagenet_ssld"]
    assert captured["port"] == 9001 and captured["mode"] == "workers" and captured["workers"] == 3
    # -m A B and -m A -m B mean the same; -p is --port; --use_gpu reaches every model
    captured.clear()
    assert run_cli(["serve", "-m", HUB_NAME, "-m", "resnet50_vd_imagenet_ssld", "-p", "9002", "--use_gpu"]) == 0
    assert [e["model"] for e in captured["entries"]] == [HUB_NAME, "resnet50_vd_imagenet_ssld"]
    assert all(e["init_args"]["use_gpu"] is True for e in captured["entries"]) and captured["port"] == 9002
    # --use_multiprocess alone: one worker per core
    captured.clear()
    assert run_cli(["serving", "start", "-m", HUB_NAME, "--use_multiprocess"]) == 0
    assert captured["workers"] == len(os.sched_getaffinity(0)) or captured["mode"] == "one"


def test_paddlehub_config_json(captured, tmp_path):
    # PaddleHub 2.x's documented config.json, with hubcls's init_args (weights) for one module
    cfg = {
        "modules_info": {
            HUB_NAME: {"init_args": {"version": "1.0.0", "weights": "w.pdparams"},
                       "predict_args": {"batch_size": 1, "use_gpu": False, "top_k": 3}},
            "resnet50_vd_imagenet_ssld": {"init_args": {"version": "1.1.0"}, "predict_args": {}},
        },
        "port": 8870,
        "use_multiprocess": True,
        "workers": 2,
        "gpu": "0",
    }
    path = tmp_path / "serving_config.json"
    path.write_text(json.dumps(cfg))
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        assert run_cli(["serving", "start", "-c", str(path)]) == 0
    finally:
        os.environ.pop("CUDA_VISIBLE_DEVICES", None) if saved is None else os.environ.update(
            CUDA_VISIBLE_DEVICES=saved)
    assert captured["port"] == 8870 and captured["workers"] == 2
    e = {x["model"]: x for x in captured["entries"]}
    assert e[HUB_NAME]["init_args"]["weights"] == "w.pdparams" and e[HUB_NAME]["init_args"]["use_gpu"] is True
    assert e[HUB_NAME]["predict_args"]["top_k"] == 3
    # flags given as well win over the file
    captured.clear()
    cfg["use_multiprocess"], cfg["workers"] = False, None
    cfg.pop("gpu")
    path.write_text(json.dumps(cfg))
    assert run_cli(["serving", "start", "-c", str(path), "-p", "9100"]) == 0
    assert captured["port"] == 9100 and captured["mode"] == "one"
    # PaddleHub 1.x's list form
    captured.clear()
    path.write_text(json.dumps({"modules_info": [{"module": HUB_NAME, "version": "1.0.0", "batch_size": 1}],
                                "use_gpu": False, "port": 8866, "use_multiprocess": False}))
    assert run_cli(["serving", "start", "-c", str(path)]) == 0
    assert [x["model"] for x in captured["entries"]] == [HUB_NAME]
    # --modules_info as a JSON string
    captured.clear()
    assert run_cli(["serving", "start", "--modules_info", json.dumps({HUB_NAME: {"predict_args": {"top_k": 2}}})]) == 0
    assert captured["entries"][0]["predict_args"] == {"top_k": 2}


def test_bad_paddlehub_configs_are_clear_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    path = tmp_path / "c.json"
    for cfg, needle in [({"port": 1}, "needs \"modules_info\""),
                        ({"modules_info": {}, "prot": 1}, "unknown keys ['prot']"),
                        ({"modules_info": {HUB_NAME: {"init": {}}}}, "takes init_args and predict_args"),
                        ({"modules_info": {HUB_NAME: {"init_args": {"weigths": "x"}}}}, "not hub.Module arguments"),
                        ({"modules_info": {HUB_NAME: {"predict_args": {"topk": 3}}}}, "predict_args ['topk']")]:
        path.write_text(json.dumps(cfg))
        assert run_cli(["serving", "start", "-c", str(path)]) == 2
        assert needle in capsys.readouterr().err
    path.write_text("{not json")
    assert run_cli(["serving", "start", "-c", str(path)]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert run_cli(["serving", "start", "-c", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert run_cli(["serving", "stop", "-p", "9"]) == 2
    assert "no hubcls server recorded on port 9" in capsys.readouterr().err


def test_missing_serve_extra_is_one_line_before_any_model_loads(monkeypatch, capsys, tmp_path):
    import importlib.util

    import hubcls.hub.module as module

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    monkeypatch.setattr(module.Module, "__init__", lambda *a, **k: pytest.fail("a model was loaded"))
    t0 = time.perf_counter()
    assert run_cli(["serve", "-m", MODEL]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("hubcls serve: error: hubcls serve needs the 'serve' extra (missing: uvicorn): "
                   "pip install 'hubcls[serve]'")
    assert time.perf_counter() - t0 < 5


def test_extras_table_matches_pyproject():
    """Every extra hubcls.extras knows is in pyproject.toml, and the README lists them all."""
    import tomllib

    from hubcls.extras import EXTRAS

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(declared)
    readme = (REPO / "README.md").read_text()
    for name in EXTRAS:
        assert f"hubcls[{name}]" in readme, name


# ------------------------------------------------------------------------------ a real 2-worker server
def _post(url, payload, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _children(pid):
    """The worker processes under the supervisor (multiprocessing's resource tracker is not one)."""
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        out += [int(c) for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
    return [c for c in out if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _cpu(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
@pytest.mark.network
def test_two_workers_from_a_paddlehub_config_answer_and_aggregate_metrics(tmp_path):
    pytest.importorskip("uvicorn")
    from concurrent.futures import ThreadPoolExecutor

    w = write_weights(tmp_path / "w.pdparams")
    port = free_port()
    cfg = {"modules_info": {HUB_NAME: {"init_args": {"weights": str(w), "backend": "dygraph"},
                                       "predict_args": {"top_k": 3}}},
           "port": port, "use_multiprocess": True, "workers": 2}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1", HUBCLS_HOME=str(tmp_path / "home"))
    log = open(tmp_path / "serve.log", "wb")
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "hubcls", "serving", "start", "-c", str(tmp_path / "config.json")],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health/ready", timeout=300, proc=proc)
        deadline = time.time() + 300
        while len(_children(proc.pid)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) == 2
        # both workers have loaded the model: the aggregated gauge counts two live workers
        deadline = time.time() + 300
        while "hubcls_workers 2.0" not in urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode():
            assert time.time() < deadline, "the second worker never came up"
            time.sleep(0.5)
        cpu0 = {p: _cpu(p) for p in workers}
        payload = {"images": [base64.b64encode(jpeg_bytes(photo(1))).decode()]}  # no top_k: the config's 3
        with ThreadPoolExecutor(8) as ex:
            bodies = list(ex.map(lambda i: _post(f"{base}/predict/{HUB_NAME}", payload), range(40)))
        assert all(b["status"] == "000" and len(b["results"][0]) == 3 for b in bodies)
        assert len({json.dumps(b["results"]) for b in bodies}) == 1  # same image, same answer from either worker
        used = [_cpu(p) - cpu0[p] for p in workers]
        assert all(u > 0.05 for u in used), used  # the kernel handed connections to both processes
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        line = [ln for ln in metrics.splitlines()
                if ln.startswith("hubcls_requests_total{") and 'code="200"' in ln and "paddlehub" in ln]
        assert line and float(line[0].split()[-1]) == 40.0, line  # summed over the two workers
        # hubcls serving stop -p PORT: SIGTERM through the recorded pid; every process exits
        r = subprocess.run([sys.executable, "-m", "hubcls", "serving", "stop", "-p", str(port)], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert proc.wait(60) == 0
        assert not any(Path(f"/proc/{p}").exists() for p in workers)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        log.close()
    text = (tmp_path / "serve.log").read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    # quiet by default: hubcls's own lines only (third-party logs need --verbose)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines and all(ln.startswith(("hubcls serve:", "loading ", "hubcls serving:")) for ln in lines), lines
