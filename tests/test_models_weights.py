"""Weight files and names: Paddle 1.x LoDTensor reader (against Paddle's own serializer), key-scheme
detection, safetensors, save_pretrained round trips, fine-tuning heads, mismatch errors, and the
name registry (spellings, PaddleHub names, weight variants, list_models)."""
from __future__ import annotations

import logging
import tarfile
import warnings

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.errors import RegistryError, WeightsError  # noqa: E402
from hubcls.models import _weights as W  # noqa: E402


def paddle_write(path, arr):
    from paddle.base import core

    t = core.DenseTensor()
    t.set(arr, core.CPUPlace())
    core.save_dense_tensor(t, str(path))


@pytest.mark.parametrize("dtype,shape", [("float32", (64, 3, 3, 3)), ("float32", (1000,)), ("float64", (2, 5)),
                                         ("int64", (7,)), ("float16", (4, 4)), ("int32", (3, 1, 2)),
                                         ("uint8", (9,)), ("float32", (2048, 10))])
def test_lod_tensor_reader_matches_paddle_serializer(tmp_path, dtype, shape):
    rng = np.random.RandomState(0)
    arr = (rng.standard_normal(shape) * 100).astype(dtype)
    paddle_write(tmp_path / "p", arr)
    got = W.read_lod_tensor((tmp_path / "p").read_bytes())
    assert got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    # our writer produces the same bytes as Paddle's
    W.write_lod_tensor(tmp_path / "o", arr)
    assert (tmp_path / "o").read_bytes() == (tmp_path / "p").read_bytes()


def test_lod_tensor_reader_packed_dims_and_lod():
    import struct

    arr = np.arange(6, dtype="float32").reshape(2, 3)
    desc = b"\x08\x05" + b"\x12\x02\x02\x03"  # data_type=FP32, dims packed [2, 3]
    lod = struct.pack("<Q", 16) + struct.pack("<QQ", 0, 2)  # one LoD level of two offsets
    blob = struct.pack("<IQ", 0, 1) + lod + struct.pack("<Ii", 0, len(desc)) + desc + arr.tobytes()
    np.testing.assert_array_equal(W.read_lod_tensor(blob), arr)


@pytest.mark.parametrize("blob,match", [(b"", "not a Paddle 1.x"), (b"\x01\x00\x00\x00" + b"\x00" * 20, "version"),
                                        (None, "truncated")])
def test_lod_tensor_reader_rejects_bad_files(tmp_path, blob, match):
    if blob is None:
        W.write_lod_tensor(tmp_path / "t", np.ones((10, 10), "float32"))
        blob = (tmp_path / "t").read_bytes()[:-8]
    with pytest.raises(WeightsError, match=match):
        W.read_lod_tensor(blob, source="x")


@pytest.fixture(scope="module")
def r18():
    paddle.seed(1)
    m = hubcls.create_model("ResNet18_vd")
    m.eval()
    # non-trivial BN statistics so that mix-ups show
    for k, v in m.state_dict().items():
        if k.endswith(("_mean", "_variance")):
            v.set_value(np.random.RandomState(len(k)).uniform(0.5, 1.5, v.shape).astype("float32"))
    return m


@pytest.fixture(scope="module")
def x():
    return paddle.to_tensor(np.random.RandomState(2).standard_normal((1, 3, 64, 64)).astype("float32"))


def out(m, x):
    m.eval()
    with paddle.no_grad():
        return m(x).numpy()


def test_native_and_20_schemes_detected(r18, x, tmp_path):
    sd = r18.state_dict()
    paddle.save(sd, str(tmp_path / "n.pdparams"))
    m = hubcls.create_model("ResNet18_vd")
    assert W.load_pretrained(m, tmp_path / "n.pdparams") == "native"
    np.testing.assert_array_equal(out(m, x), out(r18, x))
    mapping = W.candidate_schemes(r18)["2.0"]
    paddle.save({mapping[k]: v for k, v in sd.items()}, str(tmp_path / "o.pdparams"))
    m = hubcls.create_model("ResNet18_vd")
    assert W.load_pretrained(m, tmp_path / "o.pdparams") == "2.0"
    np.testing.assert_array_equal(out(m, x), out(r18, x))
    assert "conv1_1._conv.weight" in mapping.values() and "bb_3_1.conv1._batch_norm._variance" in mapping.values()


