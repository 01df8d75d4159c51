"""A hostile mirror on 127.0.0.1: serves generated files normally or crafted, truncated (no
Content-Length), slow, redirected, failing or oversized, as each test asks."""
from __future__ import annotations

import http.server
import threading
import time


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        path = self.path.split("?")[0]
        with srv.lock:
            srv.requests.append((path, self.headers.get("Range")))
            n_seen = sum(1 for p, _ in srv.requests if p == path)
        behaviour = srv.behaviour.get(path, "normal")
        if behaviour.startswith("redirect:"):
            self.send_response(302)
            self.send_header("Location", behaviour[len("redirect:"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if behaviour.startswith("fail-first:"):  # 503 for the first N requests
            if n_seen <= int(behaviour.split(":")[1]):
                self.send_error(503)
                return
            behaviour = "normal"
        if path not in srv.files:
            self.send_error(404)
            return
        data = srv.files[path]
        if behaviour == "truncated-no-length":  # half the file, no Content-Length, then close
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if behaviour == "no-length":  # the whole file, no Content-Length
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour.startswith("slow:"):  # one byte every N seconds
            pause = float(behaviour.split(":")[1])
            for i in range(len(body)):
                if srv.stopping.is_set():
                    return
                try:
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(pause)
            return
        self.wfile.write(body)


class Mirror:
    def __init__(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
        self.srv.daemon_threads = True
        self.srv.files, self.srv.behaviour, self.srv.requests = {}, {}, []
        self.srv.lock = threading.Lock()
        self.srv.stopping = threading.Event()
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    @property
    def files(self):
        return self.srv.files

    @property
    def behaviour(self):
        return self.srv.behaviour

    def requests(self, path=None):
        return [r for r in self.srv.requests if path is None or r[0] == path]

    def close(self):
        self.srv.stopping.set()
        self.srv.shutdown()
        self.srv.server_close()
