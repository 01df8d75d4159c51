"""The model package (hubcls/models/_package.py) and the resolver (hubcls/models/_resolve.py):
every accepted form of a model resolves, heads take the weights' class count, errors name the forms."""
from __future__ import annotations

import json
import logging
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import hubcls  # noqa: E402
from hubcls.errors import ConfigError, RegistryError, WeightsError  # noqa: E402
from hubcls.models import ACCEPTED_FORMS, inference_labels, read_package, resolve_model, save_package  # noqa: E402

MODEL = "MobileNetV3_small_x0_35"
CLASSES = ["circle", "square", "triangle", "star", "ring", "cross"]
REPO = Path(__file__).resolve().parents[1]


def _logits(model, x):
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype("float32")


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    """A 6-class model (what fine-tuning on the quick-start data gives) with a distinctive head."""
    paddle.seed(3)
    m = hubcls.create_model(MODEL, num_classes=6)
    m.eval()
    return m


def _run_dir(root: Path, model, labels=CLASSES) -> Path:
    """The run layout `hubcls train` wrote before packages: config.yaml + best_model.pdparams, the
    label list where the config's dataset points (relative to the working directory of training)."""
    run = root / "output" / "quickstart"
    (run / "demo_data").mkdir(parents=True)
    (run / "demo_data" / "label_list.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(labels)))
    cfg = {
        "Global": {"output_dir": "./output/quickstart/", "output_subdir": False},
        "Arch": {"name": MODEL, "class_num": len(labels), "pretrained": False},
        "DataLoader": {"Eval": {"dataset": {"name": "DemoDataset", "image_root": "./output/quickstart/demo_data",
                                            "transform_ops": [{"DecodeImage": {"to_rgb": True}},
                                                              {"ResizeImage": {"resize_short": 73}},
                                                              {"CropImage": {"size": 64}},
                                                              {"NormalizeImage": {"scale": 1.0 / 255.0, "order": ""}},
                                                              {"ToCHWImage": None}]}}},
    }
    import yaml

    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    paddle.save(model.state_dict(), str(run / "best_model.pdparams"))
    return run


# --------------------------------------------------------------------------- the package format
def test_package_round_trip_and_manifest(six, x, tmp_path):
    d = save_package(six, tmp_path / "pkg", labels=CLASSES, provenance={"metrics": {"top1": 0.5}})
    doc = json.loads((d / "model.json").read_text())
    assert doc["format"] == "hubcls-model" and doc["format_version"] == 1
    assert doc["arch"] == MODEL and doc["num_classes"] == 6 and doc["labels"] == CLASSES
    assert doc["input_size"] == [3, 224, 224] and doc["preprocess"][1] == {"CropImage": {"size": 224}}
    assert doc["provenance"]["metrics"] == {"top1": 0.5} and doc["provenance"]["versions"]["hubcls"]
    assert doc["provenance"]["base_model"] == MODEL
    assert not (d / "model.pdparams").exists()
    # safetensors, not a pickle: 8-byte header length, then the JSON header
    raw = (d / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert raw[8:9] == b"{" and json.loads(raw[8:8 + n])["__metadata__"]["arch"] == MODEL
    import hashlib

    assert doc["weights"]["sha256"] == hashlib.sha256(raw).hexdigest() and doc["weights"]["bytes"] == len(raw)

    back = hubcls.create_model(str(d))
    assert back.num_classes == 6 and list(back.pretrained_cfg.label_list) == CLASSES
    np.testing.assert_array_equal(_logits(back, x), _logits(six, x))
    pkg = read_package(d)
    assert pkg.labels == CLASSES and pkg.input_size == (3, 224, 224) and pkg.program is None


def test_package_pdparams_on_request_and_stale_copy_dropped(six, x, tmp_path):
    d = six.save_pretrained(tmp_path / "p", labels=CLASSES, pdparams=True)
    assert (d / "model.pdparams").is_file() and "weights_pdparams" in json.loads((d / "model.json").read_text())
    # PaddleClas's tools read the .pdparams: same tensors as the safetensors file
    m = hubcls.create_model(MODEL, pretrained=str(d / "model.pdparams"))
    np.testing.assert_array_equal(_logits(m, x), _logits(six, x))
    six.save_pretrained(d, labels=CLASSES)  # rewritten without: the old .pdparams would be stale
    assert not (d / "model.pdparams").exists()


def test_package_preprocess_and_bad_labels(six, tmp_path):
    ops = [{"ResizeImage": {"resize_short": 73}}, {"CropImage": {"size": 64}},
           {"NormalizeImage": {"scale": 1 / 255.0, "order": ""}}, {"ToCHWImage": None}]
    d = save_package(six, tmp_path / "pkg", labels=CLASSES, preprocess=ops)
    src = resolve_model(str(d))
    assert src.kind == "package" and src.preprocess == ops and src.input_size == (3, 64, 64)
    assert src.cfg.resize_short == 73
    with pytest.raises(ConfigError, match="3 labels for a 6-class"):
        save_package(six, tmp_path / "bad", labels=["a", "b", "c"])
    # a truncated weights file is caught by the manifest's size
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    with pytest.raises(WeightsError, match="manifest says"):
        read_package(d)


def test_older_save_pretrained_directory_still_loads(six, x, tmp_path):
    d = tmp_path / "old"
    d.mkdir()
    paddle.save(six.state_dict(), str(d / "model.pdparams"))
    cfg = six.pretrained_cfg.to_dict()
    (d / "config.json").write_text(json.dumps({"format": "hubcls", "version": 1, "architecture": MODEL,
                                               "pretrained_cfg": cfg}))
    src = resolve_model(str(d))
    assert src.kind == "package" and src.cfg.num_classes == 6
    np.testing.assert_array_equal(_logits(src.create(), x), _logits(six, x))


# --------------------------------------------------------------------------- every form resolves
@pytest.mark.parametrize("spelling", ["MobileNetV3_small_x0_35", "mobilenetv3_small_x0_35",
                                      "mobilenetv3_small_x0_35_imagenet"])
def test_zoo_names_any_spelling(spelling):
    src = resolve_model(spelling)
    assert src.kind == "zoo" and src.name == MODEL and src.weights is True and src.cfg.num_classes == 1000
    assert len(src.labels) == 1000


def test_run_directory_of_the_older_layout(six, x, tmp_path, monkeypatch):
    run = _run_dir(tmp_path, six)
    monkeypatch.chdir(tmp_path / "output")  # not where training ran: labels are found inside the run
    for spec in (str(run), str(run / "best_model.pdparams")):
        src = resolve_model(spec)
        assert src.kind == "run" and src.cfg.num_classes == 6 and src.labels == CLASSES
        assert src.input_size == (3, 64, 64) and src.preprocess[0] == {"ResizeImage": {"resize_short": 73}}
        np.testing.assert_array_equal(_logits(src.create(), x), _logits(six, x))
    # a name plus the run's weights file: the run's facts come along
    src = resolve_model(MODEL, weights=str(run / "best_model.pdparams"))
    assert src.labels == CLASSES and src.input_size == (3, 64, 64)
    with pytest.raises(ConfigError, match="belong to MobileNetV3_small_x0_35, not ResNet18"):
        resolve_model("ResNet18", weights=str(run / "best_model.pdparams"))


def test_run_directory_with_best_and_last_packages(six, x, tmp_path):
    run = tmp_path / "run"
    save_package(six, run / "best", labels=CLASSES)
    paddle.seed(9)
    other = hubcls.create_model(MODEL, num_classes=6)
    save_package(other, run / "last", labels=CLASSES)
    src = resolve_model(str(run))
    assert src.kind == "run" and src.labels == CLASSES and src.weights == run / "best" / "model.safetensors"
    np.testing.assert_array_equal(_logits(src.create(), x), _logits(six, x))
    last = resolve_model(str(run / "last"))
    assert last.kind == "package"
    np.testing.assert_array_equal(_logits(last.create(), x), _logits(other, x))


def test_paddlehub_module_directory():
    d = REPO / "modules" / "mobilenetv3_small_x0_35_imagenet"
    src = resolve_model(str(d), weights="random")
    assert src.kind == "hub_module" and src.name == MODEL and src.weights is False


def test_older_export_directory_is_program_only(tmp_path):
    d = tmp_path / "export"
    d.mkdir()
    for f in ("inference.json", "inference.pdiparams"):
        (d / f).write_bytes(b"")
    ops = [{"ResizeImage": {"resize_short": 73}}, {"CropImage": {"size": 64}}]
    (d / "preprocess.json").write_text(json.dumps({"ops": ops, "input_size": [3, 64, 64]}))
    (d / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    (d / "hubcls_export.json").write_text(json.dumps({"model": MODEL, "arch": MODEL, "num_classes": 6}))
    src = resolve_model(str(d))
    assert src.kind == "export" and src.program == d / "inference" and src.labels == CLASSES
    assert src.weights is None and src.input_size == (3, 64, 64)
    with pytest.raises(ConfigError, match="only an inference program"):
        src.create()


def test_weights_file_needs_a_name_unless_its_directory_says(six, tmp_path):
    f = tmp_path / "loose.pdparams"
    paddle.save(six.state_dict(), str(f))
    with pytest.raises(ConfigError, match="needs the architecture's name"):
        resolve_model(str(f))
    src = resolve_model(MODEL, weights=str(f))
    assert src.kind == "zoo" and src.weights == f


def test_errors_name_the_accepted_forms(tmp_path):
    with pytest.raises(ConfigError) as ei:
        resolve_model(str(tmp_path / "nope"))
    assert "no such file" in str(ei.value) and ACCEPTED_FORMS in str(ei.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no model"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(RegistryError) as ei:
        resolve_model("ResNet51_vd")
    assert "did you mean" in str(ei.value) and "model package directory" in str(ei.value)


def test_zoo_name_wins_over_a_folder_of_that_name_holding_no_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / MODEL).mkdir()
    (tmp_path / MODEL / "module.py").write_text("# someone's module source, not a model\n")
    with pytest.warns(UserWarning, match="holds no model; using the zoo model"):
        src = resolve_model(MODEL)
    assert src.kind == "zoo"
    with pytest.raises(ConfigError, match="holds no model"):
        resolve_model(f"./{MODEL}")


# --------------------------------------------------------------------------- heads and labels
def test_named_model_takes_the_files_class_count(six, x, tmp_path, caplog):
    f = tmp_path / "six.pdparams"
    paddle.save(six.state_dict(), str(f))
    with caplog.at_level(logging.INFO, logger="hubcls.models"):
        m = hubcls.create_model(MODEL, pretrained=str(f))
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]  # nothing is re-initialised
    assert m.num_classes == 6 and m.pretrained_cfg.num_classes == 6 and not m.pretrained_cfg.label_list
    np.testing.assert_array_equal(_logits(m, x), _logits(six, x))
    # fine-tuning stays explicit: a different num_classes re-initialises the head (one info line)
    with caplog.at_level(logging.INFO, logger="hubcls.models"):
        ft = hubcls.create_model(MODEL, pretrained=str(f), num_classes=3)
    assert ft.num_classes == 3 and sum("fine-tuning" in r.getMessage() for r in caplog.records) == 1


def test_head_size_read_in_every_key_scheme(tmp_path):
    from hubcls.models._weights import candidate_schemes, head_num_classes

    for name, n in (("ResNet18_vd", 7), ("SqueezeNet1_0", 5)):  # a Linear head; a 1x1-conv head
        m = hubcls.create_model(name, num_classes=n)
        sd = {k: v.numpy() for k, v in m.state_dict().items()}
        probe = hubcls.create_model(name)
        for scheme, mapping in candidate_schemes(probe).items():
            renamed = {mapping.get(k, k): v for k, v in sd.items()}
            assert head_num_classes(probe, renamed) == n, (name, scheme)


def test_inference_labels_rules(tmp_path):
    cfg = hubcls.models.resolve(MODEL)
    assert inference_labels(cfg, 1000)[0].startswith("tench")
    f = tmp_path / "l.txt"
    f.write_text("".join(f"{i} {n}\n" for i, n in enumerate(CLASSES)))
    assert inference_labels(cfg.with_(num_classes=6, label_list=""), 6, str(f)) == CLASSES
    assert inference_labels(cfg, 6, CLASSES) == CLASSES
    with pytest.raises(ConfigError, match="3 names but the model has 6"):
        inference_labels(cfg, 6, ["a", "b", "c"])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        names = inference_labels(cfg.with_(num_classes=6, label_list=""), 6)
    assert names == [f"class_{i}" for i in range(6)] and "class_0..class_5" in str(rec[0].message)