def test_static_directory_and_tar(r18, x, tmp_path):
    names = W.static_names(r18)
    d = tmp_path / "ResNet18_vd_pretrained"
    d.mkdir()
    for k, v in r18.state_dict().items():
        paddle_write(d / names[k], v.numpy())
    m = hubcls.create_model("ResNet18_vd", pretrained=str(d))
    np.testing.assert_array_equal(out(m, x), out(r18, x))
    tar = tmp_path / "ResNet18_vd_pretrained.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(d, arcname=d.name)
    m = hubcls.create_model("ResNet18_vd", pretrained=str(tar))
    np.testing.assert_array_equal(out(m, x), out(r18, x))


def test_resnet50_vd_10w_config():
    cfg = hubcls.models.resolve("ResNet50_vd_10w")
    assert cfg.arch == "ResNet50_vd" and cfg.num_classes == 100000
    assert cfg.url_static.endswith("/ResNet50_vd_10w_pretrained.tar") and cfg.url is None
    assert cfg.has_weights


@pytest.mark.slow
def test_resnet50_vd_10w_static_tar(tmp_path):
    """The 100k-class model loads its static tar (fc_0.w_0 is 2048 x 100000)."""
    src = hubcls.create_model("ResNet50_vd_10w")
    assert src.fc.weight.shape == [2048, 100000]
    names = W.static_names(src)
    d = tmp_path / "ResNet50_vd_10w_pretrained"
    d.mkdir()
    for k, v in src.state_dict().items():
        W.write_lod_tensor(d / names[k], v.numpy())
    assert (d / "fc_0.w_0").is_file() and (d / "res5c_branch2c_weights").is_file()
    m = hubcls.create_model("ResNet50_vd_10w", pretrained=str(d))
    np.testing.assert_array_equal(m.fc.weight.numpy(), src.fc.weight.numpy())


def test_save_pretrained_round_trip(r18, x, tmp_path):
    m = hubcls.create_model("ResNet18_vd_imagenet", num_classes=7)
    m.eval()
    for safe in (False, True):
        d = tmp_path / f"saved_{safe}"
        m.save_pretrained(d, safe_serialization=safe)
        assert (d / "model.json").is_file() and (d / "model.safetensors").is_file()
        assert (d / ("model.safetensors" if safe else "model.pdparams")).is_file()
        back = hubcls.create_model("anything: the directory's config wins", pretrained=str(d))
        assert back.pretrained_cfg.arch == "ResNet18_vd" and back.pretrained_cfg.num_classes == 7
        np.testing.assert_array_equal(out(back, x), out(m, x))


def test_safetensors_file(r18, x, tmp_path):
    from safetensors.numpy import save_file

    save_file({k: v.numpy() for k, v in r18.state_dict().items()}, str(tmp_path / "w.safetensors"))
    m = hubcls.create_model("ResNet18_vd", pretrained=str(tmp_path / "w.safetensors"))
    np.testing.assert_array_equal(out(m, x), out(r18, x))


def test_finetune_classifier_is_one_info_line(r18, x, tmp_path, caplog):
    paddle.save(r18.state_dict(), str(tmp_path / "w.pdparams"))
    with warnings.catch_warnings(record=True) as rec, caplog.at_level(logging.INFO, logger="hubcls.models"):
        warnings.simplefilter("always")
        m = hubcls.create_model("ResNet18_vd", pretrained=str(tmp_path / "w.pdparams"), num_classes=10)
    ours = [r for r in caplog.records if r.name == "hubcls.models" and r.levelno >= logging.INFO]
    assert len(ours) == 1 and "classifier" in ours[0].getMessage() and "fine-tuning" in ours[0].getMessage()
    assert not [w for w in rec if "hubcls" in str(w.filename) or "shape" in str(w.message).lower()]
    assert m.fc.weight.shape == [512, 10]
    m.eval()
    with paddle.no_grad():
        np.testing.assert_array_equal(m.forward_features(x).numpy(), r18.forward_features(x).numpy())


