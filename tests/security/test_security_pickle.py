"""Weights are data: crafted pickles through every loading route run no code, and real paddle.save
files (state dicts in both PaddleClas key schemes, optimizer states, checkpoints, fp16/bf16,
protocol 2, Python 2 pickles, DenseTensors, split big arrays) load exactly as paddle.load loads them."""
from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _crafted  # noqa: E402

from hubcls.errors import HubclsError, UnsafeFileError, WeightsError  # noqa: E402

paddle = pytest.importorskip("paddle")

PAYLOADS = sorted(_crafted.payloads("/nonexistent/marker"))


def _evil_file(tmp_path, kind="state_dict_with_poisoned_value", name="evil.pdparams"):
    marker = tmp_path / f"MARKER-{kind}"
    path = tmp_path / name
    path.write_bytes(_crafted.payloads(marker)[kind])
    return path, marker


def _tree_equal(a, b, where="root"):
    if isinstance(a, paddle.Tensor) or isinstance(b, paddle.Tensor):
        assert isinstance(a, paddle.Tensor) and isinstance(b, paddle.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=where)
        return
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _tree_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _tree_equal(x, y, f"{where}[{i}]")
    elif type(a).__name__ == "GeneratorState":
        assert a.__getstate__() == b.__getstate__(), where
    else:
        assert a == b, where


# ---------------------------------------------------------------------------------------------
# the payloads are real: plain pickle runs them (so the tests below could fail)
def test_payloads_run_code_under_plain_pickle(tmp_path):
    for kind in PAYLOADS:
        if kind in _crafted.NOT_RUN_BY_PICKLE:
            continue
        path, marker = _evil_file(tmp_path, kind)
        code = "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())"
        subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=60)
        assert marker.exists(), f"{kind}: the payload does not run under plain pickle; the test proves nothing"


@pytest.mark.parametrize("kind", PAYLOADS)
def test_restricted_unpickler_refuses_every_payload(tmp_path, kind):
    from hubcls.models import safe_load

    path, marker = _evil_file(tmp_path, kind)
    with pytest.raises(UnsafeFileError) as ei:
        safe_load(path)
    assert str(path) in str(ei.value) and "refused" in str(ei.value)
    assert ei.value.source == str(path)
    assert not marker.exists()


def test_refusal_names_the_global(tmp_path):
    from hubcls.models import safe_load

    path, marker = _evil_file(tmp_path, "os_system")
    with pytest.raises(UnsafeFileError, match=r"posix\.system") as ei:
        safe_load(path)
    assert ei.value.refused == "posix.system"


@pytest.mark.parametrize("kind", PAYLOADS)
def test_create_model_pretrained_file(tmp_path, kind):
    import hubcls

    path, marker = _evil_file(tmp_path, kind)
    with pytest.raises(WeightsError, match="refused"):
        hubcls.create_model("ResNet18", pretrained=str(path))
    assert not marker.exists()


def test_save_pretrained_directory(tmp_path):
    """A model package whose manifest names a pickle, and an older save_pretrained directory
    (config.json + model.pdparams): both load through the restricted unpickler."""
    import hubcls
    from hubcls import hub

    evil, marker = _evil_file(tmp_path, "exec_top_level")
    good = hubcls.create_model("ResNet18", num_classes=3)
    pkg = good.save_pretrained(tmp_path / "pkg")
    manifest = json.loads((pkg / "model.json").read_text())
    manifest["weights"] = {"file": "model.pdparams", "format": "pdparams"}
    (pkg / "model.json").write_text(json.dumps(manifest))
    (pkg / "model.pdparams").write_bytes(evil.read_bytes())
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    cfg = good.pretrained_cfg.to_dict()
    (legacy / "config.json").write_text(json.dumps({"format": "hubcls", "version": 1, "architecture": "ResNet18",
                                                    "pretrained_cfg": cfg}, default=str))
    (legacy / "model.pdparams").write_bytes(evil.read_bytes())
    for d in (pkg, legacy):
        with pytest.raises(UnsafeFileError, match="model.pdparams"):
            hubcls.create_model(str(d), pretrained=str(d))
        with pytest.raises(UnsafeFileError):
            hub.Module(directory=str(d))
    assert not marker.exists()


def test_hub_module_weights(tmp_path):
    from hubcls import hub

    path, marker = _evil_file(tmp_path, "state_dict_with_poisoned_value")
    with pytest.raises(UnsafeFileError, match="evil.pdparams"):
        hub.Module(name="resnet18_imagenet", weights=str(path))
    assert not marker.exists()


def test_engine_checkpoint_and_pretrained_model_routes(tmp_path):
    from hubcls.engine import checkpoint as ckpt

    path, marker = _evil_file(tmp_path, "checkpoint_poisoned_optimizer", name="evil.pdckpt")
    refused = r"evil\.pdckpt.*refused to load.*builtins\.exec"
    with pytest.raises(HubclsError, match=refused):  # --resume wraps it in a ConfigError
        ckpt.load_checkpoint(path)
    with pytest.raises(UnsafeFileError, match=refused):
        ckpt.load_weights(path)  # Global.pretrained_model / distillation teacher checkpoints
    run = tmp_path / "run"
    run.mkdir()
    (run / ckpt.LAST).write_bytes(path.read_bytes())
    with pytest.raises(HubclsError, match="refused to load"):
        ckpt.load_checkpoint(run)
    assert not marker.exists()


