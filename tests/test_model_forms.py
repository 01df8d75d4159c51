"""Every model form the docs promise (docs/models.md "Every form of a model", docs/deployment.md,
docs/serving.md), through every entry point that takes a model: create_model, hub.Module, Predictor,
`hubcls predict`, `hubcls export -m`, `hubcls serve -m/--model-dir/--label-list`.

Each answer is checked against an independent reference: the model that was saved, run directly on
hubcls.data's transforms of the form's eval op list, softmax in NumPy."""
from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from _hub_helpers import MODEL, StaticServer, jpeg_bytes, photo

paddle = pytest.importorskip("paddle")

import hubcls  # noqa: E402
import hubcls.hub as hub  # noqa: E402
from hubcls.cli import main  # noqa: E402
from hubcls.data import build_transforms, read_image  # noqa: E402
from hubcls.deploy import Predictor  # noqa: E402
from hubcls.models import save_package  # noqa: E402

CLASSES = ["circle", "square", "triangle", "star", "ring", "cross"]
OPS = [{"ResizeImage": {"resize_short": 73}}, {"CropImage": {"size": 64}},
       {"NormalizeImage": {"scale": 1 / 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                           "order": ""}}, {"ToCHWImage": None}]
REPO = Path(__file__).resolve().parents[1]
TOL = 1e-4


@pytest.fixture(autouse=True)
def exact_decode(monkeypatch):
    """These tests are about model forms, so the pixels are pinned: JPEGs decode exactly (the fused
    crop-aware decode without DCT scaling gives the pixels of full decode + resize), so the reference
    below can decode with read_image."""
    monkeypatch.setenv("HUBCLS_SCALED_DECODE", "0")


@pytest.fixture(scope="module")
def six():
    """A 6-class MobileNetV3_small_x0_35 whose answers depend on the image (a scaled head)."""
    paddle.seed(7)
    m = hubcls.create_model(MODEL, num_classes=6)
    m.fc.weight.set_value(m.fc.weight * 60.0)
    m.eval()
    return m


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    out = []
    for i in range(3):
        f = d / f"p{i}.jpg"
        f.write_bytes(jpeg_bytes(photo(i)))
        out.append(str(f))
    return out


