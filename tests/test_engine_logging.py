"""Per-step logs (reader_cost, batch_cost, ips like PaddleClas), VisualDL event files, GoogLeNetLoss."""
import json
import time

import numpy as np
import pytest

from hubcls._paddle import import_paddle
from hubcls.engine._synthetic import ArrayLoader, blobs, tiny_net
from hubcls.engine.config import load_config
from hubcls.engine.trainer import Trainer
from hubcls.errors import ConfigError

paddle = import_paddle()


class SlowLoader(ArrayLoader):
    """Every batch takes ``delay`` seconds to arrive, so reader_cost has a known lower bound."""

    def __init__(self, *a, delay=0.0, **kw):
        super().__init__(*a, **kw)
        self.delay = delay

    def __iter__(self):
        for b in super().__iter__():
            time.sleep(self.delay)
            yield b


def _cfg(out, **glob):
    return load_config({
        "Global": {"epochs": 2, "output_dir": str(out), "seed": 1, "report": False, "device": "cpu",
                   "print_batch_step": 2, **glob},
        "Arch": {"name": "TinyNet", "class_num": 4},
        "Loss": {"Train": [{"CELoss": {}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.1}},
        "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
    })


def test_step_lines_and_jsonl_carry_reader_cost_batch_cost_ips(tmp_path, capsys):
    paddle.seed(0)
    delay = 0.05
    t = Trainer(_cfg(tmp_path), model=tiny_net(4), train_loader=SlowLoader(blobs(64, 4, 16), 16, seed=1, delay=delay),
                eval_loader=ArrayLoader(blobs(16, 4, 16, seed=2), 16, shuffle=False), quiet=False)
    t.train()
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[Train]")]
    # 4 steps per epoch, a line every 2 steps
    assert [line.split("]")[1] + "]" + line.split("]")[2] for line in lines] == [
        "[Epoch 1/2][Iter: 2/4", "[Epoch 1/2][Iter: 4/4", "[Epoch 2/2][Iter: 2/4", "[Epoch 2/2][Iter: 4/4"]
    assert all(k in lines[0] for k in ("lr: ", "loss: ", "top1: ", "batch_cost: ", "reader_cost: ", "ips: ", "eta: "))
    log = [json.loads(x) for x in (t.output_dir / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if r["type"] == "step"]
    assert len(steps) == 4
    for r in steps:
        assert delay * 0.9 <= r["reader_cost"] <= r["batch_cost"]  # the loader's sleep is reader time
        assert r["ips"] == pytest.approx(16 / r["batch_cost"], rel=1e-6)  # window average, 16 images a step
        assert 0 <= r["top1"] <= 1 and np.isfinite(r["loss"])
    assert steps[-1]["eta_s"] == 0 and steps[0]["eta_s"] > 0
    # the loss on the line is the JSONL's, printed with 5 decimals
    assert f"loss: {steps[0]['loss']:.5f}" in lines[0]


def test_visualdl_event_files_hold_losses_metrics_lr_and_images(tmp_path):
    pytest.importorskip("visualdl")
    from visualdl import LogReader

    paddle.seed(0)
    cfg = _cfg(tmp_path, use_visualdl=True, visualdl_images=3)
    cfg["DataLoader"] = {"Train": {"dataset": {"transform_ops": [
        {"NormalizeImage": {"scale": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}]}}}
    train = blobs(32, 4, 16)
    t = Trainer(cfg, model=tiny_net(4), train_loader=ArrayLoader(train, 16, seed=1, shuffle=False),
                eval_loader=ArrayLoader(blobs(16, 4, 16, seed=2), 16, shuffle=False), quiet=True)
    t.train()
    vdl = t.output_dir / "vdl"
    files = list(vdl.glob("vdlrecords.*.log"))
    assert len(files) == 1
    reader = LogReader(file_path=str(files[0]))
    tags = reader.get_tags()
    for tag in ("train/loss", "train/lr", "train/top1", "train/batch_cost", "train/reader_cost", "train/ips",
                "epoch/train_loss", "epoch/eval_top1", "epoch/eval_top2", "epoch/eval_loss"):
        assert tag in tags["scalar"], tag
    assert sorted(tags["image"]) == ["train/images/0", "train/images/1", "train/images/2"]
    log = [json.loads(x) for x in (t.output_dir / "train_log.jsonl").read_text().splitlines()]
    epochs = [r for r in log if r["type"] == "epoch"]
    got = [(s.id, s.value) for s in reader.get_data("scalar", "epoch/eval_top1")]
    assert got == [(r["epoch"], pytest.approx(r["eval_top1"], abs=1e-6)) for r in epochs]
    steps = [r for r in log if r["type"] == "step"]
    got = [(s.id, s.value) for s in reader.get_data("scalar", "train/loss")]
    assert got == [(r["global_step"], pytest.approx(r["loss"], rel=1e-5)) for r in steps]
    lrs = [s.value for s in reader.get_data("scalar", "train/lr")]
    assert lrs == [pytest.approx(r["lr"], rel=1e-5) for r in steps]
    # the images are the first batch un-normalised: x * std + mean, then / scale (1.0) -> 0..255 clipped
    from hubcls.engine.visualdl_log import to_display

    shown = to_display(train.images[:3], (1.0, [0.5] * 3, [0.25] * 3))
    ref = np.clip(np.rint(train.images[:3] * 0.25 + 0.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(shown, ref)
    assert len(reader.get_data("image", "train/images/0")) == 2  # one per epoch


def test_visualdl_missing_is_a_clear_error_before_the_model_is_built(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_visualdl(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == "visualdl" or name.startswith("visualdl.")):
            raise ImportError("No module named 'visualdl'")
        return real_import(name, globals, locals, fromlist, level)

    import hubcls.engine.trainer as trainer_mod

    built = []
    monkeypatch.setattr(trainer_mod, "build_model", lambda *a, **k: built.append(1))
    monkeypatch.setattr(builtins, "__import__", no_visualdl)
    with pytest.raises(ConfigError, match=r"Global.use_visualdl .*pip install 'hubcls\[visualdl\]'"):
        Trainer(_cfg(tmp_path, use_visualdl=True))
    assert built == []


def _log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_googlenet_loss_weights_and_training_with_aux_heads(tmp_path):
    from hubcls.engine.losses import CombinedLoss, GoogLeNetLoss

    rng = np.random.default_rng(0)
    outs = [rng.normal(size=(5, 7)).astype("float32") for _ in range(3)]
    label = rng.integers(0, 7, 5)
    ce = [-_log_softmax(o)[np.arange(5), label].mean() for o in outs]
    batch = {"label": paddle.to_tensor(label)}
    got = GoogLeNetLoss()([paddle.to_tensor(o) for o in outs], batch)
    assert float(got) == pytest.approx(ce[0] + 0.3 * ce[1] + 0.3 * ce[2], rel=1e-5)
    # evaluation: the aux heads do not run, plain CE on the logits
    assert float(GoogLeNetLoss()(paddle.to_tensor(outs[0]), batch)) == pytest.approx(ce[0], rel=1e-5)
    total, _ = CombinedLoss([("GoogLeNetLoss", {"weight": 2.0})])([paddle.to_tensor(o) for o in outs], batch)
    assert float(total) == pytest.approx(2 * (ce[0] + 0.3 * ce[1] + 0.3 * ce[2]), rel=1e-5)
    with pytest.raises(ConfigError, match="needs the model's 3 outputs"):
        GoogLeNetLoss()([paddle.to_tensor(o) for o in outs[:2]], batch)

    # PaddleClas 2.x GoogLeNet.yaml's loss/metric spelling trains GoogLeNet with its aux heads
    from hubcls.engine.trainer import build_model

    cfg = load_config({
        "Global": {"epochs": 1, "output_dir": str(tmp_path), "report": False, "device": "cpu", "print_batch_step": 1},
        "Arch": {"name": "GoogLeNet", "class_num": 3},
        "Loss": {"Train": [{"GoogLeNetLoss": {"weight": 1.0}}], "Eval": [{"GoogLeNetLoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.01}},
        "Metric": {"Train": [{"GoogLeNetTopkAcc": {"topk": [1, 2]}}], "Eval": [{"GoogLeNetTopkAcc": {"topk": [1, 2]}}]},
    })
    paddle.seed(0)
    model = build_model(cfg, log=lambda *_: None)
    assert model.aux_logits
    aux_before = model._out1.weight.numpy().copy()
    x = np.random.default_rng(1).normal(size=(4, 3, 224, 224)).astype("float32")
    data = blobs(4, 3, 224)
    data.images[:] = x
    t = Trainer(cfg, model=model, train_loader=ArrayLoader(data, 2, shuffle=False),
                eval_loader=ArrayLoader(data, 2, shuffle=False), quiet=True)
    res = t.train()
    assert not np.allclose(model._out1.weight.numpy(), aux_before)  # the aux heads were trained
    assert "eval_top1" in res["history"][-1] and np.isfinite(res["history"][-1]["train_loss"])