def test_mismatches_are_weights_errors_listing_keys(r18, tmp_path):
    sd = {k: v.numpy() for k, v in r18.state_dict().items()}
    missing = dict(sd)
    del missing["blocks.3.conv1.bn._mean"]
    paddle.save(missing, str(tmp_path / "m.pdparams"))
    with pytest.raises(WeightsError, match=r"missing from the file \(1\): blocks\.3\.conv1\.bn\._mean"):
        hubcls.create_model("ResNet18_vd", pretrained=str(tmp_path / "m.pdparams"))
    extra = dict(sd, **{"head.extra.weight": np.zeros(3, "float32")})
    paddle.save(extra, str(tmp_path / "e.pdparams"))
    with pytest.raises(WeightsError, match=r"not in the model \(1\): head\.extra\.weight"):
        hubcls.create_model("ResNet18_vd", pretrained=str(tmp_path / "e.pdparams"))
    bad = dict(sd)
    bad["stem.0.conv.weight"] = np.zeros((32, 3, 5, 5), "float32")
    paddle.save(bad, str(tmp_path / "s.pdparams"))
    with pytest.raises(WeightsError, match=r"shape mismatch.*stem\.0\.conv\.weight.*\[32, 3, 5, 5\]"):
        hubcls.create_model("ResNet18_vd", pretrained=str(tmp_path / "s.pdparams"))
    # another architecture's file
    with pytest.raises(WeightsError):
        hubcls.create_model("ResNet34_vd", pretrained=str(tmp_path / "m.pdparams"))


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "junk.pdparams").write_bytes(b"not a pickle")
    with pytest.raises(WeightsError, match="not a readable .pdparams"):
        hubcls.create_model("ResNet18", pretrained=str(tmp_path / "junk.pdparams"))
    with pytest.raises(WeightsError, match="no such file"):
        hubcls.create_model("ResNet18", pretrained=str(tmp_path / "nope.pdparams"))
    with pytest.raises(WeightsError, match="no official pretrained weights"):
        hubcls.create_model("ResNet200", pretrained=True)


def test_checkpoint_prefix_is_stripped(r18, x, tmp_path):
    paddle.save({"backbone." + k: v for k, v in r18.state_dict().items()}, str(tmp_path / "c.pdparams"))
    m = hubcls.create_model("ResNet18_vd", pretrained=str(tmp_path / "c.pdparams"))
    np.testing.assert_array_equal(out(m, x), out(r18, x))


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["ResNet50_vd_ssld", "resnet50_vd_ssld", "RESNET50_VD_SSLD",
                                      "resnet50_vd_imagenet_ssld", "resnet50-vd-ssld"])
def test_spellings_resolve(spelling):
    cfg = hubcls.models.resolve(spelling)
    assert cfg.name == "ResNet50_vd_ssld" and cfg.arch == "ResNet50_vd"
    assert cfg.url.endswith("/dygraph/ResNet50_vd_ssld_pretrained.pdparams")
    assert cfg.top1 == pytest.approx(0.824)


@pytest.mark.parametrize("name,arch", [("ResNet50_vd_ssld_v2", "ResNet50_vd"), ("Fix_ResNet50_vd_ssld_v2", "ResNet50_vd"),
                                       ("ResNet50_vd_v2", "ResNet50_vd"), ("ResNet34_vd_ssld", "ResNet34_vd"),
                                       ("resnext101_vd_64x4d_imagenet", "ResNeXt101_vd_64x4d"),
                                       ("se_resnext50_32x4d_imagenet", "SE_ResNeXt50_32x4d"),
                                       ("senet154_vd_imagenet", "SENet154_vd")])
def test_variants_resolve_to_arch(name, arch):
    assert hubcls.models.resolve(name).arch == arch


def test_fix_model_eval_size():
    cfg = hubcls.models.resolve("Fix_ResNet50_vd_ssld_v2")
    assert cfg.input_size == 320 and cfg.resize_short == 366


def test_model_carries_cfg():
    m = hubcls.create_model("resnet50_vd_imagenet_ssld")
    assert m.pretrained_cfg.name == "ResNet50_vd_ssld"
    assert m.pretrained_cfg.input_size == 224 and m.pretrained_cfg.resize_short == 256


def test_unknown_name_suggests():
    with pytest.raises(RegistryError, match="unknown model 'ResNet51_vd'.*did you mean"):
        hubcls.models.resolve("ResNet51_vd")


