"""Losses, metrics, LR schedules, parameter groups, EMA, AMP fallback and gradient accumulation."""
import math
import warnings

import numpy as np
import pytest

from hubcls._paddle import import_paddle
from hubcls.engine import losses, metrics, optim
from hubcls.engine._synthetic import ArrayLoader, blobs, tiny_net
from hubcls.engine.config import load_config
from hubcls.engine.trainer import Trainer
from hubcls.errors import ConfigError, RegistryError

paddle = import_paddle()


def _log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_ce_label_smoothing_and_soft_targets_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype("float32")
    label = np.array([0, 1, 2, 3, 4, 1])
    eps = 0.1
    target = np.full((6, 5), eps / 5) + np.eye(5)[label] * (1 - eps)
    ref = -(target * _log_softmax(logits)).sum(1).mean()
    got = losses.CELoss(epsilon=eps)(paddle.to_tensor(logits), {"label": paddle.to_tensor(label)})
    assert float(got) == pytest.approx(ref, rel=1e-5)
    hard_ref = -_log_softmax(logits)[np.arange(6), label].mean()
    assert float(losses.CELoss()(paddle.to_tensor(logits), {"label": paddle.to_tensor(label)})) == pytest.approx(hard_ref, rel=1e-5)
    # mixup output: soft (N, K) labels
    lam = 0.7
    soft = lam * np.eye(5)[label] + (1 - lam) * np.eye(5)[label[::-1]]
    got = losses.MixCELoss()(paddle.to_tensor(logits), {"label": paddle.to_tensor(soft.astype("float32"))})
    assert float(got) == pytest.approx(-(soft * _log_softmax(logits)).sum(1).mean(), rel=1e-5)
    with pytest.raises(ConfigError):
        losses.CELoss(epsilon=1.5)
    with pytest.raises(RegistryError, match="did you mean CELoss"):
        losses.LOSSES.get("CELos")


def test_metrics_against_sklearn():
    from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_fscore_support

    rng = np.random.default_rng(1)
    scores = rng.normal(size=(200, 7))
    labels = rng.integers(0, 7, 200)
    scores[np.arange(200), labels] += 1.0
    res = metrics.EvalResult(7, kmax=5, keep_scores=True)
    res.add(scores[:120], labels[:120], np.arange(120))
    res.add(scores[100:], labels[100:], np.arange(100, 200))  # overlapping indices (padded shard)
    res.finalize([res.arrays()])
    assert len(res.labels) == 200
    top = np.argsort(-scores, 1)
    assert metrics.TopkAcc([1, 5]).compute(res) == pytest.approx(
        {"top1": np.mean(top[:, 0] == labels), "top5": np.mean((top[:, :5] == labels[:, None]).any(1))})
    cm = res.confusion()
    np.testing.assert_array_equal(cm, confusion_matrix(labels, top[:, 0], labels=range(7)))
    p, r, f, s = precision_recall_fscore_support(labels, top[:, 0], labels=range(7), zero_division=0)
    rep = metrics.per_class_report(cm)
    np.testing.assert_allclose(rep["precision"], p)
    np.testing.assert_allclose(rep["recall"], r)
    np.testing.assert_allclose(rep["f1"], f)
    # multi-label mAP
    targets = (rng.random((200, 7)) < 0.3).astype("float32")
    ml_scores = rng.normal(size=(200, 7)) + targets
    ref = np.mean([average_precision_score(targets[:, c], ml_scores[:, c]) for c in range(7)])
    assert metrics.mean_average_precision(ml_scores, targets) == pytest.approx(ref, rel=1e-9)


def test_lr_schedules():
    sched = optim.build_lr({"name": "Cosine", "learning_rate": 0.4, "warmup_epoch": 1}, epochs=5, steps_per_epoch=10)
    lrs = []
    for _ in range(50):
        lrs.append(sched.last_lr)
        sched.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.2)          # linear warm-up
    assert lrs[10] == pytest.approx(0.4)                          # peak after warm-up
    assert lrs[30] == pytest.approx(0.2 * (1 + math.cos(math.pi * 20 / 40)))
    assert lrs[-1] < 0.002 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    pw = optim.build_lr({"name": "Piecewise", "decay_epochs": [2, 4], "values": [0.1, 0.01, 0.001]}, 6, 3)
    got = []
    for _ in range(18):
        got.append(pw.last_lr)
        pw.step()
    assert got == [0.1] * 6 + [0.01] * 6 + [0.001] * 6
    with pytest.raises(ConfigError, match="values must have"):
        optim.build_lr({"name": "Piecewise", "decay_epochs": [2], "values": [0.1]}, 6, 3)


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path, monkeypatch):
    # Trainer writes checkpoints under Global.output_dir (relative): keep them out of the checkout
    monkeypatch.chdir(tmp_path)


def _cfg(**over):
    base = {
        "Global": {"epochs": 1, "output_dir": "unused", "seed": 0, "report": False, "device": "cpu"},
        "Arch": {"name": "TinyNet", "class_num": 4},
        "Loss": {"Train": [{"CELoss": {}}]},
        "Optimizer": {"name": "SGD", "lr": {"name": "Constant", "learning_rate": 0.1}},
        "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
    }
    cfg = load_config(base, [f"{k}={v}" for k, v in over.items()])
    return cfg


