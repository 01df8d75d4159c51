"""The one downloader: verified, bounded, cached. Used for weights (hubcls.models), datasets
(hubcls.data) and anything else hubcls fetches; it sits below every layer so all of them can.

    from hubcls._download import download
    path = download(url, sha256=None, subdir="weights", validate=check_fn)

What it guarantees (docs/security.md lists the threat model):

* One cache name per URL: ``$HUBCLS_HOME/<subdir>/<host>/<path of the URL>`` (``HUBCLS_HOME``
  defaults to ``~/.cache/hubcls``). The key is the official URL even when a mirror serves it.
* A file enters the cache only complete and checked: bytes go to ``<file>.part``; the transfer must
  reach the Content-Length (or the known/recorded size), match the sha256 when one is given or was
  recorded, and pass ``validate`` (the caller's parser: weights must load, archives must list);
  only then is it renamed into place. A server that sends no Content-Length is accepted only when the
  size is known or the content parses.
* Trust on first use: the sha256 and size of every file are recorded the first time it enters the
  cache (``$HUBCLS_HOME/known_files/``); every later use of the cached file and every later download
  of the same URL (from any mirror) must match the record.
* ``http://`` is refused (for the URL, the mirror endpoint and every redirect) unless
  ``HUBCLS_ALLOW_HTTP=1``; https certificates are verified.
* Bounded: a quick reachability probe (DNS + TCP connect, ``HUBCLS_CONNECT_TIMEOUT``, default 5 s) so
  an offline machine fails in seconds, not minutes; a stall/low-speed limit per read
  (``HUBCLS_DOWNLOAD_TIMEOUT``, default 30 s: a window in which fewer than 1 KiB/s arrive ends the
  attempt); an overall deadline including retries (``HUBCLS_DOWNLOAD_DEADLINE``, default 1800 s); a
  size cap (``HUBCLS_DOWNLOAD_MAX_BYTES``, default 8 GiB); a lock timeout for processes waiting on
  another's download of the same file (``HUBCLS_LOCK_TIMEOUT``, default 1800 s).
* Retries with backoff for transient failures (dropped connections, 5xx), each announced on stderr;
  an interrupted transfer of known length keeps its ``.part`` and the next attempt resumes it with a
  Range request. Every message says only what happened (a ``.part`` is mentioned only if kept).
* ``HUBCLS_OFFLINE=1`` never touches the network; ``HUBCLS_MODEL_ENDPOINT`` replaces the official
  host (``https://paddle-imagenet-models-name.bj.bcebos.com``) in every URL.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from .errors import DownloadError, HostUnreachableError, OfflineError

OFFICIAL_HOSTS = ("https://paddle-imagenet-models-name.bj.bcebos.com", "http://paddle-imagenet-models-name.bj.bcebos.com")
CHUNK = 1 << 16
MIN_SPEED = 1024  # bytes/s averaged over one HUBCLS_DOWNLOAD_TIMEOUT window
RECORDS = "known_files"
_TRUE = ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------------------------
# settings
def hubcls_home() -> Path:
    """The cache root: ``$HUBCLS_HOME``, default ``~/.cache/hubcls``."""
    return Path(os.environ.get("HUBCLS_HOME") or Path.home() / ".cache" / "hubcls").expanduser()


def is_offline() -> bool:
    """True when ``HUBCLS_OFFLINE`` forbids the network (cache only)."""
    return os.environ.get("HUBCLS_OFFLINE", "").strip().lower() in _TRUE


def http_allowed() -> bool:
    """True when ``HUBCLS_ALLOW_HTTP`` allows plain-http downloads (a mirror on a trusted network)."""
    return os.environ.get("HUBCLS_ALLOW_HTTP", "").strip().lower() in _TRUE


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DownloadError(f"{name}={raw!r} is not a number of seconds/bytes") from None
    if value <= 0:
        raise DownloadError(f"{name}={raw!r} must be positive")
    return value


@dataclass
class Limits:
    """Every bound of one download; defaults from the environment (see the module docstring)."""

    timeout: float          # per read / connect, and the low-speed window
    deadline: float         # whole download including retries
    lock_timeout: float     # waiting for another process's download of the same file
    connect_timeout: float  # the reachability probe
    max_bytes: int

    @classmethod
    def from_env(cls, timeout: Optional[float] = None, deadline: Optional[float] = None,
                 lock_timeout: Optional[float] = None) -> "Limits":
        """The limits of one download: explicit arguments win over the environment's defaults."""
        return cls(
            timeout=float(timeout) if timeout is not None else _env_float("HUBCLS_DOWNLOAD_TIMEOUT", 30.0),
            deadline=float(deadline) if deadline is not None else _env_float("HUBCLS_DOWNLOAD_DEADLINE", 1800.0),
            lock_timeout=float(lock_timeout) if lock_timeout is not None else _env_float("HUBCLS_LOCK_TIMEOUT", 1800.0),
            connect_timeout=_env_float("HUBCLS_CONNECT_TIMEOUT", 5.0),
            max_bytes=int(_env_float("HUBCLS_DOWNLOAD_MAX_BYTES", float(8 << 30))),
        )


