"""Verified, bounded downloads against a hostile mirror on 127.0.0.1: crafted, truncated (no
Content-Length), slow and wrong files are refused every time and the cache stays clean; http is
refused unless allowed; offline/unreachable hosts fail in seconds with one message giving the fixes,
the same from the API and the CLI."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _crafted  # noqa: E402
from _mirror import Mirror  # noqa: E402

from hubcls.errors import DownloadError, WeightsUnavailableError  # noqa: E402

paddle = pytest.importorskip("paddle")
pytestmark = pytest.mark.network

OFFICIAL = "https://paddle-imagenet-models-name.bj.bcebos.com"
MODEL = "ResNet18"


@pytest.fixture
def mirror(monkeypatch):
    m = Mirror()
    monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", m.url)
    monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")
    yield m
    m.close()


@pytest.fixture(scope="module")
def weights_bytes(tmp_path_factory):
    """A real ResNet18 .pdparams (paddle.save of the model's state dict) and a different one."""
    import hubcls

    d = tmp_path_factory.mktemp("w")
    out = []
    for seed in (0, 1):
        paddle.seed(seed)
        m = hubcls.create_model(MODEL)
        paddle.save(m.state_dict(), str(d / f"{seed}.pdparams"))
        out.append((d / f"{seed}.pdparams").read_bytes())
    return out


def _cfg():
    import hubcls

    return hubcls.models.resolve(MODEL)


def _paths(url):
    return url[len(OFFICIAL):]


def _serve_both(mirror, data, behaviour="normal"):
    cfg = _cfg()
    for u in cfg.weight_urls():
        mirror.files[_paths(u)] = data
        mirror.behaviour[_paths(u)] = behaviour
    return cfg


def _cache_files(home):
    """Everything in the weights cache except the lock/record bookkeeping."""
    root = home / "weights"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _create():
    import hubcls

    return hubcls.create_model(MODEL, pretrained=True)


# ---------------------------------------------------------------------------------------------
def test_good_mirror_file_is_cached_and_recorded(mirror, weights_bytes, home):
    from hubcls._download import cache_path, read_record

    cfg = _serve_both(mirror, weights_bytes[0])
    m = _create()
    assert m is not None
    cached = cache_path(cfg.url)
    assert cached.read_bytes() == weights_bytes[0]
    rec = read_record(cfg.url)
    assert rec["sha256"] == hashlib.sha256(weights_bytes[0]).hexdigest() and rec["size"] == len(weights_bytes[0])
    assert _cache_files(home) == [str(cached.relative_to(home / "weights"))]
    n = len(mirror.requests())
    _create()  # cached: no request
    assert len(mirror.requests()) == n


def test_crafted_file_is_refused_and_runs_nothing(mirror, home, tmp_path):
    marker = tmp_path / "MARKER"
    for kind in ("state_dict_with_poisoned_value", "os_system"):
        _serve_both(mirror, _crafted.payloads(marker)[kind])
        for _ in range(2):  # refused each time, not only the first
            with pytest.raises(WeightsUnavailableError, match="refused"):
                _create()
        assert not marker.exists()
        assert _cache_files(home) == []


def test_truncated_file_without_content_length_never_enters_the_cache(mirror, weights_bytes, home):
    _serve_both(mirror, weights_bytes[0], "truncated-no-length")
    for _ in range(2):
        with pytest.raises(WeightsUnavailableError, match="not a valid file"):
            _create()
        assert _cache_files(home) == []
    # the mirror is fixed: the next call downloads the whole file (nothing stale blocks it)
    _serve_both(mirror, weights_bytes[0], "no-length")
    _create()
    assert len(_cache_files(home)) == 1


def test_slow_server_hits_the_deadline(mirror, weights_bytes, home, monkeypatch):
    """1 byte every 2 s: each attempt ends at the stall timeout, the whole download at the deadline."""
    monkeypatch.setenv("HUBCLS_DOWNLOAD_TIMEOUT", "1")
    monkeypatch.setenv("HUBCLS_DOWNLOAD_DEADLINE", "3")
    cfg = _cfg()
    mirror.files[_paths(cfg.url)] = weights_bytes[0]  # the other candidates 404
    mirror.behaviour[_paths(cfg.url)] = "slow:2"
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as ei:
        _create()
    elapsed = time.monotonic() - t0
    assert elapsed < 8, elapsed  # the deadline (3 s) + at most one stall timeout, not forever
    msg = str(ei.value)
    assert "deadline" in msg or "timed out" in msg
    # whatever the message says about partial files is true, and nothing is in the cache as final
    from hubcls._download import cache_path

    for u in _cfg().weight_urls():
        part = cache_path(u).with_name(cache_path(u).name + ".part")
        assert (str(part) in msg) == part.exists()
        assert not cache_path(u).exists()


def test_trickling_server_hits_the_low_speed_limit(mirror, weights_bytes, home, monkeypatch):
    """1 byte every 0.2 s never trips a read timeout; the low-speed window ends it."""
    from hubcls._download import download

    monkeypatch.setenv("HUBCLS_DOWNLOAD_TIMEOUT", "1")
    mirror.files["/t.bin"] = b"x" * 10_000
    mirror.behaviour["/t.bin"] = "slow:0.2"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="too slow"):
        download(mirror.url + "/t.bin", progress=False, retries=1, backoff=0.1)
    assert time.monotonic() - t0 < 8


