"""Load test of ``hubcls serve`` against its floor and PaddleHub serving, all on 127.0.0.1.

    python benchmarks/bench_serve.py [--model MobileNetV3_small_x1_0] [--concurrency 1,4,16]
        [--server-cpus 1] [--paddlehub-module DIR] [--requests 600] [--seconds 20] [--hub-venv DIR]

What it prints, measured in the same run on the same JPEGs (four ~400 px photos, one per request,
PaddleHub's protocol: JSON with base64 images, so every server sees the same requests):

* the **floor**: what the server's cores could do without any HTTP - ``decode + preprocess + model +
  softmax/top-k`` per image in this process, on one thread, through the same prediction pipeline
  and backend the server uses (CPU ms per image; x the server's cores = images/s);
* hubcls serve with adaptive batching (the default), and with ``--no-batching``;
* PaddleHub 2.4's own ``hub serving start`` with **PaddleHub's original module** when
  ``--paddlehub-module DIR`` points at PaddleHub's module source, e.g. its
  ``modules/image/classification/resnet50_vd_imagenet_ssld`` with ``--model ResNet50_vd_ssld`` (the
  official weights are not reachable here, so the benchmark writes that module's weight file in
  PaddleHub's layout from the weights hubcls serves - same architecture, same values - into a copy of
  the directory, and prepends aliases for the Paddle 2.0-rc names such modules use and a NumPy 2
  ``base64_to_cv2``; PaddleHub's ``mobilenet_v3_*_imagenet_ssld`` modules cannot serve at all: they
  have no ``transforms`` and return logits only, so ``ImageClassifierModule.predict`` fails, which
  the benchmark reports), and PaddleHub serving hubcls's module (``hubcls hub-module``).

Per row: requests/s, p50/p99 latency, and the server's CPU ms per request (utime+stime of the server
process tree from /proc, so other jobs on a shared machine do not distort it the way they distort
wall time), plus its ratio to the floor. ``--server-cpus`` pins the servers (taskset) and the floor
counts those cores; the load generator runs on the remaining cores with keep-alive connections.
The load average is printed before and after. Every row is bounded by ``--requests`` and ``--seconds``.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HUB_VENV = REPO / "build" / "peers" / "paddlehub-venv"  # tests/install_peers.sh; --hub-venv elsewhere
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo_jpegs():
    import cv2
    from skimage import data

    out = []
    for fn in (data.astronaut, data.coffee, data.chelsea, data.rocket):
        img = fn()[:, :, :3]
        h, w = img.shape[:2]
        s = 400 / max(h, w)
        img = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
        out.append(cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


# --------------------------------------------------------------------------- process facts
def _tree(pid: int) -> list:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except OSError:
            pass
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its live descendants."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --------------------------------------------------------------------------- the floor
def measure_floor(model: str, weights: str, jpegs, backend, rounds: int = 200) -> dict:
    """CPU ms per image of decode + preprocess + model + postprocess in this process (1 thread), through
    the pipeline and backend hubcls serve uses, at batch 1 and with the images of 8 requests in one
    model call (what batching can reach)."""
    import hubcls.hub as hub

    m = hub.Module(name=model, weights=weights, backend=backend)
    m.wait_for_backend()  # the backend the server ends up on, not the dygraph model of the first answers
    pipe = m.pipeline

    def one(jpg):
        batch, _ = pipe.prepare([jpg], "RGB")
        probs = pipe.probabilities(pipe.logits(batch))
        pipe.topk(probs[0], 5)

    def eight(group):
        rows = [pipe.prepare([j], "RGB")[0] for j in group]
        probs = pipe.probabilities(pipe.logits(np.concatenate(rows)))
        for r in probs:
            pipe.topk(r, 5)

    for j in jpegs * 5:
        one(j)
    t = time.process_time()
    for i in range(rounds):
        one(jpegs[i % len(jpegs)])
    single = (time.process_time() - t) / rounds * 1000
    groups = [[jpegs[(i + k) % len(jpegs)] for k in range(8)] for i in range(max(1, rounds // 8))]
    eight(groups[0])
    t = time.process_time()
    for g in groups:
        eight(g)
    batched = (time.process_time() - t) / (8 * len(groups)) * 1000
    t = time.process_time()
    for i in range(rounds):
        pipe.prepare([jpegs[i % len(jpegs)]], "RGB")
    prep = (time.process_time() - t) / rounds * 1000
    return {"ms_per_image": single, "ms_per_image_batch8": batched, "ms_decode_preprocess": prep,
            "backend": m.runner.describe()["backend"]}


# --------------------------------------------------------------------------- the load generator
def load(port: int, path: str, bodies, concurrency: int, max_requests: int, max_seconds: float) -> dict:
    """``concurrency`` client threads, each with its own keep-alive connection."""
    lat, errors = [], []
    lock = threading.Lock()
    counter = iter(range(max_requests))
    stop_at = time.perf_counter() + max_seconds

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() < stop_at:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=bodies[i % len(bodies)], headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                out = json.loads(resp.read())
                if resp.status != 200 or out.get("status") != "000":
                    raise RuntimeError(f"{resp.status} {str(out)[:200]}")
                dt = time.perf_counter() - t0
                with lock:
                    lat.append(dt)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(str(exc)[:200])
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat_ms = np.array(lat) * 1000
    return {"requests": len(lat), "errors": len(errors), "first_error": errors[0] if errors else None,
            "seconds": wall, "rps": len(lat) / wall if wall > 0 else 0.0,
            "p50_ms": float(np.percentile(lat_ms, 50)) if len(lat) else None,
            "p99_ms": float(np.percentile(lat_ms, 99)) if len(lat) else None}


def wait_up(port: int, path: str, body: bytes, proc, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    failures = 0
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        answer = None
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                answer = json.loads(r.read())
        except urllib.error.HTTPError as exc:  # up, but refusing: keep its answer
            answer = {"status": str(exc.code), "msg": exc.read()[:300].decode(errors="replace")}
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if answer is not None:
            if answer.get("status") == "000":
                return
            failures += 1
            if failures >= 10:  # it is up and fails every request: say why instead of waiting
                raise RuntimeError(f"the server answers {str(answer)[:300]}")
        if time.time() > deadline:
            raise TimeoutError(f"no answer on {path} after {timeout:.0f} s")
        time.sleep(0.5)


def stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_server(name: str, cmd, route: str, env, args, bodies, log) -> list:
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    if args.server_cpus:
        cmd = ["taskset", "-c", args.server_cpus] + cmd
    proc = subprocess.Popen(cmd, env=env, cwd=str(args.work), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    rows = []
    try:
        wait_up(port, route, bodies[0], proc)
        if name.startswith("hubcls"):  # measure the backend it settles on (the first answers are dygraph's)
            deadline = time.time() + 600
            while json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=30).read()).get(
                    "backends_switching") and time.time() < deadline:
                time.sleep(1)
        for b in bodies * 3:  # warm-up: every image once, first calls build kernels
            wait_up(port, route, b, proc, timeout=60)
        for c in args.conc:
            cpu0 = cpu_seconds(proc.pid)
            r = load(port, route, bodies, c, args.requests, args.seconds)
            cpu = cpu_seconds(proc.pid) - cpu0
            r.update(server=name, concurrency=c, peak_rss_mb=peak_rss_mb(proc.pid),
                     cpu_ms_per_request=cpu / max(r["requests"], 1) * 1000)
            rows.append(r)
            print(f"  {name:34s} c={c:<3d} {r['rps']:8.1f} req/s  p50 {r['p50_ms'] or 0:7.1f} ms  "
                  f"p99 {r['p99_ms'] or 0:7.1f} ms  cpu {r['cpu_ms_per_request']:6.2f} ms/req  "
                  f"({r['requests']} req, {r['errors']} err{'; ' + r['first_error'] if r['errors'] else ''})",
                  flush=True)
    except Exception as exc:  # noqa: BLE001 - one server failing must not lose the other rows
        print(f"  {name}: failed ({exc}); see {log.name}", flush=True)
    finally:
        stop(proc)
    return rows


# --------------------------------------------------------------------------- PaddleHub peers
PADDLE_2RC_NAMES = """\
# --- prepended by hubcls's benchmarks/bench_serve.py: Paddle 2.0-rc names -> Paddle 3 ---
import paddle as _p, paddle.nn as _nn, paddle.nn.functional as _F
for _old, _new in (("MaxPool2d", "MaxPool2D"), ("AvgPool2d", "AvgPool2D"), ("Conv2d", "Conv2D"),
                   ("AdaptiveAvgPool2d", "AdaptiveAvgPool2D")):
    if not hasattr(_nn, _old):
        setattr(_nn, _old, getattr(_nn, _new))
