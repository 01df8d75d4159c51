"""PaddleClas release/2.0 (2020) configs: schema detection, conversion to 2.x (every key mapped or
reported), old-key overrides, `hubcls config convert`, and the 2020 quick-start recipe end to end.

The configs are PaddleClas's own, recorded as parsed mappings in tests/data/paddleclas_configs.json.gz
(see tests/tools/make_paddleclas_configs.py for the source commits).
"""
import gzip
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from hubcls.engine import config_legacy as legacy
from hubcls.engine.config import load_config
from hubcls.errors import ConfigError, ConfigWarning

DATA = Path(__file__).parent / "data" / "paddleclas_configs.json.gz"


def _configs(kind):
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        return json.load(fh)[kind]["configs"]


OLD = _configs("release20")


def _old(name):
    return json.loads(json.dumps(OLD[f"configs/{name}"]))  # a fresh copy


def test_the_recorded_set_is_complete():
    assert len(OLD) == 128  # every configs/**.y*ml of release/2.0
    assert all(legacy.is_release20(c) for c in OLD.values())


@pytest.mark.parametrize("path", sorted(OLD))
def test_every_release20_config_converts_loads_and_reports_every_key(path):
    raw = json.loads(json.dumps(OLD[path]))
    new, notes = legacy.convert(raw)
    assert legacy.unmapped_keys(raw, notes) == []  # each key: mapped, or "not used (why)"
    assert all(n.new or n.why for n in notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)  # the converter writes no key hubcls does not know
        cfg = load_config(raw, ["Global.device=cpu"])  # validates, incl. every Arch kwarg against the model
    assert cfg["Arch"]["name"] and cfg["_converted_from"]
    if "TRAIN" in raw:
        assert cfg["Global"]["epochs"] == raw["epochs"]
        assert cfg["DataLoader"]["Train"]["dataset"]["cls_label_path"] == raw["TRAIN"]["file_list"]
        assert cfg["DataLoader"]["Train"]["sampler"]["drop_last"] is True
        assert cfg["DataLoader"]["Eval"]["sampler"]["drop_last"] is False


def test_resnet50_vd_recipe_maps_to_the_same_training():
    cfg = load_config(_old("ResNet/ResNet50_vd.yaml"))
    assert cfg["Arch"] == {"name": "ResNet50_vd", "class_num": 1000}
    opt = cfg["Optimizer"]
    assert opt["name"] == "Momentum" and opt["momentum"] == 0.9
    assert opt["lr"] == {"learning_rate": 0.1, "name": "Cosine"}
    assert opt["regularizer"] == {"name": "L2", "coeff": pytest.approx(7e-5)}
    # use_mix + ls_epsilon: mixup batch op, smoothed CE, no training metrics (release/2.0 skips them)
    train = cfg["DataLoader"]["Train"]
    assert train["dataset"]["batch_transform_ops"] == [{"MixupOperator": {"alpha": 0.2}}]
    assert cfg["Loss"]["Train"] == [{"MixCELoss": {"epsilon": 0.1}}]
    assert "Train" not in cfg["Metric"] and cfg["Metric"]["Eval"] == [{"TopkAcc": {"topk": [1, 5]}}]
    assert train["sampler"]["batch_size"] == 256 and cfg["DataLoader"]["Eval"]["sampler"]["batch_size"] == 64
    assert cfg["Global"]["output_dir"] == "./output/" and cfg["Global"]["seed"] == 0
    # release/2.0's batch_size is global: 8 processes of 32
    cfg8 = load_config(_old("ResNet/ResNet50_vd.yaml"), world_size=8)
    assert cfg8["DataLoader"]["Train"]["sampler"]["batch_size"] == 32


def test_piecewise_and_warmup_schedules():
    cfg = load_config(_old("ResNet/ResNet50.yaml"))
    lr = cfg["Optimizer"]["lr"]
    assert lr["name"] == "Piecewise" and lr["decay_epochs"] == [30, 60, 90]
    np.testing.assert_allclose(lr["values"], [0.1, 0.01, 0.001, 0.0001])
    assert cfg["Loss"]["Train"] == [{"CELoss": {}}]  # ls_epsilon absent / -1: no smoothing
    cw = load_config(_old("Distillation/R50_vd_distill_MV3_large_x1_0.yaml"))["Optimizer"]["lr"]
    assert cw == {"learning_rate": 1.3, "name": "Cosine", "warmup_epoch": 5}  # CosineWarmup's default 5


