"""Bounded serving (issue 14.3): every malformed input is a 4xx (never a 500), 413 for over-limit
bodies on every route, the image count and the decoded-pixel budget are checked before anything is
decoded, images are decoded one at a time, optional Host allow-list, no server paths in responses;
and against a real ``hubcls serve`` child: the 8 x 13000^2 PNG request, slowloris, slow bodies,
the connection cap, a responsive event loop under big bodies, and memory that returns to its
baseline after a hostile request and a 300-request burst."""
from __future__ import annotations

import base64
import io
import json
import socket
import sys
import threading
import time
import tracemalloc
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _serving import MODEL, ServeProcess, grey_png, raw_request, reset_peak, status_of  # noqa: E402

pytest.importorskip("paddle")
pytest.importorskip("fastapi")
from _hub_helpers import jpeg_bytes, photo, write_weights  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

HUB = "mobilenetv3_small_x0_35_imagenet"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_weights(tmp_path_factory.mktemp("serving-w") / "secret_dir" / "mnv3.pdparams")


@pytest.fixture(scope="module")
def module(weights):
    from hubcls import hub

    return hub.Module(name=MODEL, weights=str(weights), backend="dygraph")


def make_client(module, **limits):
    from hubcls.hub.serving import ServeConfig, create_app

    cfg = dict(max_batch_size=4, max_delay_ms=5, max_request_bytes=4 << 20, max_images_per_request=8,
               max_image_pixels=4_000_000, max_request_pixels=10_000_000)
    cfg.update(limits)
    return TestClient(create_app({HUB: module}, ServeConfig(**cfg)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(module):
    with make_client(module) as c:
        yield c


ROUTES = [f"/predict/{HUB}", f"/v1/models/{HUB}:predict"]


# ------------------------------------------------------------------------------ malformed input
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("top_k", ["Infinity", "-Infinity", "NaN", "1e400", "2.5", '"many"', "true", "-1",
                                   "99999999999999999999999"])
def test_bad_top_k_is_400(client, route, top_k):
    body = '{"images": ["%s"], "top_k": %s}' % (b64(jpeg_bytes(photo(0))), top_k)
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, (top_k, r.status_code, r.text[:200])


@pytest.mark.parametrize("route", ROUTES)
def test_deeply_nested_json_is_400(client, route):
    body = b"[" * 100_000 + b"]" * 100_000
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post(route, content=b'{"images": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                    headers={"content-type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe\x00", b'"a string"', b"[1, 2]", b'{"images": "x"}',
                                  b'{"images": [1, 2]}', b'{"images": []}', b'{"images": [null]}'])
def test_malformed_bodies_are_4xx(client, route, body):
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500 or (r.status_code == 200 and all("error" in x for x in _results(r))), \
        (body, r.status_code, r.text[:200])


def _results(r):
    doc = r.json()
    return doc.get("results") or doc.get("predictions") or []


@pytest.mark.parametrize("path", ["/static/%00", "/static/..%2f..%2fetc%2fpasswd", "/static/%2e%2e",
                                  "/static/" + "a" * 5000, "/v1/models/%00", "/predict/%00"])
def test_odd_paths_are_4xx(client, path):
    r = client.get(path) if path.startswith("/static") or path.startswith("/v1") else client.post(path, json={})
    assert 400 <= r.status_code < 500 or (r.status_code == 200 and r.json().get("status") == "111"), \
        (path, r.status_code)


def test_bad_multipart_is_400(client):
    r = client.post(ROUTES[1], content=b"--x\r\nContent-Disposition: form-data\r\n\r\n",
                    headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= r.status_code < 500
    r = client.post(ROUTES[1], content=b"junk", headers={"content-type": "multipart/form-data"})
    assert 400 <= r.status_code < 500


# ------------------------------------------------------------------------------ body limits
def _chunks(total, size=1 << 16):
    sent = 0
    while sent < total:
        yield b"[" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("method, path", [("post", ROUTES[0]), ("post", ROUTES[1]), ("get", "/health/live"),
                                          ("get", "/v1/models"), ("post", "/no/such/route")])
def test_over_limit_bodies_get_413_on_every_route(client, method, path):
    # chunked (no Content-Length): the limit is enforced while the body streams
    r = client.request(method, path, content=_chunks(5 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413, (path, r.status_code, r.text[:200])
    # declared too big: refused from the header
    r = client.request(method, path, content=b"x" * (5 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_invalid_content_length_is_400(client):
    from hubcls.hub.serving import _RequestGuard

    sent = []

    async def app(scope, receive, send):  # never reached
        raise AssertionError

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    import asyncio

    guard = _RequestGuard(app, limit=100, body_timeout=1)
    asyncio.run(guard({"type": "http", "headers": [(b"content-length", b"12abc")]}, receive, send))
    assert sent[0]["status"] == 400


# ------------------------------------------------------------------------------ counts and pixels
def test_image_count_is_checked_before_any_base64_is_decoded(client, monkeypatch):
    import hubcls.data.inputs as inputs
    import hubcls.hub.serving as serving

    calls = []
    real = inputs.b64decode_image
    counting = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(inputs, "b64decode_image", counting)  # what deploy.pipeline.from_base64 calls
    monkeypatch.setattr(serving, "b64decode_image", counting)
    one = b64(jpeg_bytes(photo(0)))
    for route in ROUTES:
        r = client.post(route, json={"images": [one] * 9})
        assert r.status_code == 413 and "limit is 8" in r.text
    assert calls == []  # refused from the count alone
    files = [("images", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(12)]
    assert client.post(ROUTES[1], files=files).status_code == 413


@pytest.fixture(scope="module")
def bomb_request():
    """The finding: 8 base64 13000x13000 grey PNGs (each under Pillow's own limit), ~1.8 MB."""
    return {"images": [b64(grey_png(13000, 13000))] * 8, "top_k": 1}


def test_pixel_budget_refuses_before_decoding(module, bomb_request, monkeypatch):
    import hubcls.data.decode as decode

    decodes = []
    real = decode.read_image
    monkeypatch.setattr(decode, "read_image", lambda *a, **k: decodes.append(1) or real(*a, **k))
    with make_client(module, max_request_bytes=20 << 20, max_images_per_request=64, max_image_pixels=40_000_000,
                     max_request_pixels=100_000_000) as c:
        t0 = time.perf_counter()
        for route in ROUTES:
            r = c.post(route, json=bomb_request)
            assert r.status_code == 413 and "pixels" in r.text, r.text[:300]
        files = [("images", (f"{i}.png", grey_png(13000, 13000), "image/png")) for i in range(8)]
        r = c.post(ROUTES[1], files=files)
        assert r.status_code == 413
        assert time.perf_counter() - t0 < 20
    assert decodes == []


def test_per_image_limit_is_a_per_image_error(module):
    big = grey_png(3000, 2000)  # 6 M pixels > 4 M per image, < 10 M per request
    good = jpeg_bytes(photo(1))
    with make_client(module) as c:
        r = c.post(ROUTES[0], json={"images": [b64(good), b64(big), b64(good)], "top_k": 2})
        assert r.status_code == 200
        res = r.json()["results"]
        assert "error" in res[1] and "6000000 pixels" in res[1]["error"]
        assert res[0] == res[2] and "error" not in res[0]


def test_images_are_decoded_one_at_a_time(module):
    """prepare() never holds two full-size decodes: 8 PNGs of 12 MB each decoded stay under ~2 of them."""
    rng = np.random.default_rng(0)
    pngs = []
    for _i in range(8):
        buf = io.BytesIO()
        from PIL import Image

        Image.fromarray(rng.integers(0, 255, (2000, 2000, 3), dtype=np.uint8)).save(buf, "PNG", compress_level=0)
        pngs.append(buf.getvalue())
    pipe = module.pipeline
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        batch, errors = pipe.prepare(pngs, "RGB")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert batch.shape[0] == 8 and not any(errors)
    one = 2000 * 2000 * 3
    assert peak < 3 * one, f"peak {peak / 1e6:.0f} MB while preprocessing 8 images of {one / 1e6:.0f} MB"
    ref = np.stack([pipe.preprocess([pipe.decode([p], "RGB")[0]])[0] for p in pngs[:2]])
    np.testing.assert_array_equal(batch[:2], ref)


# ------------------------------------------------------------------------------ host, paths
def test_host_allow_list(module):
    with make_client(module, allowed_hosts=["good.example", "127.0.0.1"]) as c:
        assert c.get("/health/live", headers={"host": "evil.example"}).status_code == 400
        assert c.get("/health/live", headers={"host": "good.example"}).status_code == 200
        r = c.post(ROUTES[0], json={"images": [b64(jpeg_bytes(photo(0)))]}, headers={"host": "evil.example"})
        assert r.status_code == 400
    with make_client(module) as c:  # default: any host
        assert c.get("/health/live", headers={"host": "anything.example"}).status_code == 200


def test_no_server_paths_in_responses(client, weights):
    secret = str(weights.parent)
    texts = [client.get("/v1/models").text, client.get(f"/v1/models/{HUB}").text,
             client.post(ROUTES[0], json={"images": ["%%%", b64(b"junk")]}).text,
             client.post(ROUTES[1], json={"images": ["%%%", b64(b"junk")]}).text,
             client.get("/static/nope").text]
    for t in texts:
        assert secret not in t and "secret_dir" not in t, t[:300]
    assert json.loads(texts[0])["models"][0]["weights"] == "mnv3.pdparams"


# ------------------------------------------------------------------------------ a real server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    s = ServeProcess(["--head-timeout", "2", "--body-timeout", "3", "--max-connections", "24", "--keep-alive", "2"],
                     log)
    yield s
    s.close()


def _get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def _post(url, payload, timeout=120):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.timeout(120)
def test_slowloris_connections_are_closed_and_service_continues(server):
    """120 clients each sending a request head one byte at a time: the server closes every one
    after --head-timeout (2 s) and keeps answering real requests."""
    socks = []
    for _ in range(120):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    t0 = time.monotonic()
    closed = 0
    deadline = t0 + 15
    alive = list(socks)
    while alive and time.monotonic() < deadline:
        for s in list(alive):
            try:
                s.sendall(b"X")  # one more header byte
                s.settimeout(0.01)
                if s.recv(1024) == b"":
                    raise ConnectionResetError
            except socket.timeout:
                continue
            except OSError:
                alive.remove(s)
                closed += 1
        time.sleep(0.2)
    elapsed = time.monotonic() - t0
    for s in socks:
        s.close()
    assert closed == 120, f"{120 - closed} slowloris connections still open after {elapsed:.1f} s"
    assert elapsed < 8
    assert _get(f"{server.base}/health/live")[0] == 200


@pytest.mark.timeout(60)
def test_connection_cap(server):
    """More open connections than --max-connections: new requests get 503, not a pile-up; once the
    idle ones time out, service is back."""
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(30)]
    try:
        time.sleep(0.2)
        resp = raw_request(server.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(resp) == 503
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    assert _get(f"{server.base}/health/live")[0] == 200


@pytest.mark.timeout(60)
def test_slow_body_gets_408(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        s.sendall(f"POST /predict/{HUB} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 1000\r\n\r\n".encode())
        t0 = time.monotonic()
        resp = b""
        for _ in range(60):
            try:
                s.sendall(b" ")
            except OSError:
                break
            s.settimeout(0.25)
            try:
                chunk = s.recv(65536)
                if not chunk:
                    break
                resp += chunk
                if b"\r\n\r\n" in resp:
                    break
            except socket.timeout:
                pass
        assert status_of(resp) == 408, resp[:200]
        assert time.monotonic() - t0 < 8  # --body-timeout 3


@pytest.mark.timeout(180)
def test_event_loop_stays_responsive_under_big_bodies(server):
    """4 concurrent ~19 MiB JSON bodies (the finding stalled /health/live for 10.5 s): JSON and
    base64 work runs in the decode pool, so health checks keep answering."""
    blob = b64(np.random.default_rng(1).bytes(14 << 20))  # ~18.7 MiB of base64
    payload = json.dumps({"images": [blob], "top_k": 1}).encode()
    latencies, stop = [], threading.Event()

    def probe():
        while not stop.is_set():
            t = time.perf_counter()
            _get(f"{server.base}/health/live", timeout=30)
            latencies.append(time.perf_counter() - t)
            time.sleep(0.02)

    def post():
        req = urllib.request.Request(f"{server.base}/predict/{HUB}", data=payload,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())

    p = threading.Thread(target=probe)
    p.start()
    try:
        with ThreadPoolExecutor(4) as ex:
            results = list(ex.map(lambda _: post(), range(4)))
    finally:
        stop.set()
        p.join()
    assert all(code == 200 and "error" in body["results"][0] for code, body in results), \
        [(code, str(body)[:200]) for code, body in results]
    print(f"health latency max {max(latencies):.3f} s, median {sorted(latencies)[len(latencies) // 2]:.3f} s")
    # the finding: a 10.5 s stall. Bounds leave room for a loaded shared machine (load ~20 on 2
    # cores measured max 0.65-1.1 s, median 0.03 s)
    assert latencies and max(latencies) < 3.0, f"/health/live took up to {max(latencies):.2f} s"
    assert sorted(latencies)[len(latencies) // 2] < 0.5


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_memory_hostile_request_and_burst(tmp_path, bomb_request):
    """The finding (8 x 13000^2 grey PNGs in a ~2 MB body grew the server by 5.2 GB): now a 4xx with
    the server's peak RSS under +1 GB, and RSS back within 20% of its warm baseline after the
    hostile request and after a 300-request burst."""
    s = ServeProcess([], tmp_path / "serve.log", cap_bytes=6 << 30)
    try:
        good = {"images": [b64(jpeg_bytes(photo(i))) for i in range(4)], "top_k": 3}
        for _ in range(20):  # warm: allocator pools, model, batcher threads
            assert _post(f"{s.base}/predict/{HUB}", good)[0] == 200
        time.sleep(1.0)
        baseline = s.memory()["VmRSS"]
        has_peak = reset_peak(s.proc.pid)
        start = s.memory()["VmRSS"]
        code, body = _post(f"{s.base}/predict/{HUB}", bomb_request)
        assert 400 <= code < 500, (code, body)
        code, _ = _post(f"{s.base}/v1/models/{HUB}:predict", bomb_request)
        assert 400 <= code < 500
        mem = s.memory()
        peak = mem["VmHWM"] if has_peak else s.peak_seen
        assert peak - start < 1 << 30, f"peak grew by {(peak - start) / 2**20:.0f} MiB"
        assert mem["VmRSS"] < 1.2 * baseline, f"RSS {mem['VmRSS'] / 2**20:.0f} MiB vs baseline {baseline / 2**20:.0f}"
        # 300 requests, 16 at a time, mixed sizes
        imgs = [b64(jpeg_bytes(photo(i))) for i in range(4)]
        bigger = b64(jpeg_bytes(np.tile(photo(2), (4, 4, 1))))

        def one(i):
            payload = {"images": imgs[: 1 + i % 4] + ([bigger] if i % 10 == 0 else []), "top_k": 2}
            return _post(f"{s.base}/predict/{HUB}", payload)[0]

        with ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(one, range(300)))
        assert set(codes) <= {200, 503} and codes.count(200) >= 250, codes
        time.sleep(2.0)
        after = s.memory()["VmRSS"]
        assert after < 1.2 * baseline, f"RSS {after / 2**20:.0f} MiB after the burst vs baseline {baseline / 2**20:.0f}"
        assert not s.killed_for_memory
        print(f"baseline {baseline / 2**20:.0f} MiB, hostile peak +{(peak - start) / 2**20:.0f} MiB, "
              f"after burst {after / 2**20:.0f} MiB")
    finally:
        s.close()
