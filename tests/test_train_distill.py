"""Distillation (SSLD): losses vs NumPy, frozen teacher, unlabelled data, label-smoothing guard,
teacher logit cache; transfer learning from a checkpoint with another class count."""
import numpy as np
import pytest

from hubcls._paddle import import_paddle
from hubcls.engine import distill
from hubcls.engine._synthetic import ArrayDataset, ArrayLoader, blobs, tiny_net
from hubcls.engine.config import load_config
from hubcls.engine.trainer import Trainer, build_model
from hubcls.errors import ConfigError

paddle = import_paddle()


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_distillation_losses_match_numpy():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(5, 7)).astype("float32"), rng.normal(size=(5, 7)).astype("float32") * 3
    T = 2.0
    p, q = _softmax(s / T), _softmax(t / T)
    kl = lambda a, b: (a * np.log(a / b)).sum(1)  # noqa: E731
    m = (p + q) / 2
    S, Tt = paddle.to_tensor(s), paddle.to_tensor(t)
    assert float(distill.js_div(S, Tt, T)) == pytest.approx(np.mean(0.5 * kl(p, m) + 0.5 * kl(q, m)), rel=1e-4)
    assert float(distill.kl_div(S, Tt, T)) == pytest.approx(T * T * np.mean(kl(q, p)), rel=1e-4)
    assert float(distill.dml(S, Tt, T)) == pytest.approx(np.mean(0.5 * (kl(p, q) + kl(q, p))), rel=1e-4)
    assert float(distill.js_div(S, S, 1.0)) == pytest.approx(0.0, abs=1e-6)
    # top-k teacher: classes outside the mask get no probability
    mask = np.zeros((5, 7), "float32")
    mask[:, :3] = 1
    qk = _softmax(np.where(mask > 0, t, -1e9))
    got = float(distill.kl_div(S, Tt, 1.0, paddle.to_tensor(mask)))
    assert got == pytest.approx(np.mean((qk[:, :3] * np.log(qk[:, :3] / _softmax(s)[:, :3])).sum(1)), rel=1e-4)


