"""The loader: worker-count-independent batches, sharding, bad samples, dead workers, Ctrl-C."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from hubcls.data import build_dataloader, make_demo_dataset
from hubcls.data.loader import BadSampleWarning, BatchSampler
from hubcls.errors import ConfigError, ImageDecodeError

NORM = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                           "order": ""}}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return make_demo_dataset(root, num_classes=4, train_per_class=9, val_per_class=3, seed=1)


def config(demo, *, workers=0, batch=8, ops=None, batch_ops=None, list_key="train_list", **loader):
    ops = ops or [{"DecodeImage": {"to_rgb": True}}, {"RandCropImage": {"size": 48}},
                  {"RandFlipImage": {"flip_code": 1}}, NORM, {"ToCHWImage": None}]
    ds = {"name": "ImageNetDataset", "image_root": demo["root"], "cls_label_path": demo[list_key],
          "transform_ops": ops}
    if batch_ops:
        ds["batch_transform_ops"] = batch_ops
    return {"Global": {}, "Arch": {"class_num": 4},
            "DataLoader": {"Train": {"dataset": ds,
                                     "sampler": {"name": "DistributedBatchSampler", "batch_size": batch,
                                                 "drop_last": False, "shuffle": True},
                                     "loader": dict(num_workers=workers, use_shared_memory=True, **loader)}}}


def collect(loader, epochs=(0, 1)):
    out = []
    for e in epochs:
        loader.set_epoch(e)
        out.extend(loader)
    return out


def test_batches_identical_for_0_and_2_workers(demo):
    cfg0 = config(demo, workers=0, batch_ops=[{"MixupOperator": {"alpha": 0.4}}])
    cfg2 = config(demo, workers=2, batch_ops=[{"MixupOperator": {"alpha": 0.4}}])
    a = collect(build_dataloader(cfg0, "Train", seed=7))
    with build_dataloader(cfg2, "Train", seed=7) as dl2:
        assert len(dl2) == 5 and dl2.dataset.num_classes == 4
        assert dl2.dataset.class_names is None
        b = collect(dl2)
        # a second pass over an epoch reuses the running workers and gives the same batches again
        dl2.set_epoch(1)
        again = list(dl2)
    assert len(a) == len(b) == 10
    for x, y in zip(a, b):
        assert x["image"].shape == (x["index"].shape[0], 3, 48, 48) and x["image"].dtype == np.float32
        assert x["label"].dtype == np.float32 and x["label"].shape[1] == 4  # mixup -> soft targets
        np.testing.assert_array_equal(x["index"], y["index"])
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["label"], y["label"])
    for x, y in zip(b[5:], again):
        np.testing.assert_array_equal(x["image"], y["image"])
    # every sample once per epoch; different epochs shuffle and augment differently
    assert sorted(np.concatenate([x["index"] for x in a[:5]])) == list(range(36))
    assert not np.array_equal(a[0]["index"], a[5]["index"])
    c = collect(build_dataloader(cfg0, "Train", seed=8), epochs=(0,))
    assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_decode_threads_give_the_same_batches(demo):
    a = collect(build_dataloader(config(demo, workers=0), "Train", seed=2), epochs=(0,))
    b = collect(build_dataloader(config(demo, workers=0, decode_threads=3), "Train", seed=2), epochs=(0,))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["index"], y["index"])
    with pytest.raises(ConfigError, match="decode_threads"):
        build_dataloader(config(demo, decode_threads=0), "Train")


def test_in_process_batches_reuse_only_released_buffers(demo):
    """0 workers: a batch's memory is reused only once nothing holds the batch any more."""
    dl = build_dataloader(config(demo, workers=0, batch=4), "Train", seed=5)
    held = collect(dl, epochs=(0,))  # all held: every batch keeps its own memory and values
    ptrs = [b["image"].__array_interface__["data"][0] for b in held]
    assert len(set(ptrs)) == len(held) == 9
    again = []
    for b in dl:  # nothing kept but the loop variable: buffers come back
        again.append((b["image"].__array_interface__["data"][0], b["image"].copy()))
    assert len({p for p, _ in again}) < len(again)
    for b, (_, img) in zip(held, again):
        np.testing.assert_array_equal(b["image"], img)


