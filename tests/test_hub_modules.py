"""modules/: one generated PaddleHub module package per pretrained model, in sync with the registry."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from _hub_helpers import MODEL, photo, write_weights

from hubcls.hub.make_modules import class_name, diff, hub_name, module_names
from hubcls.models import resolve

MODULES = Path(__file__).resolve().parents[1] / "modules"


def test_modules_folder_is_in_sync_with_the_registry():
    problems = diff(MODULES)
    assert not problems, ("modules/ is out of sync with the model registry; regenerate it with "
                          "`python -m hubcls.hub.make_modules`:\n  " + "\n  ".join(problems[:30]))


def test_every_pretrained_model_has_a_module_and_names_resolve():
    from hubcls.models._registry import pretrained_cfgs

    names = module_names()
    with_weights = {c.name for c in pretrained_cfgs().values() if c.has_weights}
    assert set(names.values()) <= with_weights
    assert len(names) >= 20
    for hub, model in names.items():
        assert resolve(hub).name == model, hub  # the hub spelling resolves back to the model
        text = (MODULES / hub / "module.py").read_text()
        assert re.search(rf'^HUBCLS_MODEL = "{re.escape(model)}"$', text, re.M)
        assert f'name="{hub}"' in text and f"class {class_name(hub)}(HubModule)" in text


def test_paddlehub_style_names():
    assert hub_name(resolve("ResNet50_vd_ssld")) == "resnet50_vd_imagenet_ssld"  # PaddleHub's own name
    assert hub_name(resolve("MobileNetV3_small_x0_35")) == "mobilenetv3_small_x0_35_imagenet"
    assert resolve("resnet50_vd_imagenet_ssld").name == "ResNet50_vd_ssld"


def test_generated_module_works_without_paddlehub(tmp_path):
    """Importing a module package needs no PaddleHub: it is a hubcls.hub.Module for its model."""
    pytest.importorskip("paddle")
    import hubcls.hub as hub

    h = hub_name(resolve(MODEL))
    path = MODULES / h / "module.py"
    spec = importlib.util.spec_from_file_location(f"_hubmod_{h}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = getattr(mod, class_name(h))
    w = write_weights(tmp_path / "w.pdparams")
    m = cls(weights=str(w))
    assert isinstance(m, hub.Module) and m.pretrained_cfg.name == MODEL
    ref = hub.Module(name=MODEL, weights=str(w))
    assert m.classification(images=[photo(0)], top_k=3) == ref.predict([photo(0)], top_k=3)
    import base64

    from _hub_helpers import jpeg_bytes

    b64 = base64.b64encode(jpeg_bytes(photo(1))).decode()
    assert m.serving_method(images=[b64], top_k=2) == ref.predict([jpeg_bytes(photo(1))], top_k=2)
