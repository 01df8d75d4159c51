"""Checkpoints: exact resume (in-process and after SIGKILL mid-epoch), atomic writes, best/last."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = textwrap.dedent('''
    import os, sys, time, json
    import numpy as np
    from hubcls._paddle import import_paddle
    paddle = import_paddle()
    from hubcls.engine.config import load_config
    from hubcls.engine.trainer import Trainer
    from hubcls.engine._synthetic import ArrayLoader, blobs, tiny_net

    out, epochs, resume, hang_epoch = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
    cfg = load_config({
        "Global": {"epochs": epochs, "output_dir": out, "seed": 7, "print_batch_step": 1, "report": False, "device": "cpu"},
        "Arch": {"name": "TinyNet", "class_num": 4},
        "Loss": {"Train": [{"CELoss": {"epsilon": 0.1}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": 0.2, "warmup_epoch": 1},
                      "regularizer": {"name": "L2", "coeff": 0.0001}},
        "EMA": {"decay": 0.9},
        "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
    })
    state = {"epoch": 0}

    def augment(img, rng):
        # random noise from the per-(seed, epoch, index) generator; hang mid-epoch when asked
        n = state.setdefault(loader.epoch, 0)
        if hang_epoch and loader.epoch == hang_epoch and n == 2:
            open(os.path.join(out, "HANGING"), "w").close()
            time.sleep(600)
        state[loader.epoch] = n + 1
        return img + rng.normal(0, 0.1, img.shape).astype("float32")

    paddle.seed(0)
    loader = ArrayLoader(blobs(96, 4, 16), 16, seed=7, augment=augment)
    t = Trainer(cfg, model=tiny_net(4, dropout=0.2), train_loader=loader,
                eval_loader=ArrayLoader(blobs(32, 4, 16, seed=1), 16, shuffle=False), quiet=True)
    t.train(resume=resume)
    np.savez(os.path.join(t.output_dir, "final.npz"), **{k: v.numpy() for k, v in t.model.state_dict().items()})
''')


def _run(tmp_path, out, epochs, resume=False, hang_epoch=0, wait=True):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(script), str(out), str(epochs), "1" if resume else "0", str(hang_epoch)]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _weights(out):
    with np.load(Path(out) / "TinyNet" / "final.npz") as z:
        return {k: z[k] for k in z.files}


def test_in_process_resume_is_exact(tmp_path):
    from hubcls._paddle import import_paddle
    from hubcls.engine import checkpoint as ckpt
    from hubcls.engine._synthetic import ArrayLoader, blobs, tiny_net
    from hubcls.engine.config import load_config
    from hubcls.engine.trainer import Trainer

    paddle = import_paddle()

    def run(out, epochs, resume=False):
        cfg = load_config({
            "Global": {"epochs": epochs, "output_dir": str(out), "seed": 3, "report": False, "device": "cpu"},
            "Arch": {"name": "TinyNet", "class_num": 4},
            "Loss": {"Train": [{"CELoss": {"epsilon": 0.1}}]},
            "Optimizer": {"name": "AdamW", "lr": {"name": "Cosine", "learning_rate": 0.01, "warmup_epoch": 1}},
            "EMA": {"decay": 0.9},
            "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
        })
        paddle.seed(0)
        t = Trainer(cfg, model=tiny_net(4, dropout=0.3), train_loader=ArrayLoader(blobs(64, 4, 16), 16, seed=3),
                    eval_loader=ArrayLoader(blobs(32, 4, 16, seed=1), 16, shuffle=False), quiet=True)
        return t, t.train(resume=resume)

    a, ra = run(tmp_path / "a", 2)
    b1, _ = run(tmp_path / "b", 1)
    run_dir = tmp_path / "b" / "TinyNet"
    assert {p.name for p in run_dir.iterdir()} >= {ckpt.LAST, ckpt.BEST_DIR, ckpt.LAST_DIR,
                                                   "train_log.jsonl", "config.yaml", "eval_confusion_matrix.csv",
                                                   "eval_per_class.csv"}
    assert (run_dir / ckpt.BEST_WEIGHTS).is_file() and (run_dir / ckpt.LAST_WEIGHTS).is_file()
    assert not list(run_dir.glob(".*tmp*"))  # no temp files left behind
    b2, rb = run(tmp_path / "b", 2, resume=True)
    assert b2.start_epoch == 2
    sa, sb = a.model.state_dict(), b2.model.state_dict()
    for k in sa:
        np.testing.assert_array_equal(sa[k].numpy(), sb[k].numpy(), err_msg=k)
    for k in a.ema.shadow:
        np.testing.assert_array_equal(a.ema.shadow[k].numpy(), b2.ema.shadow[k].numpy(), err_msg=f"ema {k}")
    assert ra["history"][-1]["eval_top1"] == rb["history"][-1]["eval_top1"]
    assert [h["epoch"] for h in rb["history"]] == [1, 2]  # history restored from the checkpoint
    # a resumed run that is already complete does nothing
    b3, rb3 = run(tmp_path / "b", 2, resume=True)
    assert b3.start_epoch == 3 and b3.global_step == b2.global_step


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_straight_run(tmp_path):
    straight = tmp_path / "straight"
    _run(tmp_path, straight, 3)
    killed = tmp_path / "killed"
    proc = _run(tmp_path, killed, 3, hang_epoch=2, wait=False)
    marker = killed / "HANGING"
    deadline = time.time() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "training never reached epoch 2"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run_dir = killed / "TinyNet"
    log = [json.loads(l) for l in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert max(r["epoch"] for r in log if r["type"] == "epoch") == 1
    assert any(r["type"] == "step" and r["epoch"] == 2 for r in log)  # it really died inside epoch 2
    assert not (run_dir / "final.npz").exists()
    _run(tmp_path, killed, 3, resume=True)
    a, b = _weights(straight), _weights(killed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