def _release20_exponential_warmup(lr, rate, decay_epochs, warmup_epoch, steps_per_epoch, n):
    """release/2.0's ExponentialWarmup as its training loop drives it: LinearWarmup around
    ExponentialDecay, stepped every iteration during the warm-up, then only every
    int(decay_epochs * steps_per_epoch) iterations (update_specified); the lr of iteration c is the
    one set before that iteration's scheduler step."""
    warm = warmup_epoch * steps_per_epoch
    interval = int(decay_epochs * steps_per_epoch)
    last_epoch = 0  # LinearWarmup.__init__ steps once

    def value(e):
        return lr * e / warm if e < warm else lr * rate ** (e - warm)

    out = []
    for c in range(n):
        out.append(value(last_epoch))
        if max(0, c - warm) % interval == 0:
            last_epoch += 1
    return out


def test_exponential_warmup_matches_release20_semantics():
    from hubcls.engine.optim import build_lr

    cfg = load_config(_old("EfficientNet/EfficientNetB0.yaml"))
    lr_cfg = cfg["Optimizer"]["lr"]
    assert lr_cfg["name"] == "Exponential" and cfg["Optimizer"]["name"] == "RMSProp"
    assert cfg["EMA"] == {"decay": 0.9999} and cfg["Arch"]["padding_type"] == "SAME"
    assert cfg["Arch"]["drop_connect_rate"] == 0.1  # override_params flattened into model kwargs
    steps, epochs = 5, 12
    sched = build_lr(lr_cfg, epochs=epochs, steps_per_epoch=steps)
    got = []
    for _ in range(steps * epochs):
        got.append(sched.last_lr)
        sched.step()
    ref = _release20_exponential_warmup(0.032, 0.97, 2.4, 5, steps, steps * epochs)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_googlenet_and_distillation_architectures():
    g = load_config(_old("Inception/GoogLeNet.yaml"))
    assert g["Loss"]["Train"] == [{"GoogLeNetLoss": {}}]
    d = load_config(_old("Distillation/R50_vd_distill_MV3_large_x1_0.yaml"))
    assert d["Arch"]["name"] == "MobileNetV3_large_x1_0"
    assert d["Distillation"]["teacher"] == {"name": "ResNet50_vd", "pretrained": False, "class_num": 1000,
                                            "checkpoint": "./pretrained/ResNet50_vd_ssld_pretrained"}
    assert d["Distillation"]["loss"] == "DML"  # release/2.0's JSDivLoss is the symmetric KL
    q = load_config(_old("quick_start/R50_vd_distill_MV3_large_x1_0.yaml"))
    assert q["Distillation"]["teacher"]["checkpoint"] == "./pretrained/flowers102_R50_vd_final/ppcls"
    assert q["Global"]["pretrained_model"] == "./pretrained/MobileNetV3_large_x1_0_pretrained"
    k = load_config(_old("quick_start/ResNet50_vd_finetune_kunlun.yaml"))  # load_static_weights: Paddle 1.x
    assert k["Arch"]["pretrained"] == "./pretrained/ResNet50_vd_pretrained" and not k["Global"]["pretrained_model"]
    v = load_config(_old("quick_start/VGG16_finetune_kunlun.yaml"))
    assert v["Arch"]["stop_grad_layers"] == 5


def test_overrides_in_the_old_and_the_new_key_space():
    raw = _old("quick_start/ResNet50_vd.yaml")
    cfg = load_config(raw, ["TRAIN.batch_size=2", "epochs=3", "use_gpu=False", "VALID.transforms.1.ResizeImage.resize_short=64",
                            "LEARNING_RATE.params.lr=0.5", "Global.print_batch_step=1"])
    assert cfg["DataLoader"]["Train"]["sampler"]["batch_size"] == 2
    assert cfg["Global"]["epochs"] == 3 and cfg["Global"]["device"] == "cpu"
    assert cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"][1] == {"ResizeImage": {"resize_short": 64}}
    assert cfg["Optimizer"]["lr"]["learning_rate"] == 0.5 and cfg["Global"]["print_batch_step"] == 1
    # the 2.x key wins over the old one (applied after the conversion)
    assert load_config(raw, ["epochs=3", "Global.epochs=4"])["Global"]["epochs"] == 4
    with pytest.raises(ConfigError, match="out of range"):
        load_config(raw, ["VALID.transforms.9.CropImage.size=1"])


def test_unknown_and_mixed_keys_are_reported():
    raw = _old("quick_start/ResNet50_vd.yaml")
    raw["epoch"] = 5  # typo of a flat key
    _, notes = legacy.convert(raw)
    line = [str(n) for n in notes if n.old == "epoch"]
    assert line == ["epoch: not used (not a release/2.0 key; did you mean epochs?)"]
    with pytest.raises(ConfigError, match="mixes release/2.0 sections and 2.x sections"):
        load_config({**raw, "Global": {"epochs": 1}})
    with pytest.raises(ConfigError, match="LEARNING_RATE.function: 'Cosin' is not one of .*did you mean Cosine"):
        load_config({**raw, "LEARNING_RATE": {"function": "Cosin", "params": {"lr": 0.1}}})
    # a release/2.0 key in a 2.x config: the warning gives its 2.x spelling
    with pytest.warns(ConfigWarning, match=r"classes_num: unknown key.*classes_num is a release/2.0 key; in the 2.x schema it is Arch.class_num"):
        load_config({"Global": {"epochs": 1}, "Arch": {"name": "ResNet18"}, "classes_num": 10})