def _cfg(tmp_path, **d):
    over = {"loss": "JSDiv", "label_weight": 0.0}
    over.update(d)
    return load_config({
        "Global": {"epochs": 2, "output_dir": str(tmp_path), "seed": 1, "report": False, "device": "cpu",
                   "eval_during_train": False},
        "Arch": {"name": "TinyNet", "class_num": 4},
        "Loss": {"Train": [{"CELoss": {}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Constant", "learning_rate": 0.1}},
        "Distillation": dict({"teacher": {"name": "TinyNet"}}, **over),
    })


def _teacher():
    paddle.seed(42)
    return tiny_net(4, width=8)


def test_teacher_is_frozen_and_student_learns_from_it(tmp_path):
    ds = blobs(48, 4, 16)
    teacher = _teacher()
    before = {k: v.numpy().copy() for k, v in teacher.state_dict().items()}
    paddle.seed(0)
    t = distill.DistillTrainer(_cfg(tmp_path), model=tiny_net(4), teacher=teacher,
                               train_loader=ArrayLoader(ds, 16, seed=1), quiet=True)
    t.train()
    for k, v in teacher.state_dict().items():  # weights and BN statistics untouched
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    assert not teacher.training
    # the student moved towards the teacher: JS divergence on the training images dropped
    x = paddle.to_tensor(ds.images)
    t.model.eval()
    js_after = float(distill.js_div(t.model(x), teacher(x)))
    paddle.seed(0)
    js_before = float(distill.js_div(tiny_net(4).eval()(x), teacher(x)))
    assert js_after < 0.5 * js_before


def test_ssld_refuses_label_smoothing(tmp_path):
    cfg = _cfg(tmp_path)
    cfg["Loss"]["Train"][0]["CELoss"]["epsilon"] = 0.1
    with pytest.raises(ConfigError, match=r"Loss.Train\[0\].CELoss.epsilon=0.1: label smoothing must be off for SSLD"):
        distill.DistillTrainer(cfg, model=tiny_net(4), teacher=_teacher(), quiet=True)
    with pytest.raises(ConfigError, match="Distillation.loss: 'JS' is not one of DML, JSDiv, KL"):
        load_config(_cfg(tmp_path, loss="JS"))


def test_unlabelled_images_feed_only_the_distillation_loss(tmp_path):
    ds = blobs(32, 4, 16)
    extra = blobs(32, 4, 16, seed=5)

    def run(unl_labels, use_unl=True):
        paddle.seed(0)
        unl = ArrayLoader(ArrayDataset(extra.images, unl_labels, [str(i) for i in range(4)]), 16, seed=9) if use_unl else None
        t = distill.DistillTrainer(_cfg(tmp_path, label_weight=1.0), model=tiny_net(4), teacher=_teacher(),
                                   train_loader=ArrayLoader(ds, 16, seed=1), unlabeled_loader=unl, quiet=True)
        t.train(overwrite=True)  # the three runs share one run directory
        return {k: v.numpy() for k, v in t.model.state_dict().items()}

    a = run(np.zeros(32, np.int64))
    b = run(np.full(32, 3, np.int64))
    c = run(None, use_unl=False)
    for k in a:  # the unlabelled set's "labels" never matter ...
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert any(not np.array_equal(a[k], c[k]) for k in a)  # ... but its images do


def test_teacher_cache_reuses_and_invalidates(tmp_path):
    ds = blobs(32, 4, 16)
    ops = [{"ResizeImage": {"size": 16}}]

    def run(cache, ops=ops, epochs=2):
        cfg = _cfg(tmp_path, loss="KL", label_weight=0.5, **({"cache": cache} if cache else {}))
        cfg["Global"]["epochs"] = epochs
        cfg["DataLoader"] = {"Train": {"dataset": {"name": "X", "transform_ops": ops}}}
        paddle.seed(0)
        t = distill.DistillTrainer(cfg, model=tiny_net(4), teacher=_teacher(), train_loader=ArrayLoader(ds, 16, seed=1),
                                   quiet=True)
        t.train(overwrite=True)  # the runs share one run directory
        return t, {k: v.numpy() for k, v in t.model.state_dict().items()}

    cache_dir = tmp_path / "cache"
    t1, w_cached = run({"dir": str(cache_dir), "topk": 4})
    _, w_plain = run(None)
    for k in w_plain:  # top-k = all classes: the cached run trains exactly like the uncached one
        np.testing.assert_allclose(w_cached[k], w_plain[k], rtol=1e-5, atol=1e-6, err_msg=k)
    files = list(cache_dir.glob("teacher_top4_*.npz"))
    assert len(files) == 1
    with np.load(files[0]) as z:
        assert sorted(z["index"].tolist()) == list(range(32)) and z["values"].shape == (32, 4)
    # same teacher + transforms: the file is reused (a run with the teacher call broken still works)
    t2, _ = run({"dir": str(cache_dir), "topk": 4}, epochs=1)
    assert t2.cache.path == files[0] and len(t2.cache.have) == 32
    # other transforms -> another cache file
    run({"dir": str(cache_dir), "topk": 4}, ops=[{"ResizeImage": {"size": 20}}], epochs=1)
    assert len(list(cache_dir.glob("teacher_top4_*.npz"))) == 2
    with pytest.raises(ConfigError, match="deterministic train transforms"):
        run({"dir": str(cache_dir), "topk": 4}, ops=[{"RandFlipImage": {"flip_code": 1}}], epochs=1)


def test_transfer_from_checkpoint_with_other_class_count(tmp_path):
    src = build_model(load_config({"Arch": {"name": "MobileNetV3_small_x0_35", "class_num": 10}}))
    path = tmp_path / "src.pdparams"
    paddle.save(src.state_dict(), str(path))
    cfg = load_config({"Global": {"epochs": 1, "output_dir": str(tmp_path / "run"), "report": False, "device": "cpu",
                                  "eval_during_train": False},
                       "Arch": {"name": "MobileNetV3_small_x0_35", "class_num": 4, "pretrained": str(path),
                                "freeze_stages": 2, "lr_mult_list": [0.0, 0.0, 0.5, 1.0, 1.0]},
                       "Loss": {"Train": [{"CELoss": {}}]},
                       "Optimizer": {"name": "Momentum", "lr": {"name": "Constant", "learning_rate": 0.05}}})
    model = build_model(cfg)
    ref = src.state_dict()
    for k, v in model.state_dict().items():
        if not k.startswith("fc."):  # the backbone came from the checkpoint
            np.testing.assert_array_equal(v.numpy(), ref[k].numpy(), err_msg=k)
    assert list(model.state_dict()["fc.weight"].shape)[-1] == 4
    # freeze_stages=2: stem and stage 1 keep the transferred weights, later stages train
    x = blobs(32, 4, 32)
    t = Trainer(cfg, model=model, train_loader=ArrayLoader(x, 16), quiet=True)
    t.train()
    after = model.state_dict()
    assert np.array_equal(after["conv.conv.weight"].numpy(), ref["conv.conv.weight"].numpy())
    assert np.array_equal(after["blocks.0.expand_conv.conv.weight"].numpy(), ref["blocks.0.expand_conv.conv.weight"].numpy())
    assert not np.array_equal(after["blocks.8.expand_conv.conv.weight"].numpy(), ref["blocks.8.expand_conv.conv.weight"].numpy())


def test_shipped_distillation_and_transfer_configs_validate():
    for name in ("ssld_stage1_MobileNetV3_large_x1_0", "ssld_stage2_MobileNetV3_large_x1_0", "ResNet50_vd_10w_finetune"):
        cfg = load_config(name)
        assert cfg["Arch"]["name"]
    s1 = load_config("ssld_stage1_MobileNetV3_large_x1_0")
    assert s1["Distillation"]["loss"] == "JSDiv" and s1["Distillation"]["teacher"]["name"] == "ResNet50_vd_ssld"
    assert load_config("ResNet50_vd_10w_finetune")["Arch"]["lr_mult_list"] == [0.1, 0.1, 0.2, 0.2, 0.3]


def test_file_based_unlabelled_list_through_the_data_loader(tmp_path):
    """DataLoader.Unlabeled with an UnlabeledList (paths only) is built by hubcls.data and consumed."""
    from hubcls.data.demo import ensure_demo_dataset

    root = tmp_path / "demo"
    ensure_demo_dataset(root, num_classes=4, train_per_class=4, val_per_class=4)
    lines = [l.split(" ")[0] for l in (root / "val_list.txt").read_text().splitlines() if l.strip()]
    (root / "unlabeled.txt").write_text("\n".join(lines) + "\n")  # no labels at all
    ops = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 32}},
           {"NormalizeImage": {"scale": 1.0 / 255, "mean": [0.5] * 3, "std": [0.5] * 3, "order": ""}}]
    demo = {"name": "DemoDataset", "image_root": str(root), "num_classes": 4, "train_per_class": 4, "val_per_class": 4}
    cfg = load_config({
        "Global": {"epochs": 1, "output_dir": str(tmp_path / "out"), "report": False, "device": "cpu",
                   "eval_during_train": False},
        "Arch": {"name": "MobileNetV3_small_x0_35", "class_num": 4},
        "Loss": {"Train": [{"CELoss": {}}]},
        "Optimizer": {"name": "Momentum", "lr": {"name": "Constant", "learning_rate": 0.01}},
        "Distillation": {"teacher": {"name": "MobileNetV3_small_x0_35", "class_num": 4}, "loss": "JSDiv"},
        "DataLoader": {
            "Train": {"dataset": dict(demo, split="train", transform_ops=ops), "sampler": {"batch_size": 8}},
            "Unlabeled": {"dataset": {"name": "UnlabeledList", "image_root": str(root),
                                      "cls_label_path": str(root / "unlabeled.txt"), "transform_ops": ops},
                          "sampler": {"batch_size": 8, "shuffle": True}},
        },
    })
    t = distill.DistillTrainer(cfg, quiet=True)
    t.setup_train()
    assert len(t.unlabeled_loader.dataset) == 16
    seen = []
    orig = t._next_unlabeled
    t._next_unlabeled = lambda e: seen.append(1) or orig(e)
    t.train()
    assert len(seen) == len(t.train_loader) == 2  # one unlabelled batch per step
