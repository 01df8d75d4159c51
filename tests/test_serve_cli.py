"""``hubcls serve`` end to end: a real uvicorn process on 127.0.0.1, a PaddleHub-style client,
--weights / --model-dir, and graceful shutdown on SIGTERM with a request in flight."""
from __future__ import annotations

import base64
import json
import signal
import threading
import urllib.request

import pytest
from _hub_helpers import MODEL, free_port, jpeg_bytes, photo, start_serve, wait_http, write_weights

pytest.importorskip("paddle")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

HUB_NAME = "mobilenetv3_small_x0_35_imagenet"


def _post(url, payload, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


@pytest.mark.slow
@pytest.mark.network
def test_serve_process_paddlehub_client_and_graceful_shutdown(tmp_path):
    import hubcls.hub as hub

    w = write_weights(tmp_path / "w.pdparams")
    saved = tmp_path / "saved"
    m = hub.Module(name=MODEL, weights=str(w))
    m.model.save_pretrained(str(saved))

    port = free_port()
    proc = start_serve(["-m", HUB_NAME, "--weights", str(w), "--model-dir", str(saved), "--port", str(port),
                        "--max-delay-ms", "50"], log_path=tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health/ready", timeout=180, proc=proc)
        imgs = [photo(0), photo(2)]
        # the client code PaddleHub's docs give: cv2.imencode -> base64 -> JSON POST
        payload = {"images": [base64.b64encode(jpeg_bytes(i)).decode() for i in imgs], "top_k": 3}
        body = _post(f"{base}/predict/{HUB_NAME}", payload)
        assert body["status"] == "000"
        expected = m.predict([jpeg_bytes(i) for i in imgs], top_k=3)
        assert [list(r) for r in body["results"]] == [list(e) for e in expected]
        # the --model-dir model is served under its own name, same weights -> same answer
        models = json.loads(urllib.request.urlopen(f"{base}/v1/models", timeout=10).read())["models"]
        assert len(models) == 2
        # bound to loopback only
        assert proc.poll() is None

        # SIGTERM with a request in flight: it is answered, then the process exits cleanly
        result = {}

        def slow_request():
            result["body"] = _post(f"{base}/predict/{HUB_NAME}", {"images": payload["images"] * 24, "top_k": 1})

        def in_flight() -> float:
            text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
            line = [ln for ln in text.splitlines() if ln.startswith("hubcls_requests_in_flight ")]
            return float(line[0].split()[1])

        import time

        t = threading.Thread(target=slow_request)
        t.start()
        deadline = time.time() + 30
        while in_flight() < 1 and time.time() < deadline and "body" not in result:
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)  # the 48-image request is being worked on now
        t.join(120)
        assert result.get("body", {}).get("status") == "000" and len(result["body"]["results"]) == 48
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_serve_cli_errors(tmp_path, capsys, monkeypatch):
    from hubcls.cli import main

    # no weights anywhere (offline): a clear error naming the file and where to put it, exit 2
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    assert main(["serve", "-m", MODEL, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{MODEL}_pretrained.pdparams" in err and str(tmp_path / "home") in err and "--weights" in err

    assert main(["serve", "--port", "1"]) == 2
    assert "at least one" in capsys.readouterr().err
    assert main(["serve", "-m", MODEL, "-m", MODEL, "--weights", str(tmp_path / "x.pdparams")]) == 2
    assert "one --weights per -m" in capsys.readouterr().err
