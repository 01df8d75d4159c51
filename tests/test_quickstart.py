"""`hubcls quickstart` end to end (offline, tiny settings), then `hubcls eval` / `hubcls infer` on its
output; the official-weights path through a loopback mirror of the model host."""
import csv
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

# a tiny demo set (5 classes x 6 train / 3 val images) and one epoch keep this test fast
SMALL = [
    "Global.epochs=1",
    "DataLoader.Train.dataset.num_classes=5", "DataLoader.Eval.dataset.num_classes=5",
    "DataLoader.Train.dataset.train_per_class=6", "DataLoader.Eval.dataset.train_per_class=6",
    "DataLoader.Train.dataset.val_per_class=3", "DataLoader.Eval.dataset.val_per_class=3",
    "Arch.class_num=5",
]


def _hubcls(args, cwd, env_extra=None, timeout=400):
    env = dict(os.environ, OMP_NUM_THREADS="1", HUBCLS_OFFLINE="1", HUBCLS_HOME=str(Path(cwd) / "home"))
    env.update(env_extra or {})
    r = subprocess.run([sys.executable, "-m", "hubcls", *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"hubcls {' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r.stdout


def _o(overrides):
    return [x for ov in overrides for x in ("-o", ov)]


@pytest.mark.slow
def test_quickstart_offline_then_eval_and_infer(tmp_path):
    out = _hubcls(["quickstart", "--quiet", *_o(SMALL)], tmp_path)
    assert "FROM SCRATCH" in out and "HUBCLS_OFFLINE=1" in out  # it says how it started
    run = tmp_path / "output" / "quickstart"
    for f in ("report.html", "curves.png", "confusion_matrix.png", "eval_per_class.csv", "eval_confusion_matrix.csv",
              "train_log.jsonl", "best/model.safetensors", "best/model.json", "last.pdckpt", "config.yaml"):
        assert (run / f).is_file(), f
    html = (run / "report.html").read_text()
    assert "Confusion matrix" in html and "Mistakes" in html and "curves.png" in html
    assert "[5/6] export" in out and (run / "inference").is_dir()
    preds = re.findall(r"true=(\w+)\s+(\w+) ([0-9.]+)", out)
    assert len(preds) == 5  # one sample image per class, top-k printed
    top1 = float(re.search(r"\[4/6\] eval .*?top1=([0-9.]+)", out).group(1))

    # `hubcls eval` on the same run gives the same top-1 (same weights, same preprocessing)
    ev = json.loads(_hubcls(["eval", "-c", "quickstart", "--json", "--quiet", *_o(SMALL)], tmp_path).split("\n", 1)[1])
    assert ev["num_samples"] == 15
    assert ev["top1"] == pytest.approx(top1, abs=1e-4)

    # `hubcls infer` on a folder, JSON + CSV
    folder = run / "demo_data" / "images" / "circle"
    _hubcls(["infer", "-c", "quickstart", str(folder), "--top-k", "2", "--json", "p.json", "--csv", "p.csv", *_o(SMALL)],
            tmp_path)
    res = json.loads((tmp_path / "p.json").read_text())
    assert len(res) == 9 and all(len(r["class_ids"]) == 2 and r["scores"][0] >= r["scores"][1] for r in res)
    assert all(set(r["label_names"]) <= {"circle", "square", "triangle", "star", "ring"} for r in res)
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["file"] for r in rows] == [r["file"] for r in res]
    assert rows[0]["top1_label"] == res[0]["label_names"][0]


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.mark.slow
def test_quickstart_uses_official_weights_when_the_host_answers(tmp_path, monkeypatch):
    """The model host is replaced by a loopback mirror serving a weights file the test writes."""
    import numpy as np

    import hubcls
    from hubcls._paddle import import_paddle
    from hubcls.engine.quickstart import quick_weights, run_quickstart

    paddle = import_paddle()
    mirror = tmp_path / "mirror" / "dygraph"
    mirror.mkdir(parents=True)
    src = hubcls.create_model("MobileNetV3_small_x0_35")  # 1000-class "ImageNet" weights
    paddle.save(src.state_dict(), str(mirror / "MobileNetV3_small_x0_35_pretrained.pdparams"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             lambda *a, **k: _Handler(*a, directory=str(tmp_path / "mirror"), **k))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
        monkeypatch.delenv("HUBCLS_OFFLINE", raising=False)
        monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")  # the stand-in mirror is plain http on 127.0.0.1
        # unreachable host: no weights, a reason, and no exception
        monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", "http://127.0.0.1:9")
        path, why = quick_weights("MobileNetV3_small_x0_35", timeout=2)
        assert path is None and "unreachable" in why
        monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.chdir(tmp_path)
        result = run_quickstart(overrides=SMALL + ["Global.epochs=1", "Optimizer.lr.learning_rate=0.0"], quiet=True)
    finally:
        server.shutdown()
    assert result["start"] == "official"
    # with a zero learning rate the backbone must still be exactly the served weights
    from safetensors.numpy import load_file

    trained = load_file(str(tmp_path / "output" / "quickstart" / "best" / "model.safetensors"))
    ref = src.state_dict()
    k = "blocks.0.expand_conv.conv.weight"
    np.testing.assert_array_equal(trained[k], ref[k].numpy())
    assert list(trained["fc.weight"].shape) == [1280, 5]


@pytest.mark.slow
def test_quickstart_flowers102_recipe_wiring(tmp_path, monkeypatch):
    """--dataset flowers102 --data-dir DIR: the official file layout (jpg/, imagelabels.mat, setid.mat),
    here a tiny generated stand-in, shrunk by overrides so the test stays fast."""
    import numpy as np
    import scipy.io
    from PIL import Image

    from hubcls.engine.quickstart import build_config, run_quickstart

    data = tmp_path / "flowers"
    (data / "jpg").mkdir(parents=True)
    rng = np.random.default_rng(0)
    n = 12
    for i in range(1, n + 1):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(data / "jpg" / f"image_{i:05d}.jpg")
    labels = np.array([1 + (i % 3) for i in range(n)])  # official labels are 1-based
    scipy.io.savemat(data / "imagelabels.mat", {"labels": labels[None]})
    scipy.io.savemat(data / "setid.mat", {"trnid": np.arange(1, 9)[None], "valid": np.arange(9, 13)[None],
                                          "tstid": np.arange(9, 13)[None]})
    cfg = build_config("flowers102", str(data), str(tmp_path / "out"))
    assert cfg["Arch"]["name"] == "ResNet50_vd" and cfg["Global"]["epochs"] == 20
    assert cfg["Optimizer"]["lr"]["learning_rate"] == 0.0125 and cfg["DataLoader"]["Train"]["dataset"]["name"] == "Flowers102"
    small = ["Global.epochs=1", "Arch.name=MobileNetV3_small_x0_35", "Global.image_shape=[3,32,32]",
             "DataLoader.Train.dataset.transform_ops[1].RandCropImage.size=32",
             "DataLoader.Eval.dataset.transform_ops[1].ResizeImage.resize_short=36",
             "DataLoader.Eval.dataset.transform_ops[2].CropImage.size=32",
             "Infer.transforms[1].ResizeImage.resize_short=36", "Infer.transforms[2].CropImage.size=32",
             "DataLoader.Train.loader.num_workers=0", "DataLoader.Eval.loader.num_workers=0"]
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    r = run_quickstart("flowers102", str(data), str(tmp_path / "out"), overrides=small, quiet=True)
    assert r["start"] == "scratch" and len(r["samples"]) == 3  # one val image of each present class
    assert (tmp_path / "out" / "MobileNetV3_small_x0_35" / "best" / "model.safetensors").is_file()