def test_wrong_file_after_first_use_is_refused(mirror, weights_bytes, home):
    """Trust on first use: once recorded, a mirror serving other bytes under the same URL is refused,
    and so is a cached copy changed on disk."""
    from hubcls._download import cache_path

    cfg = _cfg()
    path = _paths(cfg.url)  # only the 2.0 URL is served (a URL never seen before has no record)
    mirror.files[path] = weights_bytes[0]
    _create()
    cached = cache_path(cfg.url)
    cached.unlink()  # the next use must download again
    # other bytes of the same size (two paddle.save files may or may not differ in size: their
    # parameter names carry process-wide counters, so it depended on the tests run before)
    same_size = bytearray(weights_bytes[0])
    same_size[-100] ^= 0xFF
    mirror.files[path] = bytes(same_size)
    with pytest.raises(WeightsUnavailableError, match=r"sha256 [0-9a-f]{64} where the record of its first download") as ei:
        _create()
    assert "delete the record" in str(ei.value)
    mirror.files[path] = weights_bytes[0] + b"\0" * 16  # another size: refused before downloading
    with pytest.raises(WeightsUnavailableError, match=r"known to have \d+ bytes \(the record of its first download") as ei:
        _create()
    assert "delete the record" in str(ei.value)
    assert _cache_files(home) == []
    # a cached copy altered on disk is removed, not used
    mirror.files[path] = weights_bytes[0]
    _create()
    data = bytearray(cached.read_bytes())
    data[-10] ^= 0xFF
    cached.write_bytes(bytes(data))
    mirror.files[path] = weights_bytes[1]
    with pytest.raises(WeightsUnavailableError):
        _create()
    assert not cached.exists()


def test_wrong_size_against_published_checksum(mirror, weights_bytes, home):
    """A config that knows its file (sha256 + size) refuses another file before downloading it."""
    from hubcls._download import download

    mirror.files["/w/x.pdparams"] = weights_bytes[1]
    good = hashlib.sha256(weights_bytes[0]).hexdigest()
    with pytest.raises(DownloadError, match="known to have"):
        download(mirror.url + "/w/x.pdparams", sha256=good, size=len(weights_bytes[0]) + 1, progress=False)
    with pytest.raises(DownloadError, match="published checksum"):
        download(mirror.url + "/w/x.pdparams", sha256=good, progress=False)
    assert _cache_files(home) == []


def test_http_refused_unless_allowed(mirror, weights_bytes, home, monkeypatch):
    _serve_both(mirror, weights_bytes[0])
    monkeypatch.delenv("HUBCLS_ALLOW_HTTP")
    with pytest.raises(WeightsUnavailableError, match="HUBCLS_ALLOW_HTTP=1"):
        _create()
    assert mirror.requests() == []  # refused before any byte went out


def test_redirect_to_another_scheme_is_refused(mirror, home):
    from hubcls._download import download

    mirror.behaviour["/r.bin"] = "redirect:ftp://127.0.0.1/x.bin"
    with pytest.raises(DownloadError, match="redirected to ftp"):
        download(mirror.url + "/r.bin", progress=False)
    mirror.files["/target.bin"] = b"y" * 100
    mirror.behaviour["/r2.bin"] = f"redirect:{mirror.url}/target.bin"
    assert download(mirror.url + "/r2.bin", progress=False).read_bytes() == b"y" * 100


def test_size_cap(mirror, home, monkeypatch):
    from hubcls._download import download

    monkeypatch.setenv("HUBCLS_DOWNLOAD_MAX_BYTES", "1000")
    mirror.files["/big.bin"] = b"z" * 5000
    with pytest.raises(DownloadError, match="cap"):
        download(mirror.url + "/big.bin", progress=False)
    mirror.behaviour["/big.bin"] = "no-length"
    with pytest.raises(DownloadError, match="more than 1000 bytes"):
        download(mirror.url + "/big.bin", progress=False, validate=lambda p: None)
    assert _cache_files(home) == []


def test_no_length_and_no_check_is_not_kept(mirror, home):
    from hubcls._download import download

    mirror.files["/nl.bin"] = b"q" * 3000
    mirror.behaviour["/nl.bin"] = "no-length"
    with pytest.raises(DownloadError, match="cannot be known complete; it was not kept"):
        download(mirror.url + "/nl.bin", progress=False)
    assert _cache_files(home) == []


