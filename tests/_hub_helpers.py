"""Shared helpers of the hub / serve / plugin tests: generated weights, real photos, local servers."""
from __future__ import annotations

import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

MODEL = "MobileNetV3_small_x0_35"  # the smallest zoo model with official weights (~15 MMACs)
REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _weights_bytes(name: str, seed: int) -> bytes:
    """A state_dict of ``name`` whose classifier is rescaled so predictions are peaked and differ
    between photos (a freshly initialised model gives ~uniform probabilities, which would make
    ranking checks meaningless): fc weights are drawn so that the logits of real photos have a
    standard deviation of about 4 and the
    photos' shared component cancelled."""
    import io

    import paddle

    import hubcls
    from hubcls.data import eval_transforms_for

    paddle.seed(seed)
    model = hubcls.create_model(name)
    model.eval()
    tf = eval_transforms_for(model.pretrained_cfg)
    x = paddle.to_tensor(np.stack([tf(photo(i)) for i in range(4)]).astype("float32"))
    with paddle.no_grad():
        feats = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    mean = feats.mean(0)
    scale = 4.0 / max(float(np.linalg.norm(feats - mean, axis=1).mean()), 1e-6)
    sd = model.state_dict()
    rng = np.random.default_rng(seed)
    fc = model.classifier_name
    w = (rng.normal(0, 1, sd[fc + ".weight"].shape) * scale).astype("float32")  # (in, out) in Paddle
    sd[fc + ".weight"] = paddle.to_tensor(w)
    # the bias cancels the component all photos share, so what distinguishes them decides the class
    sd[fc + ".bias"] = paddle.to_tensor((-mean @ w).astype("float32"))
    buf = io.BytesIO()
    paddle.save({k: v.numpy() for k, v in sd.items()}, buf)
    return buf.getvalue()


def write_weights(path: Path, name: str = MODEL, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_weights_bytes(name, seed))
    return path


@functools.lru_cache(maxsize=None)
def _photos():
    import cv2
    from skimage import data

    out = []
    for fn in (data.astronaut, data.coffee, data.chelsea, data.rocket):
        img = fn()[:, :, :3]
        h, w = img.shape[:2]
        s = 420 / max(h, w)
        out.append(cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA))
    return tuple(out)


def photo(i: int = 0) -> np.ndarray:
    """A real photo (scikit-image's sample images), uint8 RGB, long side 420 px."""
    return _photos()[i % len(_photos())].copy()


def jpeg_bytes(rgb: np.ndarray, quality: int = 92) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StaticServer:
    """A threaded http.server on 127.0.0.1 serving ``root`` (a stand-in for the model host)."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = []
        self.httpd.requests = self.requests
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        return super().do_GET()


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen = None) -> None:
    import urllib.request

    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout}s ({last})")


def start_serve(args, env=None, log_path=None) -> subprocess.Popen:
    """``hubcls serve ARGS`` as a subprocess (its own process group so it can be signalled)."""
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "1")
    e.update(env or {})
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "hubcls", "serve", *args], env=e, stdout=log,
                            stderr=subprocess.STDOUT, cwd=str(REPO))


def reference_probs(weights: Path, images_rgb, name: str = MODEL) -> np.ndarray:
    """What an eval loop computes: hubcls.data's eval transforms -> eval-mode model -> softmax."""
    import paddle

    import hubcls
    from hubcls.data import eval_transforms_for

    model = hubcls.create_model(name, pretrained=str(weights))
    model.eval()
    tf = eval_transforms_for(model.pretrained_cfg)
    x = np.stack([tf(img) for img in images_rgb]).astype("float32")
    with paddle.no_grad():
        logits = model(paddle.to_tensor(x)).numpy()
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def weights_answering(path: Path, name: str, image_rgb: np.ndarray, target: int, seed: int = 0) -> Path:
    """Weights for ``name`` whose classifier answers class ``target`` for ``image_rgb`` (probability
    about 0.9): a seeded random backbone whose BatchNorm statistics are those of the photos (else
    deep random nets such as EfficientNet give features of ~1e-10), and a classifier whose column
    ``target`` is the image's centred feature (a one-image prototype) while the other columns give
    logits of spread ~1.
    The stand-in for official weights where PaddleHub's module tests check the class of their
    photo (this machine has neither); everything else the tests check is real."""
    import paddle

    import hubcls
    from hubcls.data import eval_transforms_for

    paddle.seed(seed)
    model = hubcls.create_model(name)
    model.eval()
    tf = eval_transforms_for(model.pretrained_cfg)
    imgs = [image_rgb] + [photo(i) for i in range(4)]
    x = paddle.to_tensor(np.stack([tf(img) for img in imgs]).astype("float32"))
    bns = [m for m in model.sublayers() if isinstance(m, (paddle.nn.BatchNorm, paddle.nn.layer.norm._BatchNormBase))]
    for bn in bns:
        bn._momentum = 0.0  # one train-mode pass sets running mean/var to the photos' statistics
    model.train()
    with paddle.no_grad():
        model(x)
    model.eval()
    with paddle.no_grad():
        feats = model.forward_head(model.forward_features(x), pre_logits=True).numpy().reshape(len(imgs), -1)
    mean = feats.mean(0)
    g = feats[0] - mean
    norm = max(float(np.linalg.norm(g)), 1e-6)
    sd = model.state_dict()
    fc = model.classifier_name
    rng = np.random.default_rng(seed)
    w = (rng.normal(0, 1, sd[fc + ".weight"].shape) / norm).astype("float32")  # (in, out) in Paddle
    w[:, target] = g * (10.0 / norm ** 2)
    sd[fc + ".weight"] = paddle.to_tensor(w)
    sd[fc + ".bias"] = paddle.to_tensor((-mean @ w).astype("float32"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    paddle.save({k: v.numpy() for k, v in sd.items()}, str(path))
    return path


def same_answers(a, b, tol: float = 1e-5) -> bool:
    """Two Modules' answers agree: the same structure, the same labels in the same order, scores
    within `tol`. Exact equality is wrong here: a new Module answers on dygraph until auto's backend
    is ready (first answer fast), so two Modules may be on different backends for the same call."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_answers(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_answers(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= tol
    return a == b
