"""Helpers of the serving security tests: decompression-bomb PNGs built row by row (no 169 MB
array in the test process), raw-socket clients, and a ``hubcls serve`` child whose memory is read
from /proc and capped by a watchdog."""
from __future__ import annotations

import functools
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from _hub_helpers import MODEL, free_port, wait_http  # noqa: E402,F401


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=None)
def grey_png(width: int, height: int) -> bytes:
    """A valid 8-bit grey PNG of ``width`` x ``height`` zeros, compressed row by row."""
    z = zlib.compressobj(1)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    parts = [z.compress(row) for _ in range(height)] + [z.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def proc_memory(pid: int) -> dict:
    """VmRSS / VmHWM of a process in bytes (Linux /proc)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class ServeProcess:
    """``hubcls serve`` in a child process with a memory watchdog: if its RSS ever exceeds
    ``cap_bytes`` the child is killed (the test fails instead of the machine running out)."""

    def __init__(self, args, log_path, cap_bytes=3 << 30):
        self.port = free_port()
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "hubcls", "serve", "-m", MODEL, "--weights", "random",
                                      "--backend", "dygraph", "--port", str(self.port), *args],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(REPO))
        self.base = f"http://127.0.0.1:{self.port}"
        self.cap = cap_bytes
        self.peak_seen = 0
        self.killed_for_memory = False
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watchdog, daemon=True)
        self._watch.start()
        wait_http(f"{self.base}/health/ready", timeout=240, proc=self.proc)

    def _watchdog(self):
        while not self._stop.is_set() and self.proc.poll() is None:
            try:
                rss = proc_memory(self.proc.pid)["VmRSS"]
            except (OSError, KeyError):
                return
            self.peak_seen = max(self.peak_seen, rss)
            if rss > self.cap:
                self.killed_for_memory = True
                self.proc.kill()
                return
            time.sleep(0.02)

    def memory(self) -> dict:
        return proc_memory(self.proc.pid)

    def close(self):
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def raw_request(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Send bytes on a fresh connection, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and _complete(out):
                break
        return out


def _complete(resp: bytes) -> bool:
    head, _, body = resp.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def status_of(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/") else 0