def test_retries_are_announced(mirror, home, capsys):
    from hubcls._download import download

    mirror.files["/f.bin"] = b"k" * 2000
    mirror.behaviour["/f.bin"] = "fail-first:2"
    p = download(mirror.url + "/f.bin", progress=False, backoff=0.05)
    assert p.read_bytes() == b"k" * 2000
    err = capsys.readouterr().err
    assert err.count("trying again") == 2 and "HTTP 503" in err


def test_one_cache_name_per_url(mirror, weights_bytes, home):
    """2.0 and legendary files share a base name; each has its own cache file and .part, so one
    URL's 404 cannot delete the other's partial download."""
    from hubcls._download import cache_path

    cfg = _cfg()
    assert Path(cfg.url).name == Path(cfg.url_legendary).name
    assert cache_path(cfg.url) != cache_path(cfg.url_legendary)
    legendary_part = cache_path(cfg.url_legendary).with_name(cache_path(cfg.url_legendary).name + ".part")
    legendary_part.parent.mkdir(parents=True)
    legendary_part.write_bytes(weights_bytes[0][:1000])  # an earlier interrupted download
    mirror.files[_paths(cfg.url_legendary)] = weights_bytes[0]  # the 2.0 URL 404s
    _create()
    assert cache_path(cfg.url_legendary).read_bytes() == weights_bytes[0]
    assert (_paths(cfg.url_legendary), "bytes=1000-") in mirror.requests()  # resumed, not deleted


def test_lock_timeout(mirror, home, monkeypatch):
    from filelock import FileLock

    from hubcls._download import _lock_path, cache_path, download

    url = mirror.url + "/l.bin"
    mirror.files["/l.bin"] = b"l" * 100
    lock = _lock_path(cache_path(url))
    lock.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HUBCLS_LOCK_TIMEOUT", "1")
    script = f"import time; from filelock import FileLock; l = FileLock({str(lock)!r}); l.acquire(); print('held', flush=True); time.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="another process has been downloading"):
            download(url, progress=False)
        assert time.monotonic() - t0 < 5
    finally:
        holder.kill()
        holder.wait()
    with FileLock(str(lock), timeout=5):
        pass  # released by the kill (OS-level lock), so a dead holder never blocks forever
    assert download(url, progress=False).read_bytes() == b"l" * 100


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("endpoint", ["closed-port", "blackhole"])
def test_unreachable_host_fails_fast_with_the_fixes(monkeypatch, home, endpoint):
    from hubcls._download import cache_path

    monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")
    monkeypatch.setenv("HUBCLS_CONNECT_TIMEOUT", "2")
    url = f"http://127.0.0.1:{_closed_port()}" if endpoint == "closed-port" else "http://192.0.2.1:81"
    monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", url)
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as ei:
        _create()
    assert time.monotonic() - t0 < 6  # one probe per host, not 3 URLs x 6 attempts
    msg = str(ei.value)
    assert "unreachable" in msg and "not tried (same unreachable host)" in msg
    for fix in ("pretrained=FILE", "--weights FILE", "HUBCLS_MODEL_ENDPOINT", "HUBCLS_OFFLINE=1",
                str(cache_path(_cfg().url))):
        assert fix in msg, fix
    assert ".part" not in msg  # nothing was kept, so nothing is claimed


def test_same_message_from_api_hub_and_cli(monkeypatch, home, tmp_path):
    from hubcls import hub

    monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")
    monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(WeightsUnavailableError) as api:
        _create()
    with pytest.raises(WeightsUnavailableError) as module:
        hub.Module(name=MODEL)
    assert str(module.value) == str(api.value)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for args in (["serve", "-m", MODEL, "--port", str(_closed_port())], ["export", "-m", MODEL, "-o", str(tmp_path / "x")]):
        r = subprocess.run([sys.executable, "-m", "hubcls", *args], env=env, capture_output=True, text=True,
                           timeout=240, cwd=tmp_path)
        assert r.returncode != 0
        assert str(api.value) in r.stderr, (args, r.stderr[-3000:])


def test_offline_message(monkeypatch, home):
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as ei:
        _create()
    msg = str(ei.value)
    assert ei.value.offline and "HUBCLS_OFFLINE=1 forbids" in msg and "unset HUBCLS_OFFLINE" in msg
    assert "--weights FILE" in msg


def test_file_placed_in_cache_by_hand(weights_bytes, home, monkeypatch, capsys):
    """The message tells users to put the file into the cache: a good file is checked and recorded;
    a bad one is removed with a message and never loaded."""
    from hubcls._download import cache_path, read_record

    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    cfg = _cfg()
    dest = cache_path(cfg.url)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(weights_bytes[0][:5000])
    with pytest.raises(WeightsUnavailableError):
        _create()
    assert not dest.exists() and "removed the cached" in capsys.readouterr().err
    dest.write_bytes(weights_bytes[0])
    _create()
    assert read_record(cfg.url)["sha256"] == hashlib.sha256(weights_bytes[0]).hexdigest()
