"""The real PaddleHub 2.4.0: ``hub install modules/<name>``, ``paddlehub.Module(name=...)`` and
``hub serving start`` run hubcls modules.

PaddleHub needs protobuf==3.20.3 (the `hub` extra), which conflicts with onnxruntime, so it lives in
its own venv (tests/install_peers.sh creates build/peers/paddlehub-venv, which sees this
environment's paddle and hubcls). PaddleHub's server URL (usage reporting, module search) is pointed
at a 127.0.0.1 stand-in through HUB_HOME/conf/config.yaml, so nothing leaves the machine.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from _hub_helpers import MODEL, REPO, StaticServer, free_port, jpeg_bytes, photo, write_weights

from hubcls.hub.make_modules import VERSION

VENV = REPO / "build" / "peers" / "paddlehub-venv"
PY = VENV / "bin" / "python"
HUB = VENV / "bin" / "hub"
HUB_NAME = "mobilenetv3_small_x0_35_imagenet"

pytestmark = [
    pytest.mark.skipif(not HUB.exists(), reason=f"PaddleHub venv missing: run `bash tests/install_peers.sh` ({VENV})"),
    pytest.mark.slow,
    pytest.mark.network,
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paddlehub")
    hub_home = tmp / "hub_home"
    (hub_home / "conf").mkdir(parents=True)
    stand_in = tmp / "stand_in"
    stand_in.mkdir()
    with StaticServer(stand_in) as srv:
        # PaddleHub reads its server URL from HUB_HOME/conf/config.yaml (paddlehub/config.py)
        (hub_home / "conf" / "config.yaml").write_text(
            f"server: {srv.url}/paddlehub\nlog:\n  enable: true\n  level: WARNING\n")
        e = dict(os.environ, HUB_HOME=str(hub_home), OMP_NUM_THREADS="1", HUBCLS_HOME=str(tmp / "hubcls_home"))
        e.pop("PYTHONPATH", None)
        yield {"env": e, "tmp": tmp, "server": srv, "hub_home": hub_home}


def _run(cmd, env, timeout=300, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(REPO), **kw)


def test_hub_install_then_paddlehub_module_and_serving(env):
    import hubcls.hub as hub

    e, tmp = env["env"], env["tmp"]
    weights = write_weights(tmp / "w.pdparams")
    r = _run([str(HUB), "install", str(REPO / "modules" / HUB_NAME)], e)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert (env["hub_home"] / "modules" / HUB_NAME / "module.py").is_file()

    img_path = tmp / "chelsea.jpg"
    img_path.write_bytes(jpeg_bytes(photo(2)))
    code = textwrap.dedent("""
        import base64, json, sys, cv2
        import paddlehub
        from paddlehub.module.module import RunModule
        m = paddlehub.Module(name=sys.argv[1], weights=sys.argv[2])
        img = cv2.imread(sys.argv[3])
        out = {
            "is_run_module": isinstance(m, RunModule),
            "name": m.name, "version": str(m.version),
            "classification": m.classification(images=[img], top_k=3),
            "paths": m.classification(paths=[sys.argv[3]], top_k=3),
            "serving": m.serving_method(images=[base64.b64encode(open(sys.argv[3], "rb").read()).decode()], top_k=3),
            "serving_func": m.serving_func_name,
        }
        print("RESULT" + json.dumps(out))
    """)
    r = _run([str(PY), "-c", code, HUB_NAME, str(weights), str(img_path)], e)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.split("RESULT", 1)[1])
    assert out["is_run_module"] and out["name"] == HUB_NAME and out["version"] == VERSION
    assert out["serving_func"] == "serving_method"
    expected = hub.Module(name=MODEL, weights=str(weights)).predict([str(img_path)], top_k=3)[0]
    for key in ("classification", "paths", "serving"):
        got = out[key][0]
        assert list(got) == list(expected), key
        assert all(abs(got[k] - expected[k]) < 1e-4 for k in expected)

    # `hub serving start` builds the module with no arguments -> official weights: put the file
    # where the offline cache expects it (the documented way to provide weights without network)
    from hubcls.hub.download import cache_path
    from hubcls.models import resolve

    cfg = resolve(MODEL)
    url = cfg.weight_urls()[0] if hasattr(cfg, "weight_urls") else cfg.url
    home_env = dict(e, HUBCLS_OFFLINE="1")
    cached = Path(_run([sys.executable, "-c", "import sys; from hubcls.hub.download import cache_path; "
                       "print(cache_path(sys.argv[1]))", url], home_env).stdout.strip())
    assert str(cached).startswith(e["HUBCLS_HOME"])
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(weights.read_bytes())
    del cache_path

    port = free_port()
    log = open(tmp / "hub_serving.log", "wb")
    proc = subprocess.Popen([str(HUB), "serving", "start", "-m", HUB_NAME, "-p", str(port)], env=home_env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp), start_new_session=True)
    try:
        body = None
        deadline = time.time() + 240
        payload = json.dumps({"images": [base64.b64encode(img_path.read_bytes()).decode()], "top_k": 3}).encode()
        while time.time() < deadline and proc.poll() is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/predict/{HUB_NAME}", data=payload,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=60) as resp:
                    body = json.loads(resp.read())
                break
            except OSError:
                time.sleep(1)
        assert body is not None, (tmp / "hub_serving.log").read_text(errors="replace")[-3000:]
        assert body["status"] == "000", body
        got = body["results"][0]
        # PaddleHub's Flask server sorts JSON object keys, so rank by value (hubcls serve keeps the order)
        assert sorted(got, key=got.get, reverse=True) == list(expected)
        assert all(abs(got[k] - expected[k]) < 1e-4 for k in expected)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(10)
        log.close()


# ------------------------------------------------------------------ PaddleHub's contract, real PaddleHub
CONTRACT = textwrap.dedent("""
    import json, os, sys, warnings, cv2
    import paddlehub
    name, img = sys.argv[1], sys.argv[2]
    m = paddlehub.Module(name=name)
    out = {"name": m.name}
    out["paths"] = m.classification(paths=[img])
    out["images"] = m.classification(images=[cv2.imread(img)])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out["gpu"] = m.classification(images=[cv2.imread(img)], use_gpu=True)
    out["gpu_warned"] = any("running on the CPU" in str(x.message) for x in w)
    for key, kwargs in (("missing", {"paths": ["no.jpg"]}), ("path_as_image", {"images": [img]})):
        try:
            m.classification(**kwargs)
            out[key] = None
        except Exception as exc:
            out[key] = type(exc).__name__
    prefix = m.save_inference_model("./inference/model")
    out["files"] = sorted(os.path.relpath(os.path.join(d, f)) for d, _, fs in os.walk("inference") for f in fs)
    import base64
    out["serving"] = m.serving_method(images=[base64.b64encode(open(img, "rb").read()).decode()], top_k=2)
    print("RESULT" + json.dumps(out))
