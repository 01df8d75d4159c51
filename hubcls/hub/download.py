"""The one downloader: cache, atomic writes, resume, verification, locking, offline mode, mirrors.

    from hubcls.hub.download import download
    path = download(url, sha256=None, subdir="weights")

* Cache: ``$HUBCLS_HOME`` (default ``~/.cache/hubcls``), files under ``<home>/<subdir>/``.
* Atomic: data goes to ``<file>.part`` and is renamed into place only after it verified, so a
  reader never sees half a file.
* Resume: an interrupted transfer (dropped connection, short body, killed process) continues from
  the ``.part`` file with an HTTP ``Range`` request; a server that ignores Range restarts it.
* Verification: ``sha256`` and/or ``size`` when given (plus the server's Content-Length); a file that
  fails is deleted and the DownloadError says so.
* Concurrency: a file lock (``<file>.lock``, filelock) so parallel processes download once; the
  others wait and reuse the result.
* Offline: ``HUBCLS_OFFLINE=1`` never touches the network; a missing file is an OfflineError that
  names it and says where to put it.
* Mirror: ``HUBCLS_MODEL_ENDPOINT=https://mirror.example/paddle`` replaces the official host
  (``https://paddle-imagenet-models-name.bj.bcebos.com``) in every URL.
"""
from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

from ..errors import DownloadError, OfflineError

OFFICIAL_HOSTS = ("https://paddle-imagenet-models-name.bj.bcebos.com", "http://paddle-imagenet-models-name.bj.bcebos.com")
CHUNK = 1 << 16


def hubcls_home() -> Path:
    return Path(os.environ.get("HUBCLS_HOME") or Path.home() / ".cache" / "hubcls").expanduser()


def is_offline() -> bool:
    return os.environ.get("HUBCLS_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_url(url: str) -> str:
    """Apply HUBCLS_MODEL_ENDPOINT (mirror base URL) to an official URL."""
    endpoint = os.environ.get("HUBCLS_MODEL_ENDPOINT", "").strip()
    if endpoint:
        for host in OFFICIAL_HOSTS:
            if url.startswith(host + "/"):
                return endpoint.rstrip("/") + url[len(host):]
    return url


def cache_path(url: str, subdir: str = "weights") -> Path:
    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise DownloadError(f"cannot derive a file name from URL {url!r}")
    return hubcls_home() / subdir / name


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, sha256: Optional[str], size: Optional[int], url: str) -> None:
    actual = path.stat().st_size
    if size is not None and actual != size:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{url}: downloaded {actual} bytes, expected {size}; the bad file was deleted")
    if sha256:
        digest = sha256_file(path)
        if digest.lower() != sha256.lower():
            path.unlink(missing_ok=True)
            raise DownloadError(f"{url}: sha256 mismatch (got {digest}, expected {sha256}); "
                                f"the bad file was deleted")


def _valid_cached(path: Path, sha256: Optional[str], size: Optional[int]) -> bool:
    if not path.is_file():
        return False
    if size is not None and path.stat().st_size != size:
        return False
    if sha256 and sha256_file(path).lower() != sha256.lower():
        return False
    return True


def _fetch_once(url: str, part: Path, timeout: float, progress: bool, desc: str) -> Optional[int]:
    """One HTTP attempt appending to ``part`` (Range-resume). Returns the expected total size if
    known. Raises on network errors or a short body (the caller retries)."""
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "hubcls"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - http(s) URLs only (checked)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to send: the .part is complete
            return start
        raise
    with resp:
        status = getattr(resp, "status", 200)
        length = resp.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if start and status == 206:
            mode, done = "ab", start
            total = start + length if length is not None else None
            crange = resp.headers.get("Content-Range", "")
            if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
                total = int(crange.rsplit("/", 1)[1])
        else:  # fresh download, or the server ignored Range: start over
            mode, done, total = "wb", 0, length
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=desc, leave=False, disable=None)
        try:
            with open(part, mode) as f:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and done < total:
        raise ConnectionError(f"connection closed after {done} of {total} bytes")
    return total


def download(url: str, dest=None, sha256: Optional[str] = None, size: Optional[int] = None,
             subdir: str = "weights", progress: bool = True, timeout: float = 30.0,
             retries: int = 5, backoff: float = 0.5) -> Path:
    """Download ``url`` into the cache (or ``dest``) once, verified; returns the local path."""
    if not isinstance(url, str) or not url:
        raise DownloadError(f"invalid URL {url!r}")
    real_url = resolve_url(url)
    scheme = urllib.parse.urlparse(real_url).scheme
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(real_url).path))
        if not path.is_file():
            raise DownloadError(f"{real_url}: no such file")
        return path
    if scheme not in ("http", "https"):
        raise DownloadError(f"unsupported URL scheme in {real_url!r} (http, https or file)")
    dest = Path(dest) if dest is not None else cache_path(url, subdir)
    if _valid_cached(dest, sha256, size):
        return dest
    if is_offline():
        raise OfflineError(f"{dest.name} is not in the cache and HUBCLS_OFFLINE=1 forbids downloading "
                           f"it from {real_url}. Download it elsewhere and put it at {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(dest) + ".lock"):
        if _valid_cached(dest, sha256, size):  # another process finished it while we waited
            return dest
        part = dest.with_name(dest.name + ".part")
        last_exc = None
        for attempt in range(retries + 1):
            try:
                total = _fetch_once(real_url, part, timeout, progress, dest.name)
                break
            except urllib.error.HTTPError as exc:
                if exc.code in (404, 403, 401, 410):
                    part.unlink(missing_ok=True)
                    raise DownloadError(f"{real_url}: HTTP {exc.code} {exc.reason}") from None
                last_exc = exc
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                last_exc = exc
            time.sleep(backoff * (2 ** attempt))
        else:
            raise DownloadError(f"{real_url}: download failed after {retries + 1} attempts "
                                f"({type(last_exc).__name__}: {last_exc}); the partial file "
                                f"{part} is kept and the next call resumes it")
        if total is not None and size is None and part.stat().st_size != total:
            _verify(part, None, total, real_url)
        _verify(part, sha256, size, real_url)
        os.replace(part, dest)
    return dest
