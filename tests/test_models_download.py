"""The generic downloader (hubcls._download, also importable as hubcls.hub.download) and pretrained=True, against a real HTTP server on
127.0.0.1 (threaded http.server) serving generated files: normal, slow, interrupted mid-body
(resumed with Range), corrupted (checksum mismatch), concurrent processes (one download), offline
mode, and the HUBCLS_MODEL_ENDPOINT mirror."""
from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from hubcls.errors import DownloadError, OfflineError

pytestmark = pytest.mark.network


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        path = self.path.split("?")[0]
        with srv.lock:
            srv.requests.append((path, self.headers.get("Range")))
        if path not in srv.files:
            self.send_error(404)
            return
        data = srv.files[path]
        behaviour = srv.behaviour.get(path, "normal")
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and behaviour != "no-range":
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour == "interrupt-once" and not srv.interrupted.get(path):
            srv.interrupted[path] = True
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        step = 16384
        for i in range(0, len(body), step):
            self.wfile.write(body[i:i + step])
            if behaviour == "slow":
                time.sleep(0.01)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.files, srv.behaviour, srv.requests, srv.interrupted = {}, {}, [], {}
    srv.lock = threading.Lock()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HUBCLS_OFFLINE", raising=False)
    monkeypatch.delenv("HUBCLS_MODEL_ENDPOINT", raising=False)
    monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")  # the test server is plain http on 127.0.0.1
    return tmp_path / "home"


def payload(n=300_000, seed=0):
    return np.random.RandomState(seed).bytes(n)


def gets(srv, path):
    return [r for r in srv.requests if r[0] == path]


def test_normal_download_is_cached(server, home):
    from hubcls.hub.download import download

    data = payload()
    server.files["/w/a.bin"] = data
    sha = hashlib.sha256(data).hexdigest()
    p = download(server.url + "/w/a.bin", sha256=sha, size=len(data), progress=False)
    assert p == home / "weights" / f"127.0.0.1_{server.server_address[1]}" / "w" / "a.bin"
    assert p.read_bytes() == data
    assert not p.with_name("a.bin.part").exists()
    download(server.url + "/w/a.bin", sha256=sha, progress=False)  # cached: no new request
    assert len(gets(server, "/w/a.bin")) == 1


def test_slow_download_with_progress(server, capsys):
    from hubcls.hub.download import download

    data = payload(200_000, seed=1)
    server.files["/slow.bin"] = data
    server.behaviour["/slow.bin"] = "slow"
    p = download(server.url + "/slow.bin", progress=True)
    assert p.read_bytes() == data


def test_interrupted_download_resumes_with_range(server):
    from hubcls.hub.download import download

    data = payload(500_000, seed=2)
    server.files["/cut.bin"] = data
    server.behaviour["/cut.bin"] = "interrupt-once"
    p = download(server.url + "/cut.bin", sha256=hashlib.sha256(data).hexdigest(), progress=False, backoff=0.01)
    assert p.read_bytes() == data
    reqs = gets(server, "/cut.bin")
    assert len(reqs) == 2
    assert reqs[0][1] is None and reqs[1][1] == f"bytes={len(data) // 3}-"


def test_partial_file_from_a_killed_process_is_resumed(server, home):
    from hubcls.hub.download import download

    data = payload(100_000, seed=3)
    server.files["/k.bin"] = data
    from hubcls.hub.download import cache_path

    part = cache_path(server.url + "/k.bin").with_name("k.bin.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:40_000])
    p = download(server.url + "/k.bin", progress=False)
    assert p.read_bytes() == data
    assert gets(server, "/k.bin") == [("/k.bin", "bytes=40000-")]


def test_server_ignoring_range_restarts(server, home):
    from hubcls.hub.download import download

    data = payload(50_000, seed=4)
    server.files["/nr.bin"] = data
    server.behaviour["/nr.bin"] = "no-range"
    from hubcls.hub.download import cache_path

    part = cache_path(server.url + "/nr.bin").with_name("nr.bin.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage that must not survive")
    assert download(server.url + "/nr.bin", progress=False).read_bytes() == data


def test_corrupted_download_is_deleted_and_reported(server, home):
    from hubcls.hub.download import download

    server.files["/bad.bin"] = payload(10_000, seed=5)
    wrong = hashlib.sha256(b"something else").hexdigest()
    from hubcls.hub.download import cache_path

    with pytest.raises(DownloadError, match="refused: sha256 .* where the published checksum says.*deleted"):
        download(server.url + "/bad.bin", sha256=wrong, progress=False)
    dest = cache_path(server.url + "/bad.bin")
    assert not dest.exists()
    assert not dest.with_name("bad.bin.part").exists()
    with pytest.raises(DownloadError, match="known to have 123"):
        download(server.url + "/bad.bin", size=123, progress=False)


def test_cached_file_with_wrong_checksum_is_replaced(server, home):
    from hubcls.hub.download import download

    data = payload(20_000, seed=6)
    server.files["/c.bin"] = data
    from hubcls.hub.download import cache_path

    dest = cache_path(server.url + "/c.bin")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"stale")
    p = download(server.url + "/c.bin", sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert p.read_bytes() == data


def test_missing_file_is_a_download_error(server):
    from hubcls.hub.download import download

    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url + "/nope.bin", progress=False)


