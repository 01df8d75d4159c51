"""Durable training (issue 14.4): the run directory is a pair of model packages (best/, last/) plus
last.pdckpt; kills during any save resume to consistent files; disk errors are one clear line with
the previous checkpoint intact; an existing run is never overwritten silently; --resume on the
wrong file says what the file is; the JSONL log has each epoch once after a resume."""
import errno
import json
import os
import random
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hubcls._paddle import import_paddle
from hubcls.engine import checkpoint as ckpt
from hubcls.engine._synthetic import ArrayLoader, blobs, tiny_net
from hubcls.engine.config import load_config
from hubcls.engine.trainer import Trainer
from hubcls.errors import CheckpointError, ConfigError

paddle = import_paddle()


def _cfg(out, epochs=2, **glob):
    return load_config({
        "Global": {"epochs": epochs, "output_dir": str(out), "seed": 5, "report": False, "device": "cpu",
                   "print_batch_step": 100, **glob},
        "Arch": {"name": "TinyNet", "class_num": 4},
        "Loss": {"Train": [{"CELoss": {}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.2}},
        "EMA": {"decay": 0.9},
        "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
    })


def _trainer(out, epochs=2, **glob):
    paddle.seed(0)
    return Trainer(_cfg(out, epochs, **glob), model=tiny_net(4), train_loader=ArrayLoader(blobs(64, 4, 16), 16, seed=5),
                   eval_loader=ArrayLoader(blobs(32, 4, 16, seed=1), 16, shuffle=False), quiet=True)


def _temp_files(run):
    return [p for p in Path(run).rglob("*") if ".tmp" in p.name]


def test_run_directory_is_best_and_last_packages(tmp_path):
    from hubcls.models import read_package

    t = _trainer(tmp_path, epochs=2)
    res = t.train()
    run = t.output_dir
    best, last = read_package(run / ckpt.BEST_DIR), read_package(run / ckpt.LAST_DIR)
    assert best.num_classes == last.num_classes == 4 and best.labels == [f"class_{i}" for i in range(4)]
    assert ckpt.package_epoch(run / ckpt.LAST_DIR) == 2
    assert ckpt.package_epoch(run / ckpt.BEST_DIR) == res["best"]["epoch"]
    st = ckpt.load_checkpoint(run / ckpt.LAST)
    # the packages hold the EMA weights (what evaluation used), the checkpoint both
    from safetensors.numpy import load_file

    last_w = load_file(str(run / ckpt.LAST_WEIGHTS))
    for k, v in st["ema"]["shadow"].items():
        np.testing.assert_array_equal(last_w[k], v.numpy(), err_msg=k)
    assert not (run / "best_model.pdparams").exists() and not _temp_files(run)  # safetensors by default
    t2 = _trainer(tmp_path / "pd", epochs=1, save_pdparams=True)
    t2.train()
    assert (t2.output_dir / ckpt.BEST_DIR / "model.pdparams").is_file()  # PaddleClas tools' copy, on request


def test_existing_run_is_refused_unless_resume_or_overwrite(tmp_path):
    t = _trainer(tmp_path, epochs=1)
    t.train()
    run = t.output_dir
    (run / "my_notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"already holds a run .*last.pdckpt exists.*--resume.*--overwrite"):
        _trainer(tmp_path, epochs=1).train()
    assert ckpt.load_checkpoint(run / ckpt.LAST)["epoch"] == 1  # untouched
    t3 = _trainer(tmp_path, epochs=1)
    t3.train(overwrite=True)
    assert (run / "my_notes.txt").read_text() == "keep me"  # --overwrite removes only what runs write
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if r["type"] == "epoch"] == [1]  # the old log went with the old run


def test_resume_on_a_wrong_file_says_what_it_is(tmp_path):
    t = _trainer(tmp_path, epochs=1)
    t.train()
    run = t.output_dir
    pdparams = tmp_path / "weights.pdparams"
    paddle.save(t.model.state_dict(), str(pdparams))
    junk = tmp_path / "junk.pdckpt"
    junk.write_bytes(os.urandom(256))
    cases = [
        (pdparams, r"not a hubcls training checkpoint .*holds model weights only; to start from them use "
                   r"-o Global.pretrained_model="),
        (run / ckpt.BEST_WEIGHTS, r"a .safetensors file is not a training checkpoint"),
        (junk, r"--resume .*junk.pdckpt: not a training checkpoint"),
        (tmp_path / "missing.pdckpt", r"--resume .*missing.pdckpt: not found"),
    ]
    for path, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            _trainer(tmp_path / "other", epochs=2).train(resume_from=str(path))
    other = _cfg(tmp_path / "x", 2)
    other["Arch"]["name"] = "OtherNet"
    paddle.seed(0)
    with pytest.raises(ConfigError, match=r"the checkpoint is of TinyNet, the config trains OtherNet"):
        Trainer(other, model=tiny_net(4), train_loader=ArrayLoader(blobs(64, 4, 16), 16),
                quiet=True).train(resume_from=str(run / ckpt.LAST))


def test_disk_full_is_one_clear_line_and_the_previous_checkpoint_stays(tmp_path, monkeypatch):
    t = _trainer(tmp_path, epochs=1)
    t.train()
    run = t.output_dir
    before = (run / ckpt.LAST).read_bytes()
    real_save = paddle.save

    def full_disk(obj, path, *a, **kw):
        with open(path, "wb") as f:  # half a file, then the device is full
            f.write(b"\x80\x04" + b"x" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(paddle, "save", full_disk)
    t2 = _trainer(tmp_path, epochs=2)
    with pytest.raises(CheckpointError) as info:
        t2.train(resume=True)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"could not write {run / ckpt.LAST}: No space left on device (ENOSPC); "
                          f"last.pdckpt of epoch 1 is intact")
    monkeypatch.setattr(paddle, "save", real_save)
    assert (run / ckpt.LAST).read_bytes() == before and not _temp_files(run)
    # the CLI prints it as one line, exit status 2
    from hubcls.cli import main

    err = CheckpointError(msg)
    monkeypatch.setattr("hubcls.cli.train._run", lambda args: (_ for _ in ()).throw(err))
    assert main(["train", "-c", "quickstart"]) == 2


SCRIPT = textwrap.dedent('''
    import json, os, signal, sys
    # kill points: every os.replace / os.fsync of the process, before and after it
    KILL_AT = int(os.environ.get("KILL_AT", "0"))
    points, real_replace, real_fsync = [], os.replace, os.fsync

    def point(label):
        points.append(label)
        if len(points) == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)

    def replace(a, b, **kw):
        point("replace-before " + str(b))
        real_replace(a, b, **kw)
        point("replace-after " + str(b))

    def fsync(fd):
        point("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    os.replace, os.fsync = replace, fsync
    from hubcls._paddle import import_paddle
    paddle = import_paddle()
    from hubcls.engine.config import load_config
    from hubcls.engine.trainer import Trainer
    from hubcls.engine._synthetic import ArrayLoader, blobs, tiny_net

    out, resume = sys.argv[1], sys.argv[2] == "1"
    cfg = load_config({
        "Global": {"epochs": 3, "output_dir": out, "seed": 11, "report": False, "device": "cpu", "print_batch_step": 100},
        "Arch": {"name": "TinyNet", "class_num": 4},
        "Loss": {"Train": [{"CELoss": {}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.3}},
        "EMA": {"decay": 0.8},
        "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
    })
    paddle.seed(0)
    t = Trainer(cfg, model=tiny_net(4, width=4), train_loader=ArrayLoader(blobs(48, 4, 8), 16, seed=11),
                eval_loader=ArrayLoader(blobs(24, 4, 8, seed=3), 12, shuffle=False), quiet=True)
    t.train(resume=resume)
    with open(os.path.join(out, "points.json"), "w") as f:
        json.dump(points, f)
''')


def _child(tmp_path, out, resume=False, kill_at=0):
    script = tmp_path / "durable_child.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", KILL_AT=str(kill_at))
    return subprocess.run([sys.executable, str(script), str(out), "1" if resume else "0"], env=env,
                          capture_output=True, text=True, timeout=300)