if not hasattr(_F, "hard_swish"):
    _F.hard_swish = lambda x, name=None: _F.hardswish(x)
if not hasattr(_F, "hard_sigmoid"):
    _F.hard_sigmoid = lambda x, slope=0.2, offset=0.5, name=None: _F.hardsigmoid(x, slope, offset)
if not hasattr(_p, "elementwise_add"):
    _p.elementwise_add = lambda x, y, axis=-1, name=None: _p.add(x, y)
if not getattr(_p.multiply, "_takes_axis", False):
    _multiply = _p.multiply
    def _mul(x, y, axis=-1, name=None):  # the old axis= only named the broadcast, which Paddle 3 infers
        return _multiply(x, y)
    _mul._takes_axis = True
    _p.multiply = _mul
# PaddleHub 2.4's base64_to_cv2 calls np.fromstring's binary mode, which NumPy 2 removed: frombuffer
import base64 as _b64, cv2 as _cv2, numpy as _np
import paddlehub.module.cv_module as _phcv, paddlehub.utils.utils as _phu
def _base64_to_cv2(b64str):
    return _cv2.imdecode(_np.frombuffer(_b64.b64decode(b64str.encode("utf8")), _np.uint8), _cv2.IMREAD_COLOR)
_phu.base64_to_cv2 = _phcv.base64_to_cv2 = _base64_to_cv2
# --- end of the prepended names ---
"""


def paddlehub_original_module(src: Path, dest: Path, hubcls_model: str, weights: Path) -> Path:
    """A copy of PaddleHub's module directory with its weight file written in PaddleHub's layout
    (``paddle.load(file)[0]`` or ``paddle.load(file)``, as the module reads it: the state dict of the
    module's own Layer) from the weights hubcls serves:
    the module is built once in PaddleHub's venv with an empty checkpoint to learn its keys, then the
    hubcls state dict is mapped onto them in order (shapes checked one by one)."""
    dest = dest / "paddlehub_original" / src.name  # not in the servers' cwd: `-m NAME` would find it
    shutil.copytree(src, dest)
    # The module was written for Paddle 2.0-rc; these aliases give its old names Paddle 3's layers and
    # functions (same maths: fluid's hard_sigmoid is slope 0.2, offset 0.5), and PaddleHub's own
    # base64_to_cv2 a NumPy 2 spelling; the rest is untouched.
    src_text = (dest / "module.py").read_text()
    (dest / "module.py").write_text(PADDLE_2RC_NAMES + src_text)
    import paddle

    import hubcls

    model = hubcls.create_model(hubcls_model, pretrained=str(weights))  # the values hubcls serves
    ours = [(k, v.numpy()) for k, v in model.state_dict().items()]
    np.save(dest.parent / "hubcls_weights.npy", np.array([v for _, v in ours], dtype=object), allow_pickle=True)
    empty = dest.parent / "empty.pdparams"
    paddle.save([{}], str(empty))
    script = f"""
import sys, numpy as np, paddle, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {str(dest.parent)!r})
import paddlehub as hub
m = hub.Module(directory={str(dest)!r}, load_checkpoint={str(empty)!r})
theirs = list(m.state_dict().items())
ours = list(np.load({str(dest.parent / 'hubcls_weights.npy')!r}, allow_pickle=True))
if len(theirs) != len(ours) or any(tuple(v.shape) != o.shape for (k, v), o in zip(theirs, ours)):
    sys.exit("the hubcls model does not map onto the PaddleHub module in order")