def test_detection_backbone_weights(tmp_path):
    pytest.importorskip("hubcls.det.backbone")
    from hubcls.det.backbone import HubclsBackbone

    path, marker = _evil_file(tmp_path, "exec_top_level")
    with pytest.raises(UnsafeFileError):
        HubclsBackbone(name="ResNet18", pretrained=str(path))
    assert not marker.exists()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hubcls(args, tmp_path, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "hubcls", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_serve_weights(tmp_path):
    path, marker = _evil_file(tmp_path, "os_system")
    r = _hubcls(["serve", "-m", "ResNet18", "--weights", str(path), "--port", str(_free_port())], tmp_path)
    assert r.returncode != 0
    assert "refused" in r.stderr and str(path) in r.stderr and "posix.system" in r.stderr, r.stderr[-2000:]
    assert not marker.exists()


def test_cli_train_resume(tmp_path):
    path, marker = _evil_file(tmp_path, "checkpoint_poisoned_optimizer", name="evil.pdckpt")
    r = _hubcls(["train", "-c", "quickstart", "--quiet", "-o", f"Global.output_dir={tmp_path / 'out'}",
                 "-o", "Global.epochs=1", "-o", "Global.device=cpu", "--resume", str(path)], tmp_path)
    assert r.returncode != 0
    assert "refused" in r.stderr and "evil.pdckpt" in r.stderr, (r.stdout + r.stderr)[-2000:]
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# what paddle.save writes still loads, identical to paddle.load
def _paddle_files(tmp_path):
    m = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.Flatten(),
                             paddle.nn.Linear(4 * 6 * 6, 2))
    sched = paddle.optimizer.lr.CosineAnnealingDecay(0.1, 10)
    opt = paddle.optimizer.AdamW(learning_rate=sched, parameters=m.parameters())
    loss = m(paddle.randn([2, 3, 8, 8])).mean()
    loss.backward()
    opt.step()
    files = {}

    def save(name, obj, **kw):
        files[name] = tmp_path / name
        paddle.save(obj, str(files[name]), **kw)

    save("state.pdparams", m.state_dict())
    save("state_p2.pdparams", m.state_dict(), protocol=2)
    save("opt.pdopt", opt.state_dict())
    save("ckpt.pdckpt", {"model": m.state_dict(), "optimizer": opt.state_dict(), "lr": sched.state_dict(),
                         "epoch": 3, "global_step": 30, "best": {"top1": 0.5}, "history": [{"epoch": 1, "loss": 1.5}],
                         "rng": {"paddle": paddle.get_rng_state(), "numpy": np.random.get_state()},
                         "class_names": ["a", "b"]})
    save("halfs.pdparams", {"bf16": paddle.to_tensor(np.linspace(-2, 2, 7, dtype="float32")).astype("bfloat16"),
                            "fp16": paddle.to_tensor(np.linspace(-2, 2, 7, dtype="float16")),
                            "i64": paddle.to_tensor([1, 2], dtype="int64"), "b": paddle.to_tensor([True, False])})
    save("nested.pd", {"t": [m.state_dict()["0.weight"], (1, 2.5, "s", None)], "od": OrderedDict(a=np.arange(3)),
                       "dense": m.state_dict()["0.bias"].value().get_tensor(), "scalar": np.float32(1.5)})
    return files


def test_paddle_files_load_identically(tmp_path):
    from hubcls.models import safe_load

    for name, path in _paddle_files(tmp_path).items():
        for return_numpy in (True, False):
            _tree_equal(paddle.load(str(path), return_numpy=return_numpy), safe_load(path, return_numpy=return_numpy),
                        f"{name} return_numpy={return_numpy}")


def test_bf16_fp16_values(tmp_path):
    from hubcls.models import safe_load

    files = _paddle_files(tmp_path)
    st = safe_load(files["halfs.pdparams"])
    ref = paddle.to_tensor(np.linspace(-2, 2, 7, dtype="float32")).astype("bfloat16")
    assert st["bf16"].dtype == np.uint16  # how paddle.save stores bf16
    np.testing.assert_array_equal(st["bf16"], ref.numpy())
    np.testing.assert_array_equal(st["fp16"], np.linspace(-2, 2, 7, dtype="float16"))


def test_checkpoint_resume_state_roundtrip(tmp_path):
    """load_checkpoint gives tensors + a working RNG state, as paddle.load did."""
    from hubcls.engine import checkpoint as ckpt

    files = _paddle_files(tmp_path)
    st = ckpt.load_checkpoint(files["ckpt.pdckpt"])
    assert isinstance(st["model"]["0.weight"], paddle.Tensor)
    paddle.set_rng_state(st["rng"]["paddle"])
    a = paddle.rand([4]).numpy()
    paddle.set_rng_state(st["rng"]["paddle"])
    np.testing.assert_array_equal(a, paddle.rand([4]).numpy())
    np.random.set_state(st["rng"]["numpy"])


