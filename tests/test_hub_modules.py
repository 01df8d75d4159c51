"""PaddleHub module packages: one template (module.py + model card), generated on demand
(`hubcls hub-module`), PaddleHub's own module names as data, examples in modules/ kept in sync."""
from __future__ import annotations

import base64
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _hub_helpers import MODEL, REPO, jpeg_bytes, photo, same_answers, write_weights

from hubcls.errors import RegistryError
from hubcls.hub.make_modules import EXAMPLES, class_name, diff, hub_name, module_for, module_names, render
from hubcls.models import paddlehub_module, paddlehub_modules, resolve

MODULES = REPO / "modules"


def _load(module_dir: Path):
    spec = importlib.util.spec_from_file_location(f"_hubmod_{module_dir.name}", module_dir / "module.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, class_name(module_dir.name))


def test_examples_in_modules_folder_are_the_templates_output():
    problems = diff(MODULES, EXAMPLES)
    assert not problems, ("modules/ differs from the template; regenerate it with "
                          "`python -m hubcls.hub.make_modules`:\n  " + "\n  ".join(problems))
    # one ImageClassifierModule-style PaddleHub name, one classification-style, one hubcls-only name
    kinds = {paddlehub_module(n).serving if paddlehub_module(n) else None for n in EXAMPLES}
    assert kinds == {"data", "list", None}


def test_paddlehub_table_is_every_paddlehub_classification_module():
    rows = paddlehub_modules()
    assert len(rows) == 139  # PaddleHub @ b402610a, modules/image/classification/ (tests/tools/make_paddlehub_names.py)
    have = {k: v for k, v in rows.items() if v.model}
    assert len(have) == 88
    for hub, row in have.items():
        assert resolve(hub).name == row.model, hub  # the table and the resolver agree
        assert resolve(hub).has_weights
    # the shapes PaddleHub's own modules answer with (their module.py / README clients)
    assert rows["resnet50_vd_imagenet_ssld"].serving == "data" and rows["resnet50_vd_imagenet_ssld"].api == "predict"
    assert rows["efficientnetb0_imagenet"].serving == "list" and rows["efficientnetb0_imagenet"].api == "classification"
    assert rows["densenet121_imagenet"].api == "classification_v1"
    # a PaddleHub module hubcls lacks is refused with the reason, not "unknown model"
    with pytest.raises(RegistryError, match="PaddleHub module hubcls does not provide.*architecture not in"):
        resolve("levit_128_imagenet")


def test_every_model_and_every_paddlehub_name_has_a_module():
    from hubcls.models._registry import pretrained_cfgs

    names = module_names()
    with_weights = {c.name for c in pretrained_cfgs().values() if c.has_weights}
    assert set(names.values()) <= with_weights
    for hub, model in names.items():
        assert resolve(hub).name == model, hub  # every module name resolves back to its model
    for row in paddlehub_modules().values():
        if row.model:
            assert names.get(row.hub_name) == row.model, row.hub_name
    # the 23 PaddleHub names that hubcls's own spelling rule does not produce are there too
    own = {hub_name(resolve(m)) for m in set(names.values())}
    extra = {row.hub_name for row in paddlehub_modules().values() if row.model} - own
    assert len(extra) == 23 and "mobilenet_v3_small_imagenet_ssld" in extra
    assert len(names) == len(own) + 23


def test_paddlehub_style_names():
    assert hub_name(resolve("ResNet50_vd_ssld")) == "resnet50_vd_imagenet_ssld"  # PaddleHub's own name
    assert hub_name(resolve("MobileNetV3_small_x0_35")) == "mobilenetv3_small_x0_35_imagenet"
    assert resolve("resnet50_vd_imagenet_ssld").name == "ResNet50_vd_ssld"
    assert module_for("MobileNetV3_small_x1_0_ssld") == "mobilenetv3_small_x1_0_imagenet_ssld"
    assert module_for("Mobilenet_V3_Small_Imagenet_SSLD") == "mobilenet_v3_small_imagenet_ssld"


@pytest.mark.parametrize("hub", ["resnet50_vd_imagenet_ssld", "efficientnetb0_imagenet", "mobilenetv3_small_x0_35_imagenet",
                                 "fix_resnext101_32x48d_wsl_imagenet", "mobilenet_v3_small_imagenet_ssld"])
def test_model_card_facts_come_from_the_zoo_table(hub):
    model = module_names()[hub]
    cfg = resolve(model)
    card = render(hub, model)["README.md"]
    fields = dict(re.findall(r"^\| (\w[\w ]*?) \| (.*) \|$", card, re.M))
    assert {"Task", "Model", "Accuracy", "Parameters", "FLOPs", "Input size", "Labels", "License"} <= set(fields)
    assert f"{cfg.top1:.1%} top-1" in fields["Accuracy"]
    assert fields["Parameters"] == f"{cfg.params_m:.2f} M"
    assert fields["FLOPs"].startswith(f"{2 * cfg.macs_g:.3g} G")
    assert fields["Input size"].startswith(f"3x{cfg.input_size}x{cfg.input_size} RGB")
    assert "1000 classes" in fields["Labels"]
    assert ("CC BY-NC" in fields["License"]) == ("wsl" in hub)
    ph = paddlehub_module(hub)
    read = 'r.json()["results"]["data"]' if ph is not None and ph.answers_data else 'r.json()["results"])'
    assert read in card  # the serving client of the PaddleHub module of this name
    assert f'hub.Module(name="{hub}")' in card and f"hub install ./{hub}" in card


def test_every_module_renders_a_complete_card():
    unknown = []
    for hub, model in module_names().items():
        card = render(hub, model)["README.md"]
        assert "$" not in card.replace("${", "")  # every template field filled
        if "| unknown |" in card or "not published" in card:
            unknown.append(hub)
    # only the 100,000-class ResNet50_vd_10w has no published accuracy or size
    assert sorted(unknown) == ["resnet50_vd_10w", "resnet50_vd_imagenet_10w"]


def test_hub_module_cli_writes_an_installable_package(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hubcls", "hub-module", "mobilenet_v3_small_imagenet_ssld", MODEL,
                        "-o", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for hub in ("mobilenet_v3_small_imagenet_ssld", hub_name(resolve(MODEL))):
        d = tmp_path / hub
        assert sorted(p.name for p in d.iterdir()) == ["README.md", "__init__.py", "module.py"]
        assert (d / "module.py").read_text() == render(hub, module_names()[hub])["module.py"]
        assert f"wrote {d}/" in r.stdout
    r = subprocess.run([sys.executable, "-m", "hubcls", "hub-module", "levit_128_imagenet", "-o", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "PaddleHub module hubcls does not provide" in r.stderr


def test_generated_module_works_without_paddlehub(tmp_path):
    """Importing a module package needs no PaddleHub: it is a hubcls.hub.Module for its model."""
    pytest.importorskip("paddle")
    import hubcls.hub as hub

    cls = _load(MODULES / hub_name(resolve(MODEL)))
    w = write_weights(tmp_path / "w.pdparams")
    m = cls(weights=str(w))
    assert isinstance(m, hub.Module) and m.pretrained_cfg.name == MODEL and m.paddlehub is None
    ref = hub.Module(name=MODEL, weights=str(w))
    assert same_answers(m.classification(images=[photo(0)], top_k=3), ref.predict([photo(0)], top_k=3))
    b64 = base64.b64encode(jpeg_bytes(photo(1))).decode()
    assert same_answers(m.serving_method(images=[b64], top_k=2), ref.predict([jpeg_bytes(photo(1))], top_k=2))


def test_module_under_a_paddlehub_name_answers_as_that_module(tmp_path):
    """A module named as an ImageClassifierModule PaddleHub module: first names, {"data": [...]}."""
    pytest.importorskip("paddle")
    import hubcls.hub as hub

    d = tmp_path / "mobilenet_v3_small_imagenet_ssld"
    subprocess.run([sys.executable, "-m", "hubcls", "hub-module", d.name, "-o", str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    w = write_weights(tmp_path / "w.pdparams", "MobileNetV3_small_x1_0_ssld")
    m = _load(d)(weights=str(w))
    assert m.name == d.name and m.paddlehub.hub_name == d.name and m.serving_shape == "data"
    ref = hub.Module(name="MobileNetV3_small_x1_0_ssld", weights=str(w))
    assert ref.labels[263] == "Pembroke, Pembroke Welsh corgi" and m.labels[263] == "Pembroke"
    want = ref.predict([jpeg_bytes(photo(1))], top_k=3)[0]
    b64 = base64.b64encode(jpeg_bytes(photo(1))).decode()
    got = m.serving_method(images=[b64], top_k=3)
    assert list(got) == ["data"] and len(got["data"]) == 1
    assert list(got["data"][0]) == [k.split(",")[0] for k in want]
    assert same_answers(list(got["data"][0].values()), list(want.values()))
    # hub.Module(directory=<the package>) is the same module
    again = hub.Module(directory=str(d), weights=str(w))
    assert again.paddlehub.hub_name == d.name and again.labels == m.labels