def test_concurrent_processes_download_once(server, home, tmp_path):
    data = payload(400_000, seed=7)
    server.files["/cc.bin"] = data
    server.behaviour["/cc.bin"] = "slow"
    script = textwrap.dedent(f"""
        import sys
        from hubcls.hub.download import download
        p = download({server.url + '/cc.bin'!r}, sha256={hashlib.sha256(data).hexdigest()!r}, progress=False)
        print(p)
    """)
    env = dict(os.environ, HUBCLS_HOME=str(home), HUBCLS_ALLOW_HTTP="1")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-500:] for o in outs]
    paths = {o[0].decode().strip() for o in outs}
    from hubcls.hub.download import cache_path

    assert paths == {str(cache_path(server.url + "/cc.bin"))}
    assert cache_path(server.url + "/cc.bin").read_bytes() == data
    assert len(gets(server, "/cc.bin")) == 1


def test_offline_mode_names_file_and_destination(server, home, monkeypatch):
    from hubcls.hub.download import cache_path, download

    server.files["/off.bin"] = b"x"
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    with pytest.raises(OfflineError) as ei:
        download(server.url + "/off.bin", progress=False)
    msg = str(ei.value)
    dest = cache_path(server.url + "/off.bin")
    assert "off.bin" in msg and str(dest) in msg and "HUBCLS_OFFLINE" in msg
    assert gets(server, "/off.bin") == []
    # a cached file is fine offline
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"x")
    assert download(server.url + "/off.bin", progress=False).read_bytes() == b"x"


def test_mirror_endpoint_rewrites_official_host(server, monkeypatch):
    from hubcls.hub.download import download, resolve_url

    official = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/X_pretrained.pdparams"
    monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", server.url + "/mirror/")
    assert resolve_url(official) == server.url + "/mirror/dygraph/X_pretrained.pdparams"
    assert resolve_url("https://example.com/a.bin") == "https://example.com/a.bin"
    server.files["/mirror/dygraph/X_pretrained.pdparams"] = b"mirrored"
    assert download(official, progress=False).read_bytes() == b"mirrored"


# ---------------------------------------------------------------------------------------------
# create_model(..., pretrained=True) end to end through the mirror
def _official_path(url):
    return url.replace("https://paddle-imagenet-models-name.bj.bcebos.com", "")


def test_pretrained_true_downloads_official_file(server, monkeypatch, home):
    paddle = pytest.importorskip("paddle")
    import hubcls

    src = hubcls.create_model("ResNet18")
    src.eval()
    tmp = home.parent / "src.pdparams"
    paddle.save(src.state_dict(), str(tmp))
    cfg = hubcls.models.resolve("ResNet18")
    # only the legendary file is served: the 2.0 URL 404s and the loader falls back to it
    server.files[_official_path(cfg.url_legendary)] = tmp.read_bytes()
    monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", server.url)
    m = hubcls.create_model("resnet18_imagenet", pretrained=True)
    m.eval()
    x = paddle.randn([1, 3, 64, 64])
    np.testing.assert_allclose(m(x).numpy(), src(x).numpy(), atol=1e-6)
    from hubcls.hub.download import cache_path

    assert cache_path(cfg.url_legendary).is_file()
    assert not cache_path(cfg.url).exists()  # the 2.0 URL's 404 left nothing under its own name
    # offline now works from the cache
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    hubcls.create_model("ResNet18", pretrained=True)


def test_pretrained_true_offline_without_cache(monkeypatch):
    import hubcls
    from hubcls.errors import WeightsUnavailableError
    from hubcls.hub.download import cache_path

    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="(?s)ResNet50_vd_ssld.*HUBCLS_OFFLINE=1.*into the cache") as ei:
        hubcls.create_model("ResNet50_vd_ssld", pretrained=True)
    assert ei.value.offline and str(cache_path(hubcls.models.resolve("ResNet50_vd_ssld").url)) in str(ei.value)


def test_pretrained_url(server, home):
    paddle = pytest.importorskip("paddle")
    import hubcls

    src = hubcls.create_model("ResNet18_vd", num_classes=5)
    tmp = home.parent / "ft.pdparams"
    paddle.save(src.state_dict(), str(tmp))
    server.files["/my/ft.pdparams"] = tmp.read_bytes()
    m = hubcls.create_model("ResNet18_vd", num_classes=5, pretrained=server.url + "/my/ft.pdparams")
    np.testing.assert_array_equal(m.fc.weight.numpy(), src.fc.weight.numpy())