def resolve_url(url: str) -> str:
    """Apply HUBCLS_MODEL_ENDPOINT (mirror base URL) to an official URL."""
    endpoint = os.environ.get("HUBCLS_MODEL_ENDPOINT", "").strip()
    if endpoint:
        for host in OFFICIAL_HOSTS:
            if url.startswith(host + "/"):
                return endpoint.rstrip("/") + url[len(host):]
    return url


# ---------------------------------------------------------------------------------------------
# names
_SAFE = re.compile(r"[^A-Za-z0-9._~+=-]")


def cache_path(url: str, subdir: str = "weights") -> Path:
    """``$HUBCLS_HOME/<subdir>/<host>/<URL path>``: a distinct file for every URL."""
    parts = urllib.parse.urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if not segments or not parts.netloc:
        raise DownloadError(f"cannot derive a file name from URL {url!r}")
    clean = []
    for s in [parts.netloc.lower()] + segments:
        s = _SAFE.sub("_", urllib.parse.unquote(s))
        if s in (".", "..") or not s.strip("."):
            raise DownloadError(f"URL {url!r} has a path segment {s!r} that cannot be a cache name")
        clean.append(s[:200])
    if parts.query:  # a different query is a different URL: keep the suffix, add a short hash
        stem, dot, suffix = clean[-1].partition(".")
        clean[-1] = f"{stem}-{hashlib.sha256(parts.query.encode()).hexdigest()[:10]}{dot}{suffix}"
    return hubcls_home() / subdir / Path(*clean)


def record_path(url: str) -> Path:
    """Where the trust-on-first-use record of ``url`` lives."""
    return hubcls_home() / RECORDS / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")


def _lock_path(dest: Path) -> Path:
    return hubcls_home() / ".locks" / (hashlib.sha256(str(dest.resolve()).encode()).hexdigest()[:32] + ".lock")


def sha256_file(path: Union[str, os.PathLike], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# trust-on-first-use records
def read_record(url: str) -> Optional[dict]:
    """The trust-on-first-use record of ``url`` (``url``, ``sha256``, ``size``, ``source``,
    ``recorded``) or None; a damaged record is a DownloadError that says how to reset it."""
    p = record_path(url)
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DownloadError(f"the checksum record {p} of {url} is unreadable ({exc}); delete it to "
                            f"record the file again on its next download") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("sha256"), str) or not isinstance(rec.get("size"), int):
        raise DownloadError(f"the checksum record {p} of {url} is malformed; delete it to record the file again")
    return rec