def test_python2_protocol2_pickle():
    from hubcls.models import safe_loads

    for arr in (np.random.RandomState(0).rand(3, 4).astype("float32"), np.arange(300, dtype=">i8"),
                np.ones((2, 0), np.float32)):
        data = _crafted.py2_pickle_of_array(arr)
        ref = pickle.loads(data, encoding="latin1")["w"]
        got = safe_loads(data)["w"]
        assert got.dtype == ref.dtype and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
        assert got.flags.writeable


def test_split_big_params_reassembled(tmp_path):
    """paddle.save(protocol=2/3) splits >1 GiB arrays into UnpackBigParamInfor@@ slices."""
    from hubcls.models import safe_load

    full = np.arange(20, dtype=np.float32).reshape(4, 5)
    obj = {"w@@.0": full.ravel()[:12], "w@@.1": full.ravel()[12:], "b": np.ones(2, np.float32),
           "UnpackBigParamInfor@@": {"w": {"OriginShape": (4, 5), "slices": ["w@@.0", "w@@.1"]}},
           "StructuredToParameterName@@": {"w": "fc.w_0", "b": "fc.b_0"}}
    p = tmp_path / "big.pdparams"
    p.write_bytes(pickle.dumps(obj, protocol=2))
    _tree_equal(paddle.load(str(p), return_numpy=True), safe_load(p))
    np.testing.assert_array_equal(safe_load(p)["w"], full)


def test_reused_buffer_cannot_amplify_memory():
    """A pickle whose 1000 arrays all point at one memoised 1 MB buffer would materialise 1 GB."""
    from hubcls.models import safe_loads

    raw = np.zeros(1 << 20, np.uint8).tobytes()
    # memoise _reconstruct (1), ndarray (2), dtype('u1') (4) and pop them off the stack ('0')
    head = b"\x80\x02]q\x00(" + b"cnumpy.core.multiarray\n_reconstruct\nq\x010cnumpy\nndarray\nq\x020"
    head += b"cnumpy\ndtype\nq\x03U\x02u1K\x00K\x01\x87Rq\x04(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb0"
    first = b"h\x01h\x02K\x00\x85U\x01b\x87R(K\x01J" + (1 << 20).to_bytes(4, "little") + b"\x85h\x04\x89"
    first += b"B" + len(raw).to_bytes(4, "little") + raw + b"q\x05tb"
    again = b"h\x01h\x02K\x00\x85U\x01b\x87R(K\x01J" + (1 << 20).to_bytes(4, "little") + b"\x85h\x04\x89h\x05tb"
    data = head + first + again * 1000 + b"e."
    assert len(pickle.loads(data)) == 1001  # plain pickle would build 1 GB from this 1 MB file
    with pytest.raises(UnsafeFileError, match="more array data than it contains"):
        safe_loads(data)


def test_truncated_and_garbage_files_are_clear_errors(tmp_path):
    import hubcls
    from hubcls.models import safe_load

    files = _paddle_files(tmp_path)
    data = files["state.pdparams"].read_bytes()
    cut = tmp_path / "cut.pdparams"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cut.pdparams"):
        safe_load(cut)
    junk = tmp_path / "junk.pdparams"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(WeightsError, match="junk.pdparams"):
        hubcls.create_model("ResNet18", pretrained=str(junk))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_non_regular_weight_paths_do_not_hang(tmp_path):
    import hubcls

    fifo = tmp_path / "fifo.pdparams"
    os.mkfifo(fifo)
    with pytest.raises(WeightsError, match="not a regular file"):
        hubcls.create_model("ResNet18", pretrained=str(fifo))
    if Path("/dev/zero").exists():
        link = tmp_path / "zero.pdparams"
        link.symlink_to("/dev/zero")
        with pytest.raises(WeightsError, match="not a regular file"):
            hubcls.create_model("ResNet18", pretrained=str(link))


@pytest.mark.parametrize("scheme", ["native", "2.0"])
def test_paddleclas_pdparams_both_key_schemes_load_identically(tmp_path, scheme):
    """Real PaddleClas-style .pdparams (paddle.save of a state dict under either key scheme) load
    into the model with the exact tensors."""
    import hubcls
    from hubcls.models._weights import candidate_schemes

    src = hubcls.create_model("ResNet18_vd")
    mapping = candidate_schemes(src)[scheme]
    sd = src.state_dict()
    path = tmp_path / f"ResNet18_vd_{scheme}.pdparams"
    paddle.save({mapping[k]: v for k, v in sd.items()}, str(path))
    m = hubcls.create_model("ResNet18_vd", pretrained=str(path))
    got = m.state_dict()
    for k, v in sd.items():
        np.testing.assert_array_equal(got[k].numpy(), v.numpy(), err_msg=k)
    assert json.dumps(sorted(got)) == json.dumps(sorted(sd))