def _state(run):
    from safetensors.numpy import load_file

    st = ckpt.load_checkpoint(run / ckpt.LAST)
    log = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    return {
        "epoch": st["epoch"], "best": st["best"],
        "best_pkg": ckpt.package_epoch(run / ckpt.BEST_DIR), "last_pkg": ckpt.package_epoch(run / ckpt.LAST_DIR),
        "best_w": load_file(str(run / ckpt.BEST_WEIGHTS)), "last_w": load_file(str(run / ckpt.LAST_WEIGHTS)),
        "epochs_logged": [(r["epoch"], round(r["train_loss"], 9)) for r in log if r["type"] == "epoch"],
        "steps_logged": [(r["epoch"], r["step"]) for r in log if r["type"] == "step"],
    }


@pytest.mark.slow
def test_kills_during_saves_always_resume_to_consistent_best_and_last(tmp_path):
    ref_out = tmp_path / "ref"
    r = _child(tmp_path, ref_out)
    assert r.returncode == 0, r.stderr[-2000:]
    run_ref = ref_out / "TinyNet"
    points = json.loads((ref_out / "points.json").read_text())
    ref = _state(run_ref)
    assert ref["epoch"] == 3 and ref["last_pkg"] == 3 and ref["best_pkg"] == ref["best"]["epoch"]
    # the kill points inside saves: around every write of last.pdckpt and of the packages' files
    in_saves = [i + 1 for i, p in enumerate(points)
                if any(s in p for s in ("last.pdckpt", "/best/", "/last/"))]
    assert len(in_saves) >= 30
    rng = random.Random(20)
    trials = sorted(rng.sample(in_saves, 20))
    seen = {"package behind": 0, "log ahead": 0, "temp file": 0}
    for k in trials:
        out = tmp_path / f"kill{k}"
        r = _child(tmp_path, out, kill_at=k)
        assert r.returncode == -signal.SIGKILL, (k, points[k - 1], r.returncode, r.stderr[-1500:])
        run = out / "TinyNet"
        # what the kill left (so the test shows it covers the cases the resume must repair)
        if (run / ckpt.LAST).is_file():
            st = ckpt.load_checkpoint(run / ckpt.LAST)
            seen["package behind"] += ckpt.package_epoch(run / ckpt.LAST_DIR) != st["epoch"] or \
                ckpt.package_epoch(run / ckpt.BEST_DIR) != st["best"]["epoch"]
            logged = [json.loads(x)["epoch"] for x in (run / "train_log.jsonl").read_text().splitlines()]
            seen["log ahead"] += max(logged) > st["epoch"]
        seen["temp file"] += bool(_temp_files(run))
        r = _child(tmp_path, out, resume=True)
        assert r.returncode == 0, (k, points[k - 1], r.stderr[-2000:])
        got = _state(run)
        where = f"killed at point {k}: {points[k - 1]}"
        assert (got["epoch"], got["best"], got["best_pkg"], got["last_pkg"]) == \
            (ref["epoch"], ref["best"], ref["best_pkg"], ref["last_pkg"]), where
        for part in ("best_w", "last_w"):
            assert got[part].keys() == ref[part].keys(), where
            for key in ref[part]:
                np.testing.assert_array_equal(got[part][key], ref[part][key], err_msg=f"{where} {part} {key}")
        assert got["epochs_logged"] == ref["epochs_logged"], where  # each epoch once, same numbers
        assert got["steps_logged"] == ref["steps_logged"], where
        assert _temp_files(run) == [], where
    assert all(seen.values()), seen