def _write_record(url: str, sha256: str, size: int, source: str) -> None:
    p = record_path(url)
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = {"url": url, "sha256": sha256, "size": size, "source": source,
           "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, p)


@dataclass
class _Expect:
    sha256: Optional[str]
    size: Optional[int]
    origin: str  # what the expectation comes from, for messages
    from_record: bool = False


_RECORD_HINT = (" If the publisher really replaced the file, delete the record (named above) to accept the "
                "new one on its next download.")


def _expectation(url, sha256, size) -> _Expect:
    if sha256 or size is not None:
        return _Expect(sha256.lower() if sha256 else None, size, "the published checksum")
    rec = read_record(url)
    if rec is not None:
        return _Expect(rec["sha256"].lower(), rec["size"],
                       f"the record of its first download ({rec.get('recorded', '?')}, {record_path(url)})", True)
    return _Expect(None, None, "")


def _check_file(path: Path, exp: _Expect, validate: Optional[Callable]) -> Optional[str]:
    """None when ``path`` is acceptable, else the reason it is not."""
    actual = path.stat().st_size
    if exp.size is not None and actual != exp.size:
        return f"{actual} bytes where {exp.origin} says {exp.size}"
    if exp.sha256:
        digest = sha256_file(path)
        if digest != exp.sha256:
            return f"sha256 {digest} where {exp.origin} says {exp.sha256}"
    elif validate is not None:
        try:
            validate(path)
        except Exception as exc:  # noqa: BLE001 - the validator's own error says why
            return f"not a valid file of its kind ({_first_line(exc)})"
    return None


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def cached(url: str, dest: Union[None, str, os.PathLike] = None, sha256: Optional[str] = None,
           size: Optional[int] = None, subdir: str = "weights",
           validate: Optional[Callable[[Path], object]] = None) -> Optional[Path]:
    """The verified cached copy of ``url`` or None; never touches the network. A copy that fails
    verification is deleted (it would fail every later use too). A file placed in the cache by
    hand is checked with ``validate`` and recorded on first use."""
    dest = Path(dest) if dest is not None else cache_path(url, subdir)
    if not dest.is_file():
        return None
    exp = _expectation(url, sha256, size)
    reason = _check_file(dest, exp, validate)
    if reason is not None:
        dest.unlink(missing_ok=True)
        _say(f"hubcls: removed the cached {dest} ({reason})")
        return None
    if not exp.sha256:
        _write_record(url, sha256_file(dest), dest.stat().st_size, source=f"file placed at {dest}")
    return dest


# ---------------------------------------------------------------------------------------------
# network
class _Unreachable(Exception):
    """The host (or proxy) did not answer the probe: retrying will not help."""


class _Fatal(Exception):
    """A failure retrying cannot fix (HTTP 4xx, refused redirect, certificate, size cap)."""

    mismatch = False  # the server's file is not the expected one


class _Transient(Exception):
    """A failure worth another attempt (dropped connection, stall, 5xx)."""


_PROBES: dict = {}  # (host, port) -> (time, failure reason); failures are remembered briefly
_PROBE_TTL = 30.0


def _probe_target(url: str):
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host or ""):
        pp = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        return pp.hostname, pp.port or 80, f"proxy {pp.hostname}:{pp.port or 80}"
    return host, port, f"{host}:{port}"


def probe(url: str, timeout: float) -> None:
    """Raise _Unreachable unless the URL's host (or its proxy) accepts a TCP connection within
    ``timeout`` seconds, DNS lookup included."""
    host, port, what = _probe_target(url)
    key = (host, port)
    hit = _PROBES.get(key)
    if hit and time.monotonic() - hit[0] < _PROBE_TTL:
        raise _Unreachable(hit[1])
    result = {}

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result["ok"] = True
        except socket.gaierror as exc:
            result["err"] = f"{what}: name lookup failed ({exc.strerror or exc})"
        except OSError as exc:
            result["err"] = f"{what}: {exc.strerror or exc}"

    t = threading.Thread(target=attempt, daemon=True, name="hubcls-probe")
    t.start()
    t.join(timeout)
    if result.get("ok"):
        _PROBES.pop(key, None)
        return
    reason = result.get("err") or f"{what}: no answer within {timeout:g} s"
    _PROBES[key] = (time.monotonic(), reason)
    raise _Unreachable(reason)


