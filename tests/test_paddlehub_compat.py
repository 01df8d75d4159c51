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
    assert out["is_run_module"] and out["name"] == HUB_NAME and out["version"] == "1.0.0"
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