def test_lr_mult_list_freeze_and_no_weight_decay_groups():
    model = tiny_net(4)
    stages = optim.stage_map(model)
    assert stages["stem.0.weight"] == 0 and stages["blocks.0.0.weight"] == 1
    assert stages["blocks.1.0.weight"] == 2 and stages["fc.weight"] is None
    groups = optim.param_groups(model, lr_mult_list=[0.0, 0.5, 1.0], no_wd_norm_bias=True)
    by_id = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert by_id[id(named["stem.0.weight"])]["learning_rate"] == 0.0
    assert by_id[id(named["blocks.0.0.weight"])]["learning_rate"] == 0.5
    assert by_id[id(named["fc.weight"])]["learning_rate"] == 1.0
    assert by_id[id(named["blocks.0.1.weight"])].get("weight_decay") == 0.0   # BN scale
    assert by_id[id(named["fc.bias"])].get("weight_decay") == 0.0
    assert "weight_decay" not in by_id[id(named["fc.weight"])]

    # a real step: lr_mult 0 leaves the stem unchanged, frozen stage 1 too, the rest moves
    ds = blobs(32, 4, 16)
    cfg = _cfg(**{"Arch.lr_mult_list": "[0.0, 1.0, 1.0]", "Arch.freeze_stages": 2})
    paddle.seed(0)
    t = Trainer(cfg, model=tiny_net(4), train_loader=ArrayLoader(ds, 16), quiet=True)
    before = {k: v.numpy().copy() for k, v in t.model.state_dict().items()}
    t.setup_train()
    t.train_epoch(1)
    after = {k: v.numpy() for k, v in t.model.state_dict().items()}
    assert np.array_equal(before["stem.0.weight"], after["stem.0.weight"])
    assert np.array_equal(before["blocks.0.0.weight"], after["blocks.0.0.weight"])   # frozen (stage 1 < 2)
    assert not np.array_equal(before["blocks.1.0.weight"], after["blocks.1.0.weight"])
    assert not np.array_equal(before["fc.weight"], after["fc.weight"])


def test_gradient_accumulation_equals_big_batch():
    ds = blobs(64, 4, 16)

    def run(batch, accum):
        paddle.seed(5)
        model = tiny_net(4, bn=False)
        cfg = _cfg(**{"Global.accum_steps": accum, "Global.epochs": 2, "Optimizer.name": "Momentum"})
        t = Trainer(cfg, model=model, train_loader=ArrayLoader(ds, batch, seed=1), quiet=True)
        t.setup_train()
        for e in (1, 2):
            t.train_epoch(e)
        return {k: v.numpy() for k, v in model.state_dict().items()}, t.global_step

    big, steps_big = run(16, 1)
    acc, steps_acc = run(8, 2)
    assert steps_big == steps_acc == 8
    for k in big:
        np.testing.assert_allclose(big[k], acc[k], rtol=2e-5, atol=2e-6)


def test_ema_tracks_average_and_amp_is_cpu_noop():
    from hubcls.engine.ema import ModelEMA

    model = paddle.nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.5)
    w0 = model.weight.numpy().copy()
    model.weight.set_value(paddle.to_tensor(w0 + 1.0))
    ema.update(model)
    d = min(0.5, 2 / 11)
    np.testing.assert_allclose(ema.shadow["weight"].numpy(), w0 * d + (w0 + 1) * (1 - d), rtol=1e-6)

    ds = blobs(16, 4, 16)
    cfg = _cfg(**{"AMP.use_amp": True, "AMP.level": "O1"})
    import hubcls.engine.trainer as tr

    tr._AMP_WARNED = False
    t = Trainer(cfg, model=tiny_net(4), train_loader=ArrayLoader(ds, 8), quiet=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        t.setup_train()
        t.train_epoch(1)
    assert t.use_amp is False
    assert sum("AMP is configured" in str(x.message) for x in w) == 1


def test_preflight_checks():
    ds = blobs(16, 4, 16)
    t = Trainer(_cfg(**{"Arch.class_num": 3}), model=tiny_net(3), train_loader=ArrayLoader(ds, 8), quiet=True)
    with pytest.raises(ConfigError, match="Arch.class_num=3 but the Train labels have 4 classes"):
        t.setup_train()
    cfg = _cfg(**{"Metric.Eval[0].TopkAcc.topk": "[1, 5]"})
    t = Trainer(cfg, model=tiny_net(4), train_loader=ArrayLoader(ds, 8), quiet=True)
    with pytest.raises(ConfigError, match=r"Metric.Eval\[0\].TopkAcc.topk=\[1, 5\]: top-5 needs at least 5 classes"):
        t.setup_train()
    t = Trainer(_cfg(), model=tiny_net(6), train_loader=ArrayLoader(ds, 8), quiet=True)
    with pytest.raises(ConfigError, match="model has 6 outputs"):
        t.setup_train()


def test_multilabel_training_and_map_end_to_end():
    from sklearn.metrics import average_precision_score

    from hubcls.engine._synthetic import ArrayDataset

    ds = blobs(48, 4, 16)
    multi = np.eye(4, dtype="float32")[ds.labels]
    multi[::3, 0] = 1.0  # every third image also carries class 0
    data = ArrayDataset(ds.images, multi)
    cfg = _cfg(**{"Loss.Train": "[{MultiLabelLoss: {}}]", "Metric.Eval": "[{mAP: {}}]", "Global.epochs": 2})
    paddle.seed(0)
    t = Trainer(cfg, model=tiny_net(4), train_loader=ArrayLoader(data, 16),
                eval_loader=ArrayLoader(data, 16, shuffle=False), quiet=True)
    t.train()
    res, metrics = t.evaluate()
    t.model.eval()
    scores = t.model(paddle.to_tensor(ds.images)).numpy()
    ref = np.mean([average_precision_score(multi[:, c], scores[:, c]) for c in range(4)])
    assert metrics["mAP"] == pytest.approx(ref, rel=1e-5)
