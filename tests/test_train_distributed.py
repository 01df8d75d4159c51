"""Multi-process training on CPU (paddle.distributed.launch + gloo): 2 processes with half the
per-process batch give the same weights and metrics as 1 process with the full batch."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent('''
    import os, sys, json
    import numpy as np
    from hubcls._paddle import import_paddle
    paddle = import_paddle()
    from hubcls.engine.config import load_config
    from hubcls.engine.trainer import Trainer, dist_info
    from hubcls.engine._synthetic import ArrayLoader, blobs, tiny_net

    out, per_proc_batch = sys.argv[1], int(sys.argv[2])
    rank, world = dist_info()
    cfg = load_config({
        "Global": {"epochs": 2, "output_dir": out, "seed": 11, "report": False, "device": "cpu"},
        "Arch": {"name": "TinyNet", "class_num": 4},
        "Loss": {"Train": [{"CELoss": {"epsilon": 0.1}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.2}},
        "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 2]}}, {"ClassReport": {}}]},
    })
    paddle.seed(0)  # same initial weights in every process
    model = tiny_net(4, bn=False)
    t = Trainer(cfg, model=model,
                train_loader=ArrayLoader(blobs(64, 4, 16), per_proc_batch, seed=11, rank=rank, world_size=world),
                eval_loader=ArrayLoader(blobs(30, 4, 16, seed=1), 8, shuffle=False, rank=rank, world_size=world),
                quiet=True)
    r = t.train()
    res, metrics = t.evaluate()
    np.savez(os.path.join(out, f"rank{rank}.npz"), **{k: v.numpy() for k, v in model.state_dict().items()})
    with open(os.path.join(out, f"metrics{rank}.json"), "w") as f:
        json.dump({"metrics": metrics, "n_eval": int(len(res.labels)), "world": world,
                   "steps": t.global_step, "history": r["history"]}, f)
''')


def _launch(tmp_path, out, nproc, batch):
    script = tmp_path / "dist_script.py"
    script.write_text(SCRIPT)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for k in list(env):
        if k.startswith("PADDLE_") or k.startswith("FLAGS_selected"):
            env.pop(k)
    if nproc == 1:
        cmd = [sys.executable, str(script), str(out), str(batch)]
    else:
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
               "--log_dir", str(out / "log"), str(script), str(out), str(batch)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    logs = "".join(p.read_text() for p in sorted((out / "log").glob("workerlog.*"))) if (out / "log").is_dir() else ""
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs[-3000:]


@pytest.mark.slow
def test_two_processes_match_one_process_at_same_global_batch(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _launch(tmp_path, one, 1, 16)
    _launch(tmp_path, two, 2, 8)
    ref = np.load(one / "rank0.npz")
    for rank in (0, 1):
        got = np.load(two / f"rank{rank}.npz")
        for k in ref.files:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-6, err_msg=f"rank{rank} {k}")
    m1 = json.loads((one / "metrics0.json").read_text())
    m2 = [json.loads((two / f"metrics{r}.json").read_text()) for r in (0, 1)]
    assert m2[0]["world"] == 2 and m1["world"] == 1
    assert m1["steps"] == m2[0]["steps"] == 8
    # predictions are gathered and de-duplicated: every rank scores all 30 eval samples, once
    assert m1["n_eval"] == m2[0]["n_eval"] == m2[1]["n_eval"] == 30
    for k in ("top1", "top2", "macro_f1"):
        assert m2[0]["metrics"][k] == pytest.approx(m1["metrics"][k]) == m2[1]["metrics"][k]
    # only rank 0 writes checkpoints and logs
    run = two / "TinyNet"
    assert (run / "last.pdckpt").is_file() and (run / "train_log.jsonl").is_file()
    epochs = [json.loads(l) for l in (run / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs if e["type"] == "epoch"] == [1, 2]
    assert not list(run.glob(".*tmp*"))


@pytest.mark.slow
def test_cli_nproc_per_node_2_on_cpu(tmp_path):
    """`hubcls train --nproc_per_node 2` end to end with real files (the demo set) and a zoo model."""
    small = ["Global.epochs=1", "Arch.class_num=5",
             "DataLoader.Train.dataset.num_classes=5", "DataLoader.Eval.dataset.num_classes=5",
             "DataLoader.Train.dataset.train_per_class=6", "DataLoader.Eval.dataset.train_per_class=6",
             "DataLoader.Train.dataset.val_per_class=3", "DataLoader.Eval.dataset.val_per_class=3",
             "DataLoader.Train.sampler.batch_size=8"]
    env = dict(os.environ, OMP_NUM_THREADS="1", HUBCLS_OFFLINE="1")
    for k in list(env):
        if k.startswith("PADDLE_"):
            env.pop(k)
    cmd = [sys.executable, "-m", "hubcls", "train", "--nproc_per_node", "2", "-c", "quickstart", "--quiet",
           "--launch_log_dir", "launch_log"] + [x for o in small for x in ("-o", o)]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    logs = "".join(p.read_text() for p in sorted((tmp_path / "launch_log").glob("workerlog.*")))
    assert r.returncode == 0, r.stderr[-3000:] + logs[-3000:]
    assert len(list((tmp_path / "launch_log").glob("workerlog.*"))) == 2
    run = tmp_path / "output" / "quickstart"
    rec = [json.loads(l) for l in (run / "train_log.jsonl").read_text().splitlines()]
    ep = [x for x in rec if x["type"] == "epoch"]
    assert len(ep) == 1 and "eval_top1" in ep[0]           # one writer (rank 0), one record
    assert (run / "best" / "model.safetensors").is_file()
    per_class = (run / "eval_per_class.csv").read_text().splitlines()
    assert sum(int(l.split(",")[-1]) for l in per_class[1:]) == 15  # all eval images counted once