def test_int_labels_and_auto_chw(demo):
    ops = [{"DecodeImage": {}}, {"ResizeImage": {"size": 40}}, NORM]  # no ToCHWImage (PaddleClas develop style)
    dl = build_dataloader(config(demo, ops=ops, batch=5), "Train")
    batch = next(iter(dl))
    assert batch["image"].shape == (5, 3, 40, 40)
    assert batch["label"].dtype == np.int64 and batch["label"].shape == (5,)
    labels = dict(l.split() for l in open(demo["train_list"]).read().split("\n") if l)
    paths = [os.path.relpath(dl.dataset.source(int(i)), demo["root"]) for i in batch["index"]]
    assert [int(labels[p]) for p in paths] == batch["label"].tolist()


@pytest.mark.parametrize("n, bs, ws, drop", [(10, 3, 3, False), (10, 3, 3, True), (9, 4, 3, False), (7, 2, 1, True)])
def test_sampler_shards_are_disjoint_and_cover(n, bs, ws, drop):
    shards = [BatchSampler(n, bs, shuffle=True, drop_last=drop, seed=3, rank=r, world_size=ws) for r in range(ws)]
    for s in shards:
        s.set_epoch(2)
    per = [np.concatenate(s.batches()) if s.batches() else np.array([], int) for s in shards]
    for s in shards:
        assert len(s) == len(s.batches())
        assert all(len(b) == bs for b in s.batches()) if drop else True
    if not drop:
        allidx = np.concatenate(per)
        assert set(allidx) == set(range(n))
        assert len(allidx) == -(-n // ws) * ws  # padded to a multiple of world_size
        assert len(allidx) - len(set(allidx)) == (-(-n // ws) * ws) - n
    # the same epoch -> the same order; another epoch -> another order
    again = BatchSampler(n, bs, shuffle=True, drop_last=drop, seed=3, rank=0, world_size=ws).batches(2)
    assert all(np.array_equal(x, y) for x, y in zip(again, shards[0].batches()))


def test_world_size_shards_through_build_dataloader(demo):
    cfg = config(demo, batch=4)
    seen = []
    for rank in range(3):
        dl = build_dataloader(cfg, "Train", seed=1, rank=rank, world_size=3)
        assert len(dl) == 3
        seen.append(np.concatenate([b["index"] for b in dl]))
    assert set(seen[0]).isdisjoint(seen[1]) and set(seen[1]).isdisjoint(seen[2])
    assert set(np.concatenate(seen)) == set(range(36))


@pytest.fixture
def bad_demo(demo, tmp_path):
    lines = open(demo["train_list"]).read().split("\n")[:10]
    (tmp_path / "trunc.jpg").write_bytes(open(os.path.join(demo["root"], lines[0].split()[0]), "rb").read()[:300])
    (tmp_path / "junk.jpg").write_bytes(b"definitely not a jpeg")
    rel = lambda p: os.path.relpath(p, demo["root"])  # noqa: E731
    lines[3] = f"{rel(tmp_path / 'trunc.jpg')} 1"
    lines[6] = f"{rel(tmp_path / 'junk.jpg')} 2"
    lines.append("does/not/exist.jpg 0")
    (tmp_path / "bad_list.txt").write_text("\n".join(lines) + "\n")
    return dict(demo, bad_list=str(tmp_path / "bad_list.txt"))


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_samples_skip_and_error(bad_demo, workers):
    cfg = config(bad_demo, workers=workers, batch=4, list_key="bad_list")
    with build_dataloader(cfg, "Train") as dl:
        with pytest.warns(BadSampleWarning, match="skipped 3 bad sample"):
            batches = list(dl)
        assert dl.bad_samples == 3
        assert sum(len(b["index"]) for b in batches) == 8
        assert {3, 6, 10}.isdisjoint(set(np.concatenate([b["index"] for b in batches])))
        reasons = " ".join(r for _, _, r in dl.bad_sample_log)
        assert "truncated" in reasons and "no such file" in reasons and "not an image" in reasons
    cfg["DataLoader"]["Train"]["on_bad_sample"] = "error"
    with build_dataloader(cfg, "Train") as dl:
        with pytest.raises(ImageDecodeError) as e:
            list(dl)
        assert e.value.source.endswith((".jpg",))


def test_dead_worker_is_detected(demo):
    cfg = config(demo, workers=2, batch=2, timeout=60)
    dl = build_dataloader(cfg, "Train")
    it = iter(dl)
    next(it)
    os.kill(dl._pool.procs[0].pid, signal.SIGKILL)
    t = time.monotonic()
    with pytest.raises(RuntimeError, match="died unexpectedly .*signal 9"):
        for _ in it:
            pass
    assert time.monotonic() - t < 30
    assert dl._pool is None  # shut down and shared memory released


def test_config_errors(demo):
    with pytest.raises(ConfigError, match="DataLoader.Eval is missing"):
        build_dataloader(config(demo), "Eval")
    cfg = config(demo)
    cfg["DataLoader"]["Train"]["on_bad_sample"] = "ignore"
    with pytest.raises(ConfigError, match="on_bad_sample"):
        build_dataloader(cfg, "Train")
    cfg = config(demo)
    del cfg["DataLoader"]["Train"]["sampler"]["batch_size"]
    with pytest.raises(ConfigError, match="batch_size"):
        build_dataloader(cfg, "Train")
    cfg = config(demo, ops=[{"DecodeImage": {}}, {"Nope": {}}])
    with pytest.raises(ConfigError, match=r"DataLoader\.Train\.dataset\.transform_ops\[1\]"):
        build_dataloader(cfg, "Train")


_SIGINT_SCRIPT = textwrap.dedent("""
    import faulthandler, signal, sys, time
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for stacks if it hangs
    # Ctrl-C as a program in a terminal gets it: a test run started as a background job of a
    # non-interactive shell (`pytest &`, nohup) passes SIGINT down *ignored* and Python then never
    # raises KeyboardInterrupt (this test hung exactly so)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from hubcls.data import build_dataloader
    from hubcls.data.transforms import AUGMENTERS, TransformOp

    if __name__ == "__main__":
        root, lst = sys.argv[1], sys.argv[2]
        ops = [{"DecodeImage": {}}, {"RandCropImage": {"size": 32}}, {"NormalizeImage": {}}, {"ToCHWImage": None}]
        cfg = {"DataLoader": {"Train": {
            "dataset": {"name": "ImageNetDataset", "image_root": root, "cls_label_path": lst, "transform_ops": ops},
            "sampler": {"batch_size": 2, "shuffle": True}, "loader": {"num_workers": 2}}}}
        dl = build_dataloader(cfg, "Train")
        try:
            for epoch in range(10**6):
                dl.set_epoch(epoch)
                for i, b in enumerate(dl):
                    if epoch == 0 and i == 0:
                        print("WORKERS", *[p.pid for p in dl._pool.procs], "SHM", dl._pool.shm.name, flush=True)
                    time.sleep(0.01)
        except KeyboardInterrupt:
            print("INTERRUPTED", flush=True)
            sys.exit(130)
""")


def test_ctrl_c_shuts_down_cleanly(demo, tmp_path):
    script = tmp_path / "run_loader.py"
    script.write_text(_SIGINT_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(script), demo["root"], demo["train_list"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("WORKERS"), line + proc.stderr.read()
        parts = line.split()
        pids = [int(p) for p in parts[1:parts.index("SHM")]]
        shm = parts[-1]
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)  # 0.1-0.5 s here
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # every thread's stack, to see where it hangs
            time.sleep(2)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"no exit within 60 s of SIGINT; its threads:\n{err[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in out
    assert "Traceback" not in err  # workers ignore SIGINT: no stack traces from them
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)
    assert not os.path.exists(f"/dev/shm/{shm.lstrip('/')}")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


class _Stall:
    """An augmenter that hangs (stuck storage, deadlocked library): the loader must not."""

    def __init__(self, seconds=60):
        self.seconds = seconds

    def __call__(self, img):
        time.sleep(self.seconds)
        return img


def test_stuck_worker_times_out(demo):
    from hubcls.data import AUGMENTERS

    AUGMENTERS.register(_Stall, name="TestStall", force=True)
    ops = [{"DecodeImage": {}}, {"TestStall": {"seconds": 60}}, {"ResizeImage": {"size": 32}}, NORM,
           {"ToCHWImage": None}]
    dl = build_dataloader(config(demo, workers=1, batch=2, ops=ops, timeout=3), "Train")
    t = time.monotonic()
    with pytest.raises(TimeoutError, match="no batch .* in 3 s"):
        next(iter(dl))
    assert time.monotonic() - t < 40  # worker start (spawn) + 3 s
    assert dl._pool is None
