"""Load test of ``hubcls serve`` on 127.0.0.1: requests/s, p50/p99 latency and server peak RSS at
concurrency 1 and 16, with dynamic batching on and off, next to PaddleHub 2.4's own
``hub serving start`` running the same hubcls module (when tests/install_peers.sh built its venv).

    python benchmarks/bench_serve.py [--model MobileNetV3_small_x0_35] [--requests 200] [--seconds 30]

Every run is bounded: at most --requests requests and --seconds seconds per (server, concurrency).
Weights are generated (official files are not reachable here); speed does not depend on them.
Clients send PaddleHub's protocol (JSON, base64 JPEG, one image per request) so both servers see the
same requests. The server processes are started, measured and stopped by this script.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HUB_VENV = REPO / "build" / "peers" / "paddlehub-venv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo_jpegs(n: int = 8):
    import cv2
    from skimage import data

    out = []
    for fn in (data.astronaut, data.coffee, data.chelsea, data.rocket)[:n]:
        img = fn()[:, :, :3]
        h, w = img.shape[:2]
        s = 400 / max(h, w)
        img = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
        out.append(cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


def peak_rss_mb(pid: int) -> float:
    """VmHWM of the process and its children (PaddleHub/uvicorn may fork)."""
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def wait_ready(url: str, proc, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    raise TimeoutError(url)


def post(url: str, body: bytes) -> float:
    t0 = time.perf_counter()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        out = json.loads(r.read())
    if out.get("status") != "000":
        raise RuntimeError(out)
    return time.perf_counter() - t0


def load(url: str, bodies, concurrency: int, max_requests: int, max_seconds: float) -> dict:
    lat = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(max_requests))
    stop_at = time.perf_counter() + max_seconds

    def worker():
        nonlocal errors
        while time.perf_counter() < stop_at:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                dt = post(url, bodies[i % len(bodies)])
                with lock:
                    lat.append(dt)
            except Exception:  # noqa: BLE001 - counted, reported
                with lock:
                    errors += 1

    for b in bodies[:2]:  # warm-up (first call builds/loads the backend)
        post(url, b)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as ex:
        for f in [ex.submit(worker) for _ in range(concurrency)]:
            f.result()
    wall = time.perf_counter() - t0
    lat_ms = np.array(lat) * 1000
    return {
        "requests": len(lat), "errors": errors, "seconds": round(wall, 2),
        "rps": round(len(lat) / wall, 2) if wall > 0 else 0.0,
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1) if len(lat) else None,
    }


def stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_server(kind: str, args, env, workdir: Path, bodies, concurrencies, log):
    port = free_port()
    hub_name = args.hub_name
    if kind.startswith("hubcls"):
        cmd = [sys.executable, "-m", "hubcls", "serve", "-m", hub_name, "--port", str(port),
               "--max-batch-size", str(args.max_batch), "--max-delay-ms", str(args.max_delay_ms),
               "--max-queue", "256"]
        if kind == "hubcls (batching off)":
            cmd.append("--no-batching")
        ready = f"http://127.0.0.1:{port}/health/ready"
    else:
        cmd = [str(HUB_VENV / "bin" / "hub"), "serving", "start", "-m", hub_name, "-p", str(port)]
        ready = None
    proc = subprocess.Popen(cmd, env=env, cwd=str(workdir), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/predict/{hub_name}"
    try:
        if ready:
            wait_ready(ready, proc)
        else:  # PaddleHub has no health route: poll the predict route
            deadline = time.time() + 300
            while True:
                try:
                    post(url, bodies[0])
                    break
                except Exception:  # noqa: BLE001
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"{kind} did not start (see {log.name})")
                    time.sleep(1)
        rows = []
        for c in concurrencies:
            r = load(url, bodies, c, args.requests, args.seconds)
            r.update(server=kind, concurrency=c, peak_rss_mb=round(peak_rss_mb(proc.pid), 1))
            rows.append(r)
            print(f"  {kind:24s} c={c:<3d} {r['rps']:7.2f} req/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
                  f"rss {r['peak_rss_mb']} MB  ({r['requests']} requests, {r['errors']} errors)", flush=True)
        return rows
    finally:
        stop(proc)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="MobileNetV3_small_x0_35")
    p.add_argument("--requests", type=int, default=200, help="most requests per (server, concurrency)")
    p.add_argument("--seconds", type=float, default=30.0, help="most seconds per (server, concurrency)")
    p.add_argument("--concurrency", default="1,16")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-delay-ms", type=float, default=10.0)
    p.add_argument("--threads", default="1", help="OMP_NUM_THREADS of the servers")
    p.add_argument("--no-peer", action="store_true", help="skip PaddleHub serving")
    p.add_argument("--backend", default=None, help="HUBCLS_BACKEND for the servers (default: hubcls's choice)")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)

    import paddle

    import hubcls
    from hubcls.hub.download import cache_path
    from hubcls.hub.make_modules import hub_name
    from hubcls.models import resolve

    cfg = resolve(args.model)
    args.hub_name = hub_name(cfg)
    work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    home = work / "hubcls_home"
    # generated weights placed where the offline cache expects the official file, so both servers
    # (hubcls serve and PaddleHub's, which builds modules without arguments) load the same weights
    model = hubcls.create_model(cfg.name)
    url = cfg.weight_urls()[0] if hasattr(cfg, "weight_urls") else cfg.url
    env = dict(os.environ, HUBCLS_HOME=str(home), HUBCLS_OFFLINE="1", OMP_NUM_THREADS=args.threads,
               HUB_HOME=str(work / "hub_home"))
    if args.backend:
        env["HUBCLS_BACKEND"] = args.backend
    os.environ["HUBCLS_HOME"] = str(home)
    target = cache_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    paddle.save(model.state_dict(), str(target))
    del model

    bodies = [json.dumps({"images": [base64.b64encode(j).decode()], "top_k": 5}).encode() for j in photo_jpegs()]
    conc = [int(c) for c in args.concurrency.split(",")]
    servers = ["hubcls (batching on)", "hubcls (batching off)"]
    if not args.no_peer and (HUB_VENV / "bin" / "hub").exists():
        (work / "hub_home" / "conf").mkdir(parents=True)
        # PaddleHub's server URL -> a closed local port: its usage reporting stays on this machine
        (work / "hub_home" / "conf" / "config.yaml").write_text("server: http://127.0.0.1:9/paddlehub\n")
        r = subprocess.run([str(HUB_VENV / "bin" / "hub"), "install", str(REPO / "modules" / args.hub_name)],
                           env=env, capture_output=True, text=True, timeout=600)
        if r.returncode == 0:
            servers.append("PaddleHub 2.4 serving")
        else:
            print("PaddleHub install failed; peer skipped:\n" + r.stderr[-1500:])
    elif not args.no_peer:
        print(f"PaddleHub venv not found ({HUB_VENV}); run tests/install_peers.sh for the peer column")

    print(f"model {cfg.name} ({args.hub_name}), 1 JPEG (~400 px) per request, OMP_NUM_THREADS={args.threads}, "
          f"bounded by {args.requests} requests / {args.seconds:.0f} s per row; cpu count {os.cpu_count()}")
    rows = []
    with open(work / "servers.log", "wb") as log:
        for kind in servers:
            rows += run_server(kind, args, env, work, bodies, conc, log)

    print("\n| server | concurrency | req/s | p50 ms | p99 ms | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['concurrency']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['peak_rss_mb']} |")
    by = {(r["server"], r["concurrency"]): r for r in rows}
    for c in conc:
        on, off = by.get(("hubcls (batching on)", c)), by.get(("hubcls (batching off)", c))
        peer = by.get(("PaddleHub 2.4 serving", c))
        if on and off and off["rps"]:
            print(f"c={c}: batching on / off = {on['rps'] / off['rps']:.2f}x req/s")
        if on and peer and peer["rps"]:
            print(f"c={c}: hubcls (batching on) / PaddleHub serving = {on['rps'] / peer['rps']:.2f}x req/s, "
                  f"RSS {on['peak_rss_mb'] / max(peer['peak_rss_mb'], 1e-9):.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
