"""Export directories: contents, config-driven export (-c), labels, input-size scaling, errors, the
paddle2onnx hardtanh fix (issue 9.3/9.4)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import hubcls  # noqa: E402
from hubcls.data.label_lists import read_labels  # noqa: E402
from hubcls.deploy import Predictor, export_model  # noqa: E402
from hubcls.deploy.export import read_export  # noqa: E402
from hubcls.errors import ConfigError, ExportError  # noqa: E402

HAS_ONNX = all(__import__("importlib").util.find_spec(m) for m in ("onnxruntime", "paddle2onnx", "onnx"))


def test_export_dir_contents_and_preprocess_is_the_eval_pipeline(tmp_path):
    from hubcls.data.transforms import eval_ops_config

    m = hubcls.create_model("MobileNetV3_small_x0_35")
    cfg = m.pretrained_cfg.with_(input_size=64, resize_short=73)
    out = export_model(m, tmp_path / "e", cfg=cfg)
    names = sorted(os.listdir(out))
    # a model package (manifest + safetensors weights) with the program beside it
    assert {"inference.json", "inference.pdiparams", "model.json", "model.safetensors"} <= set(names)
    spec = read_export(out)
    assert spec["ops"] == json.loads(json.dumps(eval_ops_config(cfg)))  # exactly hubcls.data's eval op list
    assert spec["input_size"] == (3, 64, 64)
    meta = spec["meta"]
    assert meta["input"]["shape"] == [None, 3, 64, 64] and spec["manifest"]["name"] == "MobileNetV3_small_x0_35"
    assert meta["versions"]["paddle"] and len(meta["weights_id"]) == 32
    assert spec["manifest"]["preprocess"] == spec["ops"] and spec["manifest"]["input_size"] == [3, 64, 64]
    if spec["labels"] is not None:  # the zoo's ImageNet label file, when shipped
        assert len(spec["labels"]) == 1000


def test_input_size_override_scales_resize_with_crop(tmp_path):
    m = hubcls.create_model("MobileNetV3_small_x0_35")
    out = export_model(m, tmp_path / "e", input_size=112)  # zoo cfg: resize 256 / crop 224
    ops = read_export(out)["ops"]
    assert ops[0]["ResizeImage"]["resize_short"] == 128 and ops[1]["CropImage"]["size"] == 112
    with pytest.raises(ConfigError, match="non-square"):
        export_model(m, tmp_path / "f", input_size=(96, 128))


def test_dynamic_batch_program(tmp_path):
    m = hubcls.create_model("MobileNetV3_small_x0_35")
    m.eval()
    out = export_model(m, tmp_path / "e", input_size=64)
    p = Predictor(out, backend="inference", threads=1)
    x = np.random.default_rng(0).standard_normal((5, 3, 64, 64)).astype(np.float32)
    with paddle.no_grad():
        ref = m(paddle.to_tensor(x)).numpy()
    for n in (1, 2, 5):
        np.testing.assert_allclose(p.logits(x[:n]), ref[:n], atol=1e-5)


def test_read_labels_formats(tmp_path):
    f = tmp_path / "l.txt"
    f.write_text("0 tench, Tinca tinca\n1 goldfish\n\n2 great white shark\n")
    assert read_labels(f) == ["tench, Tinca tinca", "goldfish", "great white shark"]
    f.write_text("cat\ndog\n")
    assert read_labels(f) == ["cat", "dog"]
    f.write_text("7 wrong-index\n")  # a leading number that is not the line index is part of the name
    assert read_labels(f) == ["7 wrong-index"]


def test_errors_for_bad_directories(tmp_path):
    with pytest.raises(ConfigError, match="no such file or directory"):
        Predictor(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no model"):
        Predictor(tmp_path / "empty")
    with pytest.raises(ExportError, match="no inference program"):
        read_export(tmp_path / "empty")
    m = hubcls.create_model("MobileNetV3_small_x0_35")
    out = export_model(m, tmp_path / "e", input_size=64)
    (out / "model.json").unlink()
    with pytest.raises(ConfigError, match="no model.json"):
        Predictor(out)
    with pytest.raises(ConfigError, match="model_int8.onnx"):
        Predictor(export_model(m, tmp_path / "g", input_size=64), backend="int8")


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime, paddle2onnx")
def test_hardtanh_bounds_survive_onnx(tmp_path):
    """paddle2onnx 2.1 writes Clip(-1, 1) for every hardtanh; export_onnx puts the real bounds back."""
    import onnxruntime as ort

    from hubcls.deploy.export import export_onnx, save_inference_program

    class Net(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = paddle.nn.Conv2D(4, 4, 1)
            self.gate = paddle.nn.Hardtanh(0.0, 1.0)
            self.clip6 = paddle.nn.Hardtanh(-2.0, 6.0)

        def forward(self, x):
            return self.clip6(self.conv(x) * 3) + self.gate(x)

    net = Net()
    net.eval()
    x = (np.random.default_rng(0).standard_normal((2, 4, 5, 5)) * 4).astype(np.float32)
    ref = net(paddle.to_tensor(x)).numpy()
    save_inference_program(net, tmp_path / "inference", (4, 5, 5))
    onnx_file = export_onnx(tmp_path)
    got = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime, paddle2onnx")
def test_onnx_conversion_off_the_main_thread_prints_nothing(tmp_path, capfd):
    """auto's background switch converts to ONNX in a thread, where fd 1 cannot be redirected without
    swallowing the user's own prints: paddle2onnx's C++ "[Paddle2ONNX] ..." lines landed in the middle
    of the user's output. Off the main thread the conversion runs in a child Python: nothing on fd
    1/2, the same ONNX answers as the main thread's in-process conversion, and a failure names it."""
    import threading

    import onnxruntime as ort

    from hubcls.deploy.export import export_onnx, save_inference_program
    from hubcls.errors import ExportError

    paddle.seed(5)
    m = hubcls.create_model("MobileNetV3_small_x0_35")
    save_inference_program(m, tmp_path / "inference", (3, 64, 64))
    main_file = export_onnx(tmp_path, out_file=str(tmp_path / "main.onnx"))
    capfd.readouterr()
    result = {}
    t = threading.Thread(target=lambda: result.update(path=export_onnx(tmp_path, out_file=str(tmp_path / "bg.onnx"))))
    t.start()
    t.join(600)
    out, err = capfd.readouterr()
    assert "Paddle2ONNX" not in out and "Paddle2ONNX" not in err and out == ""
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    run = [ort.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
           for f in (main_file, result["path"])]
    np.testing.assert_array_equal(run[0], run[1])
    (tmp_path / "inference.pdiparams").write_bytes(b"not parameters")
    errors = []

    def broken():
        try:
            export_onnx(tmp_path, out_file=str(tmp_path / "broken.onnx"))
        except ExportError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=broken)
    t.start()
    t.join(600)
    assert errors and "paddle2onnx could not convert" in errors[0] and "exit code" in errors[0]


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxruntime, paddle2onnx")
def test_export_from_training_config_uses_its_transforms_labels_and_weights(tmp_path):
    """`hubcls export -c quickstart -o Global.pretrained_model=W --output DIR`: the config's Infer transforms,
    its class_id_map_file labels and the given weights."""
    from _deploy_helpers import dygraph_logits, photos

    m = hubcls.create_model("MobileNetV3_small_x0_35", num_classes=6)
    m.eval()
    w = tmp_path / "w.pdparams"
    paddle.save(m.state_dict(), str(w))
    run = tmp_path / "run"
    (run / "output/quickstart/demo_data").mkdir(parents=True)
    (run / "output/quickstart/demo_data/label_list.txt").write_text("".join(f"{i} c{i}\n" for i in range(6)))
    out = tmp_path / "exp"
    r = subprocess.run([sys.executable, "-m", "hubcls", "export", "-c", "quickstart", "-o",
                        f"Global.pretrained_model={w}", "--output", str(out), "--onnx"], cwd=str(run),
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, OMP_NUM_THREADS="1", HUBCLS_HOME=str(tmp_path / "home")))
    assert r.returncode == 0, r.stderr
    spec = read_export(out)
    assert spec["labels"] == [f"c{i}" for i in range(6)]
    assert spec["ops"][0] == {"ResizeImage": {"resize_short": 73}} and spec["input_size"] == (3, 64, 64)
    from hubcls.data import build_transforms

    imgs = photos()[:3]
    ref, _ = dygraph_logits(m, build_transforms(spec["ops"]), imgs)
    p = Predictor(out, backend="onnxruntime", threads=1)
    np.testing.assert_allclose(p.logits(p.preprocess(imgs, channel_order="RGB")), ref, atol=1e-4)
    res = p.predict(imgs, top_k=2, channel_order="RGB")
    assert all(set(r_) <= {f"c{i}" for i in range(6)} and len(r_) == 2 for r_ in res)