sd = {{k: o for (k, v), o in zip(theirs, ours)}}
paddle.save([sd] if __WRAPPED__ else sd, {str(dest / '__WEIGHTS__')!r})
"""
    weight_name = "mobilenet_v3_small_ssld.pdparams"
    for line in (src / "module.py").read_text().splitlines():
        if "os.path.join(self.directory," in line and ".pdparams" in line:
            weight_name = line.split("'")[1] if "'" in line else line.split('"')[1]
    # the file as the module reads it: `paddle.load(checkpoint)[0]` (a list) or `paddle.load(checkpoint)`
    wrapped = "paddle.load(checkpoint)[0]" in src_text
    script = script.replace("__WEIGHTS__", weight_name).replace("__WRAPPED__", str(wrapped))
    r = subprocess.run([str(HUB_VENV / "bin" / "python"), "-c", script], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-1500:])
    return dest


def main(argv=None) -> int:
    global HUB_VENV
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="MobileNetV3_small_x1_0")
    p.add_argument("--requests", type=int, default=600, help="most requests per (server, concurrency)")
    p.add_argument("--seconds", type=float, default=20.0, help="most seconds per (server, concurrency)")
    p.add_argument("--concurrency", default="1,4,16")
    p.add_argument("--server-cpus", default="1" if (os.cpu_count() or 1) > 1 else "",
                   help="CPUs the servers are pinned to (taskset list; '' = no pinning); the floor counts them")
    p.add_argument("--backend", default=None, help="HUBCLS_BACKEND for hubcls (default: its own choice)")
    p.add_argument("--paddlehub-module", type=Path, help="PaddleHub's original module source directory")
    p.add_argument("--no-peer", action="store_true", help="skip PaddleHub serving")
    p.add_argument("--hub-venv", type=Path, default=None, help=f"PaddleHub's venv (default {HUB_VENV})")
    p.add_argument("--only", default="", help="comma-separated subset of: batching,nobatch,phorig,phhubcls")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    args.conc = [int(c) for c in args.concurrency.split(",")]
    if args.hub_venv:
        HUB_VENV = args.hub_venv.resolve()

    import paddle

    import hubcls
    from hubcls.hub.make_modules import hub_name
    from hubcls.models import resolve

    cfg = resolve(args.model)
    hname = hub_name(cfg)
    args.work = work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    weights = work / "weights.pdparams"
    paddle.save(hubcls.create_model(cfg.name).state_dict(), str(weights))
    home = work / "hubcls_home"
    env = dict(os.environ, HUBCLS_HOME=str(home), HUBCLS_OFFLINE="1", OMP_NUM_THREADS="1",
               HUB_HOME=str(work / "hub_home"), PYTHONPATH=str(REPO))
    os.environ["HUBCLS_HOME"] = str(home)
    if args.backend:
        env["HUBCLS_BACKEND"] = os.environ["HUBCLS_BACKEND"] = args.backend
    ncpu = len(args.server_cpus.replace("-", ",").split(",")) if args.server_cpus else (os.cpu_count() or 1)
    if args.server_cpus and "-" in args.server_cpus:
        a, b = args.server_cpus.split("-")
        ncpu = int(b) - int(a) + 1
    if args.server_cpus:  # the load generator (and the floor) on the other cores
        others = sorted(set(os.sched_getaffinity(0)) - {int(c) for c in args.server_cpus.replace("-", ",").split(",")})
        if others:
            os.sched_setaffinity(0, others)
    jpegs = photo_jpegs()
    bodies = [json.dumps({"images": [base64.b64encode(j).decode()], "top_k": 5}).encode() for j in jpegs]
    print(f"load average before: {loadavg()}; cpu count {os.cpu_count()}; servers on cpus "
          f"{args.server_cpus or 'all'} ({ncpu}); OMP_NUM_THREADS=1", flush=True)

    os.environ["HUBCLS_NUM_THREADS"] = "1"
    fl = measure_floor(cfg.name, str(weights), jpegs, args.backend)
    floor_rps = ncpu * 1000 / fl["ms_per_image"]
    print(f"floor ({fl['backend']}, 1 thread, in process): decode+preprocess {fl['ms_decode_preprocess']:.2f} ms, "
          f"+ model + top-k {fl['ms_per_image']:.2f} ms CPU per image (batch 1; {fl['ms_per_image_batch8']:.2f} with "
          f"8 images per model call) -> {floor_rps:.0f} images/s on {ncpu} core(s)", flush=True)

    only = set(filter(None, args.only.split(",")))
    servers = []
    base = [sys.executable, "-m", "hubcls", "serve", "-m", hname, "--weights", str(weights), "--port", "{port}",
            "--max-queue", "256"]
    if not only or "batching" in only:
        servers.append(("hubcls serve (adaptive batching)", base, f"/predict/{hname}", env))
    if not only or "nobatch" in only:
        servers.append(("hubcls serve --no-batching", base + ["--no-batching"], f"/predict/{hname}", env))
    hub_ok = (HUB_VENV / "bin" / "hub").exists() and not args.no_peer
    if not hub_ok and not args.no_peer:
        print(f"PaddleHub venv not found ({HUB_VENV}); run tests/install_peers.sh for the PaddleHub rows")
    if hub_ok:
        (work / "hub_home" / "conf").mkdir(parents=True)
        # PaddleHub's usage reporting -> a closed local port: it stays on this machine
        (work / "hub_home" / "conf" / "config.yaml").write_text("server: http://127.0.0.1:9/paddlehub\n")
        hub_bin = str(HUB_VENV / "bin" / "hub")
        if args.paddlehub_module and (not only or "phorig" in only):
            try:
                d = paddlehub_original_module(args.paddlehub_module.resolve(), work, cfg.name, weights)
                # its own HUB_HOME: hubcls's module may have the same name (resnet50_vd_imagenet_ssld)
                env_o = dict(env, HUB_HOME=str(work / "hub_home_orig"))
                (work / "hub_home_orig" / "conf").mkdir(parents=True)
                (work / "hub_home_orig" / "conf" / "config.yaml").write_text(
                    "server: http://127.0.0.1:9/paddlehub\n")
                r = subprocess.run([hub_bin, "install", str(d)], env=env_o, capture_output=True, text=True,
                                   timeout=600)
                if r.returncode:
                    raise RuntimeError(r.stderr[-1500:])
                servers.append((f"PaddleHub serving, its own {d.name}", [hub_bin, "serving", "start", "-m", d.name,
                                                                         "-p", "{port}"], f"/predict/{d.name}", env_o))
            except Exception as exc:  # noqa: BLE001
                print(f"PaddleHub's original module could not be prepared: {exc}")
        if not only or "phhubcls" in only:
            (home / "weights").mkdir(parents=True, exist_ok=True)
            env_h = dict(env)
            url = cfg.weight_urls()[0]
            from hubcls.hub.download import cache_path

            target = cache_path(url)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(weights, target)  # PaddleHub builds modules without arguments: the official cache spot
            mod_dir = REPO / "modules" / hname
            if not mod_dir.is_dir():  # modules/ keeps three examples; the others are made on demand
                subprocess.run([sys.executable, "-m", "hubcls", "hub-module", hname, "-o", str(work / "modules")],
                               env=env, check=True, capture_output=True, timeout=600)
                mod_dir = work / "modules" / hname
            r = subprocess.run([hub_bin, "install", str(mod_dir)], env=env_h, capture_output=True,
                               text=True, timeout=600)
            if r.returncode == 0:
                servers.append(("PaddleHub serving, hubcls's module", [hub_bin, "serving", "start", "-m", hname,
                                                                       "-p", "{port}"], f"/predict/{hname}", env_h))
            else:
                print("PaddleHub install of hubcls's module failed:\n" + r.stderr[-1500:])

    print(f"model {cfg.name} ({hname}); 1 JPEG (~400 px) per request; keep-alive clients; "
          f"at most {args.requests} requests / {args.seconds:.0f} s per row", flush=True)
    rows = []
    with open(work / "servers.log", "wb") as log:
        for name, cmd, route, e in servers:
            rows += run_server(name, cmd, route, e, args, bodies, log)
    print(f"load average after: {loadavg()}")

    print(f"\nfloor: {fl['ms_per_image']:.2f} CPU ms per image = {floor_rps:.0f} images/s on {ncpu} core(s)\n")
    print("| server | concurrency | req/s | x floor | p50 ms | p99 ms | CPU ms/req | floor CPU / server CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['concurrency']} | {r['rps']:.1f} | {r['rps'] / floor_rps:.2f} | "
              f"{r['p50_ms'] or 0:.1f} | {r['p99_ms'] or 0:.1f} | {r['cpu_ms_per_request']:.2f} | "
              f"{fl['ms_per_image'] / max(r['cpu_ms_per_request'], 1e-9):.2f} |")
    by = {(r["server"], r["concurrency"]): r for r in rows}
    on, off = "hubcls serve (adaptive batching)", "hubcls serve --no-batching"
    for c in args.conc:
        a, b = by.get((on, c)), by.get((off, c))
        if a and b and b["rps"]:
            print(f"c={c}: adaptive batching / no batching = {a['rps'] / b['rps']:.2f}x req/s; "
                  f"p99/p50 {a['p99_ms'] / a['p50_ms']:.2f}")
        for peer in [r["server"] for r in rows if r["server"].startswith("PaddleHub") and r["concurrency"] == c]:
            pr = by[(peer, c)]
            if a and pr["rps"]:
                print(f"c={c}: hubcls / {peer} = {a['rps'] / pr['rps']:.2f}x req/s, "
                      f"{pr['cpu_ms_per_request'] / max(a['cpu_ms_per_request'], 1e-9):.2f}x less CPU per request")
    if args.json:
        Path(args.json).write_text(json.dumps({"floor": fl, "floor_rps": floor_rps, "rows": rows}, indent=2))
    if len(rows) == len(servers) * len(args.conc):  # the weights and module copies take up to ~700 MB
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"a server failed: its log and the work files are kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