class _RedirectPolicy(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme
        if scheme not in ("https", "http") or (scheme == "http" and not http_allowed()):
            raise _Fatal(f"redirected to {newurl}, refused (plain http or another scheme; "
                         f"HUBCLS_ALLOW_HTTP=1 allows http for a trusted network)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_RedirectPolicy)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fetch_once(url: str, part: Path, limits: Limits, deadline_at: float, exp: "_Expect",
                progress: bool, desc: str, seen: dict) -> Optional[int]:
    """One HTTP attempt appending to ``part`` (Range-resume). Returns the total size when the server
    said it (also left in ``seen["total"]``). Raises _Transient / _Fatal / _Deadline."""
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "hubcls", "Accept-Encoding": "identity"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        resp = _OPENER.open(req, timeout=limits.timeout)  # noqa: S310 - https (http only when allowed)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to send: the .part is complete
            return None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise _Fatal(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            raise _Fatal(f"TLS certificate verification failed ({exc.reason.verify_message})") from None
        raise _Transient(str(exc.reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None
    with resp:
        status = getattr(resp, "status", 200)
        length = resp.headers.get("Content-Length")
        length = int(length) if length is not None and length.strip().isdigit() else None
        if start and status == 206:
            mode, done = "ab", start
            total = start + length if length is not None else None
            crange = resp.headers.get("Content-Range", "")
            if "/" in crange and crange.rsplit("/", 1)[1].strip().isdigit():
                total = int(crange.rsplit("/", 1)[1])
        else:  # fresh download, or the server ignored Range: start over
            mode, done, total = "wb", 0, length
        if total is not None:
            seen["total"] = total
        expected_size = exp.size
        if total is not None and expected_size is not None and total != expected_size:
            err = _Fatal(f"the server announces {total} bytes, but the file is known to have {expected_size} "
                         f"bytes ({exp.origin}); nothing was downloaded.")
            err.mismatch = True
            raise err
        cap = expected_size if expected_size is not None else limits.max_bytes
        if total is not None and total > limits.max_bytes:
            raise _Fatal(f"the server announces {total} bytes, over the {limits.max_bytes}-byte cap "
                         f"(HUBCLS_DOWNLOAD_MAX_BYTES)")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=desc, leave=False, disable=None, file=sys.stderr)
        window_t, window_b = time.monotonic(), done
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        chunk = resp.read1(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:  # timeout, reset, IncompleteRead
                        raise _Transient(f"{type(exc).__name__}: {exc or 'read timed out'} after {done} bytes") from None
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    if done > cap:
                        raise _Fatal(f"the server sent more than {cap} bytes"
                                     + (" (the known size)" if expected_size is not None else
                                        " (HUBCLS_DOWNLOAD_MAX_BYTES)"))
                    now = time.monotonic()
                    if now > deadline_at:
                        raise _Deadline(done)
                    if now - window_t >= limits.timeout:
                        if done - window_b < MIN_SPEED * (now - window_t):
                            raise _Transient(f"too slow: {done - window_b} bytes in {now - window_t:.0f} s "
                                             f"(HUBCLS_DOWNLOAD_TIMEOUT={limits.timeout:g})")
                        window_t, window_b = now, done
        finally:
            if bar is not None:
                bar.close()
    if total is not None and done < total:
        raise _Transient(f"connection closed after {done} of {total} bytes")
    return total


class _Deadline(Exception):
    pass


def _check_url(real_url: str) -> str:
    scheme = urllib.parse.urlsplit(real_url).scheme.lower()
    if scheme == "http" and not http_allowed():
        raise DownloadError(
            f"{real_url}: plain http:// is refused (anyone on the path could replace the file); use an "
            f"https:// URL or endpoint, or set HUBCLS_ALLOW_HTTP=1 for a mirror on a network you trust")
    if scheme not in ("http", "https", "file"):
        raise DownloadError(f"unsupported URL scheme in {real_url!r} (https, http when allowed, or file)")
    return scheme


def download(url: str, dest: Union[None, str, os.PathLike] = None, sha256: Optional[str] = None,
             size: Optional[int] = None, subdir: str = "weights", progress: bool = True,
             timeout: Optional[float] = None, retries: int = 3, backoff: float = 1.0,
             deadline: Optional[float] = None, lock_timeout: Optional[float] = None,
             validate: Optional[Callable[[Path], object]] = None) -> Path:
    """Download ``url`` into the cache (or ``dest``) once, verified; returns the local path.

    sha256 / size: the published checksum/size when known (else the first download is recorded and
    later ones must match it). validate: ``fn(path)`` raising when the file is not of the expected
    kind (run before the file enters the cache). timeout / deadline / lock_timeout: seconds,
    defaults from HUBCLS_DOWNLOAD_TIMEOUT / HUBCLS_DOWNLOAD_DEADLINE / HUBCLS_LOCK_TIMEOUT.
    Raises DownloadError (OfflineError with HUBCLS_OFFLINE=1) whose message says what happened.
    """
    if not isinstance(url, str) or not url:
        raise DownloadError(f"invalid URL {url!r}")
    real_url = resolve_url(url)
    scheme = _check_url(real_url)
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(real_url).path))
        if not path.is_file():
            raise DownloadError(f"{real_url}: no such file")
        reason = _check_file(path, _Expect(sha256.lower() if sha256 else None, size, "the published checksum"),
                             None)
        if reason:
            raise DownloadError(f"{real_url}: {reason}")
        return path
    dest = Path(dest) if dest is not None else cache_path(url, subdir)
    hit = cached(url, dest, sha256, size, subdir, validate)
    if hit is not None:
        return hit
    if is_offline():
        raise OfflineError(f"{dest.name} is not in the cache and HUBCLS_OFFLINE=1 forbids downloading "
                           f"it from {real_url}. Download it elsewhere and put it at {dest}")
    limits = Limits.from_env(timeout, deadline, lock_timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(dest)
    lock.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(lock), timeout=limits.lock_timeout):
            hit = cached(url, dest, sha256, size, subdir, validate)  # another process finished it
            if hit is not None:
                return hit
            return _download_locked(url, real_url, dest, _expectation(url, sha256, size), limits, retries,
                                    backoff, validate, progress)
    except Timeout:
        raise DownloadError(f"{dest}: another process has been downloading this file for "
                            f"{limits.lock_timeout:g} s (lock {lock}); wait for it, or raise "
                            f"HUBCLS_LOCK_TIMEOUT") from None


def _download_locked(url, real_url, dest: Path, exp: _Expect, limits: Limits, retries: int, backoff: float,
                     validate, progress: bool) -> Path:
    part = dest.with_name(dest.name + ".part")
    started = time.monotonic()
    deadline_at = started + limits.deadline
    try:
        probe(real_url, min(limits.connect_timeout, limits.deadline))
    except _Unreachable as exc:
        raise HostUnreachableError(f"{real_url}: host unreachable ({exc})") from None
    if progress:
        _say(f"hubcls: downloading {real_url}")
    total, attempt, seen = None, 0, {}
    while True:
        attempt += 1
        try:
            total = _fetch_once(real_url, part, limits, deadline_at, exp, progress, dest.name, seen)
            break
        except _Fatal as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{real_url}: {exc}" + (_RECORD_HINT if exc.mismatch and exp.from_record else "")) from None
        except _Deadline:
            raise DownloadError(f"{real_url}: stopped after {time.monotonic() - started:.0f} s, the download "
                                f"deadline (HUBCLS_DOWNLOAD_DEADLINE={limits.deadline:g})"
                                + _part_note(part, seen.get("total") or exp.size)) from None
        except _Transient as exc:
            wait = backoff * (2 ** (attempt - 1))
            if attempt > retries or time.monotonic() + wait >= deadline_at:
                why = "attempts" if attempt > retries else "attempts before the download deadline"
                raise DownloadError(f"{real_url}: failed after {attempt} {why} (last: {exc})"
                                    + _part_note(part, seen.get("total") or exp.size)) from None
            _say(f"hubcls: {real_url}: {exc}; trying again in {wait:g} s (attempt {attempt + 1} of {retries + 1})")
            time.sleep(wait)
    got = part.stat().st_size
    if total is None and exp.size is None and validate is None:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{real_url}: the server sent {got} bytes without a Content-Length and the file "
                            f"has no known size or format check, so it cannot be known complete; it was "
                            f"not kept")
    reason = _check_file(part, exp, validate)
    if reason is not None:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{real_url}: the downloaded file was refused: {reason}; it was deleted."
                            + (_RECORD_HINT if exp.from_record else ""))
    digest = exp.sha256 or sha256_file(part)
    with open(part, "rb") as f:  # durable before the rename publishes it
        os.fsync(f.fileno())
    os.replace(part, dest)
    if not exp.from_record:
        _write_record(url, digest, got, source=real_url)
    return dest


def _part_note(part: Path, total: Optional[int]) -> str:
    """Keep an interrupted transfer only when it can be resumed (its full length is known and some
    bytes arrived); say exactly what was kept."""
    n = part.stat().st_size if part.exists() else 0
    if total is not None and 0 < n < total:
        return f"; {n} of {total} bytes are kept in {part} and the next call resumes from there"
    part.unlink(missing_ok=True)
    return ""