def test_list_models():
    allm = hubcls.list_models()
    assert "ResNet50_vd" in allm and "ResNet50_vd_ssld" in allm and "SENet154_vd" in allm
    r = hubcls.list_models("resnet50*")
    assert set(r) >= {"ResNet50", "ResNet50_vd", "ResNet50_vc", "ResNet50_vd_ssld", "ResNet50_vd_ssld_v2", "ResNet50_vd_10w"}
    assert all(n.lower().startswith("resnet50") for n in r)
    with_w = hubcls.list_models("ResNet*", pretrained=True)
    without = hubcls.list_models("ResNet*", pretrained=False)
    assert "ResNet200" in without and "ResNet200" not in with_w
    assert "ResNet50_vd_ssld" in with_w and not set(with_w) & set(without)
    assert hubcls.list_models("*_ssld") == sorted(hubcls.list_models("*_ssld"), key=str.lower)
    assert hubcls.list_models("no_such_*") == []


def _smallest_arch_per_mapped_family():
    """For every family module with a registered key map (or Paddle 1.x static names, recorded by
    the shared layers), its smallest architecture."""
    from _models_common import arch_names, params_m_estimate

    from hubcls.models._registry import _KEY_MAPS, ARCHS

    names = arch_names()  # loads the family files, which register their key maps
    mapped = {fn.__module__ for maps in _KEY_MAPS.values() for fn in maps.values()}
    mapped |= {"hubcls.models.resnext", "hubcls.models.senet"}  # static names via _layers
    by_module = {}
    for name in names:
        module = ARCHS.get(name).__module__
        if module in mapped:
            by_module.setdefault(module, []).append(name)
    return [sorted(names, key=lambda n: (params_m_estimate(n) or 1e9, n))[0]
            for _, names in sorted(by_module.items())]


@pytest.mark.parametrize("name", _smallest_arch_per_mapped_family())
def test_every_registered_key_scheme_round_trips(name, tmp_path):
    """Save a model under each scheme its family registers (2.0, static, ...) and load it back:
    the loader must detect the scheme and reproduce the logits."""
    from hubcls.models._static import _fold_for

    m = hubcls.create_model(name)
    schemes = W.candidate_schemes(m)
    sd = m.state_dict()
    if len(schemes) == 1:
        pytest.skip(f"{name}: only its own key scheme")
    from _models_common import test_input_size

    size = test_input_size(m)
    xx = paddle.to_tensor(np.random.RandomState(3).standard_normal((1, 3, size, size)).astype("float32"))
    ref = out(m, xx)
    for scheme, mapping in schemes.items():
        if scheme == "native":
            continue
        file_keys = [mapping[k] for k in sd]
        assert len(set(file_keys)) == len(file_keys), f"{scheme}: two parameters map to one key"
        if scheme == "static" and _fold_for(m) is not None:
            # this family's static load reproduces the 2020 program's arithmetic (a folded dropout
            # scale, a conv bias, fluid's upsampling), not this model's: tests/test_models_static.py
            # checks it against the recorded 2020 program instead
            continue
        if scheme == "static":
            d = tmp_path / scheme
            d.mkdir()
            for k, v in sd.items():
                W.write_lod_tensor(d / mapping[k], v.numpy())
            path = d
        else:
            path = tmp_path / f"{scheme}.pdparams"
            paddle.save({mapping[k]: v for k, v in sd.items()}, str(path))
        fresh = hubcls.create_model(name)
        got = W.load_pretrained(fresh, path)
        assert got in (scheme, "2.0", "2.0-bb") if scheme.startswith("2.0") else got == scheme
        np.testing.assert_array_equal(out(fresh, xx), ref)


@pytest.mark.parametrize("hub_name,name", [
    ("hrnet18_imagenet_ssld", "HRNet_W18_C_ssld"), ("se_hrnet64_imagenet_ssld", "SE_HRNet_W64_C_ssld"),
    ("mobilenet_v3_large_imagenet_ssld", "MobileNetV3_large_x1_0_ssld"), ("mobilenet_v2_imagenet", "MobileNetV2"),
    ("fix_resnext101_32x48d_wsl_imagenet", "Fix_ResNeXt101_32x48d_wsl"), ("shufflenet_v2_imagenet", "ShuffleNetV2_x1_0"),
    ("efficientnetb0_imagenet", "EfficientNetB0"), ("se_resnet18_vd_imagenet", "SE_ResNet18_vd"),
    ("resnet50_vd_10w", "ResNet50_vd_10w"), ("inception_v4_imagenet", "InceptionV4"),
])
def test_paddlehub_module_names(hub_name, name):
    """PaddleHub's module names for PaddleClas models (hub.Module(name=...))."""
    from hubcls.models import list_models

    if name not in list_models(name):
        pytest.skip(f"{name} is not registered in this checkout")
    assert hubcls.models.resolve(hub_name).name == name
