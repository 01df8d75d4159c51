"""Your own model everywhere, end to end on the quick-start data (issue 13's "Done when"):

train -> hub.Module(directory=run) / hub.Module(name, weights=best file) / `hubcls export -c CONFIG` ->
Predictor(export) / Predictor(run) / `hubcls serve --model-dir run` / `hubcls predict -m run` all
answer with the run's own class names, and their probabilities agree within 1e-4.

And the zoo path: Predictor and hub.Module on the same weights return identical dicts for
top_k=1000 on real photos (ImageNet's duplicate name stays apart: "crane (517)")."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _hub_helpers import MODEL, free_port, jpeg_bytes, photo, start_serve, wait_http, write_weights

pytest.importorskip("paddle")

ARCH = "MobileNetV3_small_x0_35"
CLASSES = ["circle", "square", "triangle", "star", "ring"]
# a small demo set (5 classes x 8 train / 2 val images), enough epochs that answers differ per image
SMALL = [
    "Global.epochs=10", "Optimizer.lr.warmup_epoch=0", "DataLoader.Train.sampler.batch_size=8",
    "DataLoader.Train.dataset.num_classes=5", "DataLoader.Eval.dataset.num_classes=5",
    "DataLoader.Train.dataset.train_per_class=8", "DataLoader.Eval.dataset.train_per_class=8",
    "DataLoader.Train.dataset.val_per_class=2", "DataLoader.Eval.dataset.val_per_class=2",
    "Arch.class_num=5",
]
TOL = 1e-4


def _env(cwd):
    return dict(os.environ, OMP_NUM_THREADS="1", HUBCLS_OFFLINE="1", HUBCLS_HOME=str(Path(cwd) / "home"))


def _hubcls(args, cwd, timeout=600):
    r = subprocess.run([sys.executable, "-m", "hubcls", *args], cwd=cwd, env=_env(cwd), capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"hubcls {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _o(overrides):
    return [x for ov in overrides for x in ("-o", ov)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("own")
    _hubcls(["train", "-c", "quickstart", "--quiet", *_o(SMALL)], cwd)
    run = cwd / "output" / "quickstart"
    images = sorted((run / "demo_data" / "images").glob("*/0009.jpg"))
    assert len(images) == 5
    return cwd, run, [str(p) for p in images]


def _best_file(run: Path) -> Path:
    for f in (run / "best_model.pdparams", run / "best" / "model.safetensors"):
        if f.is_file():
            return f
    raise AssertionError(f"no best weights in {run}")


def _same(answers: dict, ref_name: str, k: int):
    ref = answers[ref_name]
    for name, got in answers.items():
        assert len(got) == len(ref), name
        for g, r in zip(got, ref):
            assert set(g) == set(r) == set(CLASSES), f"{name}: {sorted(g)}"
            assert len(g) == k
            diff = max(abs(g[c] - r[c]) for c in r)
            assert diff <= TOL, f"{name} differs from {ref_name} by {diff}"


@pytest.mark.slow
def test_trained_run_answers_alike_everywhere(trained, monkeypatch):
    import hubcls.hub as hub
    from hubcls.deploy import Predictor

    cwd, run, images = trained
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HUBCLS_HOME", str(cwd / "home"))
    k = len(CLASSES)
    answers = {}
    ref = hub.Module(directory=str(run), backend="dygraph")
    assert ref.labels == CLASSES and ref.num_classes == 5
    answers["Module(directory=run, dygraph)"] = ref.predict(images, top_k=k)
    # the model learned something: answers are image-dependent and not uniform
    top = [max(r, key=r.get) for r in answers["Module(directory=run, dygraph)"]]
    assert len(set(top)) >= 2 and max(max(r.values()) for r in answers["Module(directory=run, dygraph)"]) > 0.4

    answers["Module(directory=run)"] = hub.Module(directory=str(run)).predict(images, top_k=k)
    answers["Module(name, weights=best)"] = hub.Module(name=ARCH, weights=str(_best_file(run))).predict(images, top_k=k)

    # `hubcls export -c CONFIG`: finds the run where `hubcls eval -c CONFIG` finds it and writes to
    # the config's Global.save_inference_dir
    out = _hubcls(["export", "-c", "quickstart", *_o(SMALL)], cwd).stdout
    export_dir = run / "inference"
    assert f"to {Path('output/quickstart/inference')}" in out and (export_dir / "model.json").is_file()
    ev = _hubcls(["eval", "-c", "quickstart", "--json", "--quiet", *_o(SMALL)], cwd).stdout
    assert "best" in ev.splitlines()[0]  # it evaluated the run's best weights
    answers["Predictor(export)"] = Predictor(str(export_dir), backend="inference").predict(images, top_k=k)
    answers["Predictor(run)"] = Predictor(str(run)).predict(images, top_k=k)
    answers["Module(directory=export)"] = hub.Module(directory=str(export_dir)).predict(images, top_k=k)

    # `hubcls predict IMAGES -m RUN`
    js = cwd / "p.json"
    _hubcls(["predict", *images, "-m", str(run), "--top-k", str(k), "--json", str(js)], cwd)
    answers["hubcls predict -m run"] = [dict(zip(r["label_names"], r["scores"])) for r in json.loads(js.read_text())]

    # `hubcls serve --model-dir run`: PaddleHub protocol and the v1 API
    port = free_port()
    proc = start_serve(["--model-dir", str(run), "--port", str(port)], env=_env(cwd), log_path=cwd / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health/ready", timeout=180, proc=proc)
        payload = json.dumps({"images": [base64.b64encode(Path(p).read_bytes()).decode() for p in images],
                              "top_k": k}).encode()
        req = urllib.request.Request(f"{base}/predict/quickstart", data=payload,
                                     headers={"Content-Type": "application/json"})
        body = json.loads(urllib.request.urlopen(req, timeout=60).read())
        assert body["status"] == "000", body
        answers["serve (PaddleHub)"] = body["results"]
        req = urllib.request.Request(f"{base}/v1/models/quickstart:predict", data=payload,
                                     headers={"Content-Type": "application/json"})
        body = json.loads(urllib.request.urlopen(req, timeout=60).read())
        answers["serve (v1)"] = [{t["label"]: t["prob"] for t in p["top_k"]} for p in body["predictions"]]
        info = json.loads(urllib.request.urlopen(f"{base}/v1/models/quickstart", timeout=10).read())
        assert info["labels"] == CLASSES and info["num_classes"] == 5
    finally:
        proc.terminate()
        proc.wait(60)
    _same(answers, "Module(directory=run, dygraph)", k)


@pytest.mark.slow
def test_predictor_and_module_agree_on_all_1000_imagenet_classes(tmp_path, monkeypatch):
    import hubcls.hub as hub
    from hubcls.deploy import Predictor

    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    w = write_weights(tmp_path / "w.pdparams")
    module = hub.Module(name=MODEL, weights=str(w))
    export_dir = module.export(str(tmp_path / "export"))
    predictor = Predictor(export_dir, backend="inference")
    files = []
    for i in range(4):
        f = tmp_path / f"photo{i}.jpg"
        f.write_bytes(jpeg_bytes(photo(i)))
        files.append(str(f))
    want = module.predict(files, top_k=1000)
    got = predictor.predict(files, top_k=1000, batch_size=3)
    for w_, g in zip(want, got):
        assert len(w_) == len(g) == 1000 and set(w_) == set(g)
        assert "crane" in g and "crane (517)" in g  # ImageNet-1k names class 134 and class 517 "crane"
        np.testing.assert_allclose([g[c] for c in w_], list(w_.values()), atol=TOL)
        np.testing.assert_allclose(sum(g.values()), 1.0, rtol=1e-4)
    assert len({next(iter(r)) for r in want}) >= 2  # photo-dependent answers: a real comparison