""")


# the ImageClassifierModule kind (the classification kind: the test above, tests/tools/paddlehub_module_tests.py)
@pytest.mark.parametrize("hub_name,model", [("mobilenet_v3_small_imagenet_ssld", "MobileNetV3_small_x1_0_ssld")])
def test_paddlehub_contract_with_real_paddlehub(env, tmp_path, hub_name, model):
    """A module generated under a PaddleHub name, installed into real PaddleHub 2.4 and used as
    PaddleHub's own module test and README do (tests/test_paddlehub_contract.py: without PaddleHub)."""
    import cv2
    from _hub_helpers import weights_answering

    from hubcls.models import paddlehub_module, resolve

    e = dict(env["env"], HUBCLS_HOME=str(tmp_path / "hubcls_home"), HUBCLS_OFFLINE="1")
    hub_home = tmp_path / "hub_home"
    (hub_home / "conf").mkdir(parents=True)
    (hub_home / "conf" / "config.yaml").write_text((env["hub_home"] / "conf" / "config.yaml").read_text())
    e["HUB_HOME"] = str(hub_home)
    img = tmp_path / "test.jpg"
    img.write_bytes(jpeg_bytes(photo(2)))
    cached = Path(_run([sys.executable, "-c", "import sys; from hubcls.hub.download import cache_path; "
                       "print(cache_path(sys.argv[1]))", resolve(model).weight_urls()[0]], e).stdout.strip())
    weights_answering(cached, model, cv2.imread(str(img))[:, :, ::-1], 263)  # "Pembroke" for this photo
    r = _run([sys.executable, "-m", "hubcls", "hub-module", hub_name, "-o", str(tmp_path / "mods")], e)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _run([str(HUB), "install", str(tmp_path / "mods" / hub_name)], e)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([str(PY), "-c", CONTRACT, hub_name, str(img)], env=e, capture_output=True, text=True,
                       timeout=600, cwd=str(work))
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.split("RESULT", 1)[1])
    assert out["name"] == hub_name
    for key in ("paths", "images", "gpu"):
        assert "Pembroke" in out[key][0] and out[key][0]["Pembroke"] > 0.5, (key, out[key])
    assert out["gpu_warned"]  # no GPU here: the CPU, with a warning
    assert out["missing"] == "AssertionError" and out["path_as_image"] == "TypeError"
    row = paddlehub_module(hub_name)
    base = f"inference/model/{hub_name}" if row.api == "predict" else "inference/model"
    assert {f"{base}.pdmodel", f"{base}.json", f"{base}.pdiparams"} <= set(out["files"])
    if row.answers_data:
        assert list(out["serving"]) == ["data"] and list(out["serving"]["data"][0])[0] == "Pembroke"
    else:
        assert isinstance(out["serving"], list) and list(out["serving"][0])[0] == "Pembroke"

    # `hub run` and `hubcls run` print the same answer
    hub_run = _run([str(HUB), "run", hub_name, "--input_path", str(img), "--top_k", "2"], e)
    ours = _run([sys.executable, "-m", "hubcls", "run", hub_name, "--input_path", str(img), "--top_k", "2"], e)
    assert hub_run.returncode == 0 and ours.returncode == 0, hub_run.stderr[-2000:] + ours.stderr[-2000:]
    printed = [line for line in hub_run.stdout.splitlines() if line.startswith("[{")]
    assert printed and printed[-1] == ours.stdout.strip().splitlines()[-1]
    assert "'Pembroke'" in printed[-1]
