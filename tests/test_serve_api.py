"""The serving app in-process (FastAPI TestClient): PaddleHub protocol, v1 API, limits, metrics,
health, dynamic batching and the bounded queue."""
from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _hub_helpers import MODEL, jpeg_bytes, photo, write_weights

pytest.importorskip("paddle")
pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")
from fastapi.testclient import TestClient  # noqa: E402

import hubcls.hub as hub  # noqa: E402
from hubcls.hub.batcher import Batcher, QueueFull, ShuttingDown  # noqa: E402
from hubcls.hub.serving import ServeConfig, create_app  # noqa: E402

HUB_NAME = "mobilenetv3_small_x0_35_imagenet"


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    w = write_weights(tmp_path_factory.mktemp("w") / "mnv3.pdparams")
    return hub.Module(name=MODEL, weights=str(w))


@pytest.fixture(scope="module")
def client(module):
    app = create_app({HUB_NAME: module}, ServeConfig(max_batch_size=4, max_delay_ms=20, max_queue=32,
                                                     max_request_bytes=2 << 20, max_images_per_request=8))
    with TestClient(app) as c:
        yield c


def b64(img) -> str:
    return base64.b64encode(jpeg_bytes(img)).decode()


def test_paddlehub_protocol_equals_module_predict(client, module):
    imgs = [photo(0), photo(1)]
    r = client.post(f"/predict/{HUB_NAME}", json={"images": [b64(i) for i in imgs], "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "000" and body["msg"] == ""
    expected = module.predict([jpeg_bytes(i) for i in imgs], top_k=3)
    assert len(body["results"]) == 2
    for got, exp in zip(body["results"], expected):
        assert list(got) == list(exp)
        np.testing.assert_allclose(list(got.values()), list(exp.values()), rtol=1e-4, atol=1e-6)


def test_paddlehub_route_accepts_other_spellings(client):
    for name in ("MobileNetV3_small_x0_35", "mobilenetv3_small_x0_35"):
        r = client.post(f"/predict/{name}", json={"images": [b64(photo(2))]})
        assert r.json()["status"] == "000" and len(r.json()["results"][0]) == 1  # default top_k 1


def test_paddlehub_error_codes(client):
    r = client.post("/predict/no_such_module", json={"images": [b64(photo(0))]})
    assert r.status_code == 200 and r.json() == {"status": "111", "msg": "Module no_such_module is not available.",
                                                 "results": ""}
    r = client.post(f"/predict/{HUB_NAME}", content=b"images=abc", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.json()["status"] == "112"
    r = client.post(f"/predict/{HUB_NAME}", json={"pictures": []})
    assert r.json()["status"] == "101" and "images" in r.json()["msg"]
    r = client.post(f"/predict/{HUB_NAME}", json={"images": [b64(photo(0))], "top_k": "many"})
    assert r.json()["status"] == "101" and "top_k" in r.json()["msg"]


def test_paddlehub_bad_image_does_not_sink_the_batch(client, module):
    good = photo(1)
    r = client.post(f"/predict/{HUB_NAME}", json={"images": [b64(good), "%%%not-base64", base64.b64encode(b"GIF89a junk").decode(), b64(good)], "top_k": 2})
    body = r.json()
    assert body["status"] == "000" and "2 of 4" in body["msg"]
    res = body["results"]
    assert "error" in res[1] and "error" in res[2]
    exp = module.predict([jpeg_bytes(good)], top_k=2)[0]
    assert list(res[0]) == list(exp) == list(res[3])


def test_v1_multipart_and_json(client, module):
    imgs = [photo(0), photo(3)]
    files = [("images", (f"{i}.jpg", jpeg_bytes(im), "image/jpeg")) for i, im in enumerate(imgs)]
    r = client.post(f"/v1/models/{MODEL}:predict?top_k=4", files=files)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    expected = module.predict([jpeg_bytes(i) for i in imgs], top_k=4)
    for p, e in zip(preds, expected):
        assert [t["label"] for t in p["top_k"]] == list(e)
        assert all(module.labels[t["index"]] == t["label"] for t in p["top_k"])
        np.testing.assert_allclose([t["prob"] for t in p["top_k"]], list(e.values()), rtol=1e-4, atol=1e-6)
    r2 = client.post(f"/v1/models/{HUB_NAME}:predict", json={"images": [b64(i) for i in imgs], "top_k": 4})
    assert r2.status_code == 200
    assert [[t["label"] for t in p["top_k"]] for p in r2.json()["predictions"]] == [list(e) for e in expected]
    # per-image error in multipart
    files.append(("images", ("bad.jpg", b"\x00\x01", "image/jpeg")))
    r3 = client.post(f"/v1/models/{MODEL}:predict", files=files)
    assert "error" in r3.json()["predictions"][2] and "top_k" in r3.json()["predictions"][0]


def test_v1_errors(client):
    assert client.post("/v1/models/nope:predict", json={"images": []}).status_code == 404
    assert client.post(f"/v1/models/{MODEL}:predict", json={"images": []}).status_code == 400
    assert client.post(f"/v1/models/{MODEL}:predict", content=b"{not json").status_code == 400
    assert client.post(f"/v1/models/{MODEL}:predict?top_k=0", json={"images": [b64(photo(0))]}).status_code == 400
    assert client.post(f"/v1/models/{MODEL}:predict", files=[("other", ("a.jpg", b"x", "image/jpeg"))]).status_code == 400
    r = client.post(f"/v1/models/{MODEL}:predict", json={"images": [b64(photo(0))] * 9})
    assert r.status_code == 413 and "limit is 8" in r.json()["error"]


def test_request_size_limit(client):
    big = base64.b64encode(np.random.default_rng(0).bytes(3 << 20)).decode()
    r = client.post(f"/predict/{HUB_NAME}", json={"images": [big]})
    assert r.status_code == 413


def test_models_health_metrics_docs(client):
    info = client.get("/v1/models").json()["models"]
    assert info[0]["model"] == MODEL and info[0]["num_classes"] == 1000
    one = client.get(f"/v1/models/{HUB_NAME}").json()
    assert len(one["labels"]) == 1000
    assert client.get("/v1/models/nope").status_code == 404
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").status_code == 200
    client.post(f"/predict/{HUB_NAME}", json={"images": [b64(photo(0))]})
    text = client.get("/metrics").text
    assert 'hubcls_requests_total{api="paddlehub",code="200",model="mobilenetv3_small_x0_35"}' in text
    assert "hubcls_request_latency_seconds_bucket" in text
    assert "hubcls_batch_size_bucket" in text and "hubcls_queue_depth" in text
    assert "hubcls_requests_in_flight 0.0" in text
    spec = client.get("/openapi.json").json()
    assert "/predict/{module_name}" in spec["paths"] and "/v1/models/{name}:predict" in spec["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "hubcls serve" in page.text


def test_concurrent_requests_are_batched_together(tmp_path):
    """Requests that arrive while the model is busy are merged into one batch."""
    w = write_weights(tmp_path / "w.pdparams")
    m = hub.Module(name=MODEL, weights=str(w))
    gate = _Gate(m.runner)
    m.runner = gate
    app = create_app({HUB_NAME: m}, ServeConfig(max_batch_size=8, max_delay_ms=50, max_queue=64))
    batcher = app.state.server.models["mobilenetv3_small_x0_35"].batcher
    with TestClient(app) as c:
        payload = {"images": [b64(photo(0))], "top_k": 1}
        with ThreadPoolExecutor(6) as ex:
            futs = [ex.submit(c.post, f"/predict/{HUB_NAME}", json=payload) for _ in range(6)]
            deadline = time.time() + 60
            while sum(gate.sizes) + batcher.depth < 6 and time.time() < deadline:
                time.sleep(0.02)
            assert gate.calls == 1  # every request is in the held model call or queued behind it
            gate.event.set()
            rs = [f.result() for f in futs]
        assert all(r.json()["status"] == "000" for r in rs)
        assert len({str(r.json()["results"]) for r in rs}) == 1  # same image, same answer
        samples = {s.name: s.value for mt in app.state.server.metrics.registry.collect() if mt.name == "hubcls_batch_size"
                   for s in mt.samples if s.labels.get("model") == "mobilenetv3_small_x0_35"}
        assert samples["hubcls_batch_size_sum"] == 6
        # six requests, at most two model calls (1 + 5, or all 6 when the worker was still collecting)
        assert samples["hubcls_batch_size_count"] == gate.calls <= 2


class _Gate:
    """A runner that blocks until released (to fill the queue deterministically)."""

    def __init__(self, inner):
        self.inner, self.event, self.calls, self.sizes = inner, threading.Event(), 0, []

    def __call__(self, batch):
        self.calls += 1
        self.sizes.append(batch.shape[0])
        self.event.wait(30)
        return self.inner(batch)


def test_full_queue_answers_503_and_recovers(tmp_path):
    w = write_weights(tmp_path / "w.pdparams")
    m = hub.Module(name=MODEL, weights=str(w))
    gate = _Gate(m.runner)
    m.runner = gate
    app = create_app({HUB_NAME: m}, ServeConfig(max_batch_size=1, max_delay_ms=0, max_queue=2))
    payload = {"images": [b64(photo(0))]}
    with TestClient(app) as c:
        with ThreadPoolExecutor(3) as ex:
            first = [ex.submit(c.post, f"/predict/{HUB_NAME}", json=payload) for _ in range(3)]
            deadline = time.time() + 30
            batcher = app.state.server.models["mobilenetv3_small_x0_35"].batcher
            # full = the worker holds one request inside the gate AND two wait behind it; depth alone
            # can read 2 before the worker took the first (then the third was still on its way in)
            while (gate.calls < 1 or batcher.depth < 2) and time.time() < deadline:
                time.sleep(0.02)
            assert gate.calls == 1 and batcher.depth == 2
            r = c.post(f"/predict/{HUB_NAME}", json=payload)
            assert r.status_code == 503 and r.headers.get("retry-after") == "1"
            r = c.post(f"/v1/models/{HUB_NAME}:predict", json=payload)
            assert r.status_code == 503
            gate.event.set()
            assert all(f.result().json()["status"] == "000" for f in first)
        assert c.post(f"/predict/{HUB_NAME}", json=payload).json()["status"] == "000"
        assert "hubcls_rejected_total{reason=\"queue_full\"} 2.0" in c.get("/metrics").text


def test_shutdown_drains_the_queue_then_refuses(tmp_path):
    w = write_weights(tmp_path / "w.pdparams")
    m = hub.Module(name=MODEL, weights=str(w))
    app = create_app({HUB_NAME: m}, ServeConfig())
    server = app.state.server
    with TestClient(app) as c:
        assert c.get("/health/ready").status_code == 200
    # leaving the context ran the lifespan shutdown
    assert not server.ready and server.stopping
    assert all(not s.batcher.alive for s in server.models.values())
    with TestClient(app, raise_server_exceptions=False) as c2:  # a restarted lifespan still refuses
        assert c2.get("/health/ready").status_code == 503
        r = c2.post(f"/predict/{HUB_NAME}", json={"images": [b64(photo(0))]})
        assert r.status_code == 503


# ------------------------------------------------------------------------------- Batcher alone
def test_batcher_merges_groups_and_keeps_order():
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        return x.reshape(x.shape[0], -1).sum(1, keepdims=True)

    b = Batcher(fn, max_batch_size=8, max_delay=0.3, max_queue=100)
    try:
        groups = [np.full((n, 1, 1, 1), i, np.float32) for i, n in enumerate([1, 2, 3])]
        futs = [b.submit(g) for g in groups]
        outs = [f.result(10) for f in futs]
        for i, (g, o) in enumerate(zip(groups, outs)):
            assert o.shape == (g.shape[0], 1) and np.all(o == i)
        assert calls == [6]  # one model call for three requests
    finally:
        b.stop()


def test_batcher_disabled_runs_each_request_alone_and_splits_big_ones():
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        return x[:, 0, 0, :1]

    b = Batcher(fn, max_batch_size=4, max_delay=0.3, max_queue=100, enabled=False)
    try:
        futs = [b.submit(np.ones((n, 1, 1, 1), np.float32) * n) for n in (1, 2, 10)]
        outs = [f.result(10) for f in futs]
        assert [o.shape[0] for o in outs] == [1, 2, 10] and np.all(outs[2] == 10)
        assert calls == [1, 2, 4, 4, 2]
    finally:
        b.stop()


def test_batcher_queue_limit_errors_and_stop():
    ev = threading.Event()

    def fn(x):
        ev.wait(10)
        if x.shape[0] == 3:
            raise RuntimeError("model exploded")
        return x[:, 0, 0, :1]

    b = Batcher(fn, max_batch_size=1, max_delay=0, max_queue=2, enabled=False)
    f0 = b.submit(np.zeros((1, 1, 1, 1), np.float32))  # taken by the worker, blocked
    time.sleep(0.2)
    f1 = b.submit(np.zeros((2, 1, 1, 1), np.float32))
    with pytest.raises(QueueFull):
        b.submit(np.zeros((1, 1, 1, 1), np.float32))
    ev.set()
    assert f0.result(10).shape == (1, 1) and f1.result(10).shape == (2, 1)
    b2 = Batcher(fn, max_batch_size=8, max_delay=0, max_queue=8)
    with pytest.raises(RuntimeError, match="exploded"):
        b2.submit(np.zeros((3, 1, 1, 1), np.float32)).result(10)
    b.stop()
    b2.stop()
    with pytest.raises(ShuttingDown):
        b.submit(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError):
        Batcher(fn, max_batch_size=0)


def test_batcher_does_not_wait_when_nobody_is_coming():
    incoming = {"n": 0}
    b = Batcher(lambda x: x[:, 0, 0, :1], max_batch_size=8, max_delay=2.0, max_queue=8,
                incoming=lambda: incoming["n"])
    try:
        t0 = time.perf_counter()
        b.submit(np.ones((1, 1, 1, 1), np.float32)).result(10)
        assert time.perf_counter() - t0 < 1.0  # did not idle for max_delay
        incoming["n"] = 1  # someone is preprocessing: the worker waits for them (up to max_delay)
        t0 = time.perf_counter()
        f1 = b.submit(np.ones((1, 1, 1, 1), np.float32))
        time.sleep(0.3)
        assert not f1.done()
        f2 = b.submit(np.full((1, 1, 1, 1), 2, np.float32))
        incoming["n"] = 0
        assert f1.result(10)[0, 0] == 1 and f2.result(10)[0, 0] == 2
    finally:
        b.stop()