def test_a_real_write_error_from_the_kernel(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse the next checkpoint (EFBIG): one line naming the file,
    the previous checkpoint loads, no temp file is left."""
    out = tmp_path / "run"
    r = _child(tmp_path, out)
    assert r.returncode == 0, r.stderr[-2000:]
    run = out / "TinyNet"
    size = (run / ckpt.LAST).stat().st_size
    before = (run / ckpt.LAST).read_bytes()
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    # the run's own config; TinyNet is registered for the child so that the Trainer builds it by name
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(f'''
        import sys, os
        from hubcls.models import register_model
        from hubcls.engine._synthetic import tiny_net
        register_model(lambda num_classes=4, **kw: tiny_net(num_classes, width=4), name="TinyNet")
        from hubcls.engine.trainer import Trainer
        from hubcls.engine.config import load_config
        from hubcls.engine._synthetic import ArrayLoader, blobs
        from hubcls.errors import HubclsError
        cfg = load_config({str(run / "config.yaml")!r}, ["Global.epochs=4"])
        t = Trainer(cfg, train_loader=ArrayLoader(blobs(48, 4, 8), 16, seed=11),
                    eval_loader=ArrayLoader(blobs(24, 4, 8, seed=3), 12, shuffle=False), quiet=True)
        try:
            t.train(resume=True)
        except HubclsError as exc:
            print("ERROR " + type(exc).__name__ + ": " + str(exc))
            sys.exit(2)
    ''')], env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300,
        preexec_fn=limit)
    assert r.returncode == 2, r.stdout[-1500:] + r.stderr[-1500:]
    line = [x for x in r.stdout.splitlines() if x.startswith("ERROR ")]
    assert len(line) == 1
    assert line[0].startswith(f"ERROR CheckpointError: could not write {run / ckpt.LAST}: File too large (EFBIG); "
                              f"last.pdckpt of epoch 3 is intact")
    assert (run / ckpt.LAST).read_bytes() == before and ckpt.load_checkpoint(run / ckpt.LAST)["epoch"] == 3
    assert _temp_files(run) == []