def _hubcls(args, cwd, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1", HUBCLS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "hubcls", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_config_convert_cli_writes_a_config_that_loads_the_same(tmp_path):
    old = tmp_path / "ResNet50_vd.yaml"
    old.write_text(yaml.safe_dump(_old("ResNet/ResNet50_vd.yaml")))
    out = tmp_path / "new" / "ResNet50_vd_2x.yaml"
    r = _hubcls(["config", "convert", str(old), "-o", "TRAIN.batch_size=64", "--output", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.startswith("# converted by `hubcls config convert`") and "#   total_images: not used" in text
    a = load_config(str(out))
    b = load_config(str(old), ["TRAIN.batch_size=64"])
    strip = lambda c: {k: v for k, v in c.items() if not k.startswith("_")}  # noqa: E731
    assert strip(a) == strip(b) and a["DataLoader"]["Train"]["sampler"]["batch_size"] == 64
    r = _hubcls(["config", "convert", str(old)], tmp_path)  # stdout
    assert r.returncode == 0 and yaml.safe_load(r.stdout)["Arch"]["name"] == "ResNet50_vd"
    r = _hubcls(["config", "convert", str(out)], tmp_path)
    assert r.returncode == 2 and "already a 2.x config" in r.stderr


# ------------------------------------------------------------------ the 2020 quick start, as written
def _flowers_standin(root: Path, n_train=32, n_val=8, classes=102):
    """dataset/flowers102 in the layout of the official flowers102.zip: jpg/image_NNNNN.jpg and
    PaddleClas's train_list.txt / val_list.txt ("jpg/image_NNNNN.jpg <label>")."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "jpg").mkdir(parents=True)
    lines = {"train": [], "val": []}
    k = 1
    for split, n in (("train", n_train), ("val", n_val)):
        for _ in range(n):
            label = int(rng.integers(0, classes))
            img = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
            name = f"jpg/image_{k:05d}.jpg"
            Image.fromarray(img).save(root / name, quality=90)
            lines[split].append(f"{name} {label}")
            k += 1
    for split in lines:
        (root / f"{split}_list.txt").write_text("\n".join(lines[split]) + "\n")


@pytest.mark.slow
def test_2020_quick_start_recipe_runs_as_written(tmp_path):
    """release/2.0's docs: `python3 tools/train.py -c ./configs/quick_start/ResNet50_vd.yaml -o use_gpu=False`,
    run here as `hubcls train` on the file as it was (only epochs cut to 1 on the command line)."""
    cfg_path = tmp_path / "configs" / "quick_start" / "ResNet50_vd.yaml"
    cfg_path.parent.mkdir(parents=True)
    cfg_path.write_text(yaml.safe_dump(_old("quick_start/ResNet50_vd.yaml"), sort_keys=False))
    _flowers_standin(tmp_path / "dataset" / "flowers102")
    r = _hubcls(["train", "-c", "./configs/quick_start/ResNet50_vd.yaml", "-o", "use_gpu=False", "-o", "epochs=1"],
                tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "output" / "ResNet50_vd"
    assert (run / "best" / "model.json").is_file() and (run / "last.pdckpt").is_file()
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    epoch = [rec for rec in log if rec["type"] == "epoch"]
    assert len(epoch) == 1 and math.isfinite(epoch[0]["train_loss"]) and "eval_top1" in epoch[0]
    assert "batch_cost" in r.stdout and "reader_cost" in r.stdout  # PaddleClas-style step lines
    # release/2.0's eval: `tools/eval.py -c configs/eval.yaml` style (mode valid), on the trained weights
    r = _hubcls(["eval", "-c", "./configs/quick_start/ResNet50_vd.yaml", "-o", "use_gpu=False", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads(r.stdout[r.stdout.index("{"):])
    assert metrics["num_samples"] == 8 and metrics["top1"] == pytest.approx(epoch[0]["eval_top1"], abs=1e-6)
    # infer with the same old config: the run's best weights, the VALID preprocessing, top-5 of 102
    img = "dataset/flowers102/jpg/image_00033.jpg"
    r = _hubcls(["infer", "-c", "./configs/quick_start/ResNet50_vd.yaml", "-o", "use_gpu=False", img,
                 "--json", "pred.json"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    pred = json.loads((tmp_path / "pred.json").read_text())
    assert len(pred) == 1 and len(pred[0]["class_ids"]) == 5 and all(0 <= c < 102 for c in pred[0]["class_ids"])