def _reference(model, ops, files):
    tf = build_transforms(ops)
    x = np.stack([tf(read_image(f)) for f in files]).astype("float32")
    with paddle.no_grad():
        z = model(paddle.to_tensor(x)).numpy().astype(np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _check(answers, ref, labels):
    assert len(answers) == len(ref)
    for a, row in zip(answers, ref):
        assert list(a) == [labels[i] for i in np.argsort(-row, kind="stable")[:len(a)]]
        np.testing.assert_allclose([a[labels[i]] for i in range(len(labels)) if labels[i] in a],
                                   [row[i] for i in range(len(labels)) if labels[i] in a], atol=TOL)


@pytest.fixture(scope="module")
def forms(six, tmp_path_factory):
    """Each documented form of the same 6-class model, written the way hubcls writes it."""
    root = tmp_path_factory.mktemp("forms")
    out = {}
    out["package"] = save_package(six, root / "package", labels=CLASSES, preprocess=OPS)
    # a training run as `hubcls train` writes it now (best/ + last/ packages) ...
    save_package(six, root / "run" / "best", labels=CLASSES, preprocess=OPS)
    paddle.seed(99)
    save_package(hubcls.create_model(MODEL, num_classes=6), root / "run" / "last", labels=CLASSES, preprocess=OPS)
    out["run"] = root / "run"
    # ... and as it wrote it before (config.yaml + best_model.pdparams, labels where the config points)
    old = root / "old_run"
    (old / "data").mkdir(parents=True)
    (old / "data" / "label_list.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(CLASSES)))
    (old / "config.yaml").write_text(yaml.safe_dump({
        "Arch": {"name": MODEL, "class_num": 6},
        "DataLoader": {"Eval": {"dataset": {"name": "ImageNetDataset", "label_list": str(old / "data" / "label_list.txt"),
                                            "transform_ops": [{"DecodeImage": {"to_rgb": True}}, *OPS]}}}}))
    paddle.save(six.state_dict(), str(old / "best_model.pdparams"))
    out["old_run"] = old
    from hubcls.deploy import export_model

    out["export"] = export_model(six, root / "export", preprocess_ops=OPS, labels=CLASSES)
    loose = root / "loose.pdparams"
    paddle.save(six.state_dict(), str(loose))
    out["loose"] = loose
    (root / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    out["labels"] = root / "labels.txt"
    return out


@pytest.mark.parametrize("form", ["package", "run", "old_run", "export"])
def test_directory_forms_everywhere(form, forms, six, files, tmp_path, monkeypatch):
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    d = str(forms[form])
    ref = _reference(six, OPS, files)
    # create_model(DIR): the directory's architecture, class count, names and eval ops
    m = hubcls.create_model(d)
    assert m.num_classes == 6 and list(m.pretrained_cfg.label_list) == CLASSES
    _check(hub.Module(directory=d, backend="dygraph").predict(files, top_k=6), ref, CLASSES)
    _check(hub.Module(name=d, backend="dygraph").predict(files, top_k=3), ref, CLASSES)
    _check(Predictor(d, backend="inference" if form == "export" else "dygraph").predict(files, top_k=6), ref, CLASSES)
    out = tmp_path / "p.json"
    assert main(["predict", *files, "-m", d, "--backend", "dygraph", "--top-k", "6", "--json", str(out)]) == 0
    _check([dict(zip(r["label_names"], r["scores"])) for r in json.loads(out.read_text())], ref, CLASSES)


def test_weights_file_forms(forms, six, files, tmp_path, monkeypatch):
    """A weights file inside a run/package brings that directory's facts; a loose one needs a name,
    takes its class count from the file and its names from label_list= (else class_i + a warning)."""
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    ref = _reference(six, OPS, files)
    for f in (forms["run"] / "best" / "model.safetensors", forms["old_run"] / "best_model.pdparams"):
        _check(hub.Module(name=MODEL, weights=str(f), backend="dygraph").predict(files, top_k=6), ref, CLASSES)
        _check(hub.Module(directory=None, name=str(f), backend="dygraph").predict(files, top_k=6), ref, CLASSES)
    for d in (forms["run"], forms["package"]):  # weights= a run or package directory
        _check(Predictor(MODEL, weights=str(d), backend="dygraph").predict(files, top_k=6), ref, CLASSES)
    from hubcls.data.transforms import eval_ops_config

    zoo_ref = _reference(six, eval_ops_config(hubcls.models.resolve(MODEL)), files)
    loose = str(forms["loose"])
    m = hub.Module(name=MODEL, weights=loose, label_list=str(forms["labels"]), backend="dygraph")
    assert m.num_classes == 6
    _check(m.predict(files, top_k=6), zoo_ref, CLASSES)  # a loose file keeps the zoo's eval preprocessing
    with pytest.warns(UserWarning, match="class_0..class_5"):
        p = Predictor(MODEL, weights=loose, backend="dygraph")
    _check(p.predict(files, top_k=6), zoo_ref, [f"class_{i}" for i in range(6)])
    with pytest.raises(hubcls.errors.ConfigError, match="needs the architecture's name"):
        Predictor(loose)


def test_zoo_names_official_weights_and_url(six, files, tmp_path, monkeypatch):
    """Zoo names in any spelling, official weights (from a loopback mirror), and weights=URL."""
    full = hubcls.create_model(MODEL)
    paddle.seed(3)
    full.fc.weight.set_value(full.fc.weight * 40.0)
    blob = tmp_path / "w.pdparams"
    paddle.save(full.state_dict(), str(blob))
    cfg = hubcls.models.resolve(MODEL)
    rel = cfg.weight_urls()[0].split("bcebos.com/", 1)[1]
    mirror = tmp_path / "mirror"
    (mirror / rel).parent.mkdir(parents=True)
    (mirror / rel).write_bytes(blob.read_bytes())
    (mirror / "mine.pdparams").write_bytes(blob.read_bytes())
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HUBCLS_OFFLINE", raising=False)
    monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")  # the stand-in mirror is plain http on 127.0.0.1
    from hubcls.data.transforms import eval_ops_config

    full.eval()
    ref = _reference(full, eval_ops_config(cfg), files)
    labels = hubcls.models.inference_labels(cfg, 1000)
    from hubcls.deploy.postprocess import unique_labels

    labels = unique_labels(labels)
    with StaticServer(mirror) as srv:
        monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", srv.url)
        for spelling in (MODEL, "mobilenetv3_small_x0_35_imagenet"):
            _check(Predictor(spelling, backend="dygraph").predict(files, top_k=5), ref, labels)
        _check(hub.Module(name=MODEL, weights=f"{srv.url}/mine.pdparams", backend="dygraph").predict(files, top_k=5),
               ref, labels)
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")  # cached now
    d = REPO / "modules" / "mobilenetv3_small_x0_35_imagenet"
    _check(Predictor(str(d), backend="dygraph").predict(files, top_k=5), ref, labels)
    _check(hub.Module(directory=str(d), backend="dygraph").predict(files, top_k=5), ref, labels)


def test_export_cli_takes_a_run_and_serve_takes_directories(forms, six, files, tmp_path, monkeypatch):
    """`hubcls export -m RUN --output DIR`; `hubcls serve -m DIR / --model-dir DIR / -m NAME --weights FILE
    --label-list FILE` (the apps the CLI builds, driven in-process)."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from hubcls.cli import build_parser
    from hubcls.cli.serve import _load_modules
    from hubcls.hub.serving import create_app

    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    ref = _reference(six, OPS, files)
    out = tmp_path / "exported"
    assert main(["export", "-m", str(forms["run"]), "--output", str(out)]) == 0
    _check(Predictor(str(out), backend="inference").predict(files, top_k=6), ref, CLASSES)

    args = build_parser().parse_args([
        "serve", "-m", MODEL, "--weights", str(forms["loose"]), "--label-list", str(forms["labels"]),
        "--model-dir", str(forms["old_run"]), "--model-dir", str(forms["package"]), "--backend", "dygraph"])
    modules = _load_modules(args)
    modules.update(_load_modules(build_parser().parse_args(["serve", "-m", str(forms["run"]), "--backend", "dygraph"])))
    assert set(modules) == {"package", MODEL, "old_run", "run"}
    client = TestClient(create_app(modules))
    payload = {"images": [base64.b64encode(Path(f).read_bytes()).decode() for f in files], "top_k": 6}
    for route in ("package", "old_run", "run"):
        body = client.post(f"/predict/{route}", json=payload).json()
        assert body["status"] == "000"
        _check(body["results"], ref, CLASSES)
    from hubcls.data.transforms import eval_ops_config

    body = client.post(f"/predict/{MODEL}", json=payload).json()
    _check(body["results"], _reference(six, eval_ops_config(hubcls.models.resolve(MODEL)), files), CLASSES)


def test_old_flag_spellings_still_work_with_a_warning(forms, tmp_path, capsys, monkeypatch):
    """One meaning per flag: -o is a config override everywhere. export's -o DIR / -O KEY=VALUE and
    data preview's -m MODE / -o FILE still work for one release, with a warning."""
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    assert main(["export", "-m", str(forms["package"]), "-o", str(tmp_path / "e")]) == 0
    assert "-o PATH is deprecated; use --output" in capsys.readouterr().err
    assert (tmp_path / "e" / "model.json").is_file()
    assert main(["export", "-m", str(forms["package"]), "-o", "a", "-o", "b"]) == 2
    assert "give the output as --output" in capsys.readouterr().err
    assert main(["export", "-m", str(forms["package"]), "--output", str(tmp_path / "f"), "-o", "Global.x=1"]) == 2
    assert "overrides a config: use it with -c" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["data", "demo", str(tmp_path / "demo"), "--classes", "2", "--train-per-class", "2",
                     "--val-per-class", "1"]) == 0
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "Arch": {"name": MODEL, "class_num": 2},
        "DataLoader": {"Eval": {"dataset": {"name": "DemoDataset", "image_root": str(tmp_path / "demo"),
                                            "split": "val", "num_classes": 2, "val_per_class": 1,
                                            "train_per_class": 2,
                                            "transform_ops": [{"DecodeImage": {"to_rgb": True}}, *OPS]},
                                "sampler": {"batch_size": 2}, "loader": {"num_workers": 0}}}}))
    capsys.readouterr()
    png = tmp_path / "g.png"
    assert main(["data", "preview", "-c", str(cfg), "-m", "Eval", "-n", "2", "-o", str(png)]) == 0
    err = capsys.readouterr().err
    assert "-m Eval is deprecated; use --mode Eval" in err and "-o PATH is deprecated" in err and png.is_file()
    for cmd in ("infer", "predict", "export", "eval", "serve", "train", "data", "models", "bench", "quickstart"):
        helptext = build_help(cmd)
        examples = helptext.split("examples:\n", 1)[1].strip().splitlines()
        assert 2 <= len(examples) <= 3 and all(e.strip().startswith("hubcls ") for e in examples), cmd


def build_help(cmd: str) -> str:
    from hubcls.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[cmd].format_help()
