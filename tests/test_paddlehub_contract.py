"""PaddleHub's module contract, through hubcls.hub.Module (no PaddleHub installed).

Our own tests written from what PaddleHub documents and tests for its classification modules
(PaddleHub @ b402610a: ``modules/image/classification/<name>/test.py``, ``module.py``, README
clients; none of their code is copied): ``hub.Module(name=<PaddleHub name>)`` then

* ``classification(paths=[jpg])`` / ``(images=[cv2.imread(jpg)])`` / ``(..., use_gpu=True)`` answer
  ``[{"Pembroke": p}]`` with p > 0.5 for their dog photo;
* ``classification(paths=["no.jpg"])`` raises AssertionError, ``classification(images=["x.jpg"])``
  a TypeError;
* ``save_inference_model("./inference/model")`` writes ``inference/model.pdmodel`` + ``.pdiparams``.

The photo and weights are the only changes (neither is reachable here): a real photo (scikit-image's
cat) and weights whose classifier answers "Pembroke" for it (``weights_answering``), put where the
official weights are cached, so the module is created exactly as PaddleHub's tests create it.
tests/test_paddlehub_compat.py runs the same contract through real PaddleHub 2.4.
"""
from __future__ import annotations

import base64
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from _hub_helpers import jpeg_bytes, photo, weights_answering

pytest.importorskip("paddle")
cv2 = pytest.importorskip("cv2")

import hubcls.hub as hub  # noqa: E402

PEMBROKE = 263  # ImageNet-1k "Pembroke, Pembroke Welsh corgi"
# one PaddleHub module of each kind, small models: classification(images=, paths=) answering a list;
# an ImageClassifierModule (predict(), serving answers {"data": [...]})
CASES = {"efficientnetb0_small_imagenet": "EfficientNetB0_small", "mobilenet_v3_small_imagenet_ssld": "MobileNetV3_small_x1_0_ssld"}


def _gpu() -> bool:
    from hubcls.deploy.backends import resolve_device

    return resolve_device("auto") != "cpu"


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    """(module, work dir): the module made as PaddleHub's test makes it, ``hub.Module(name=...)``,
    its official weights read from the offline cache."""
    name = request.param
    tmp = tmp_path_factory.mktemp(name)
    (tmp / "tests").mkdir()
    (tmp / "tests" / "test.jpg").write_bytes(jpeg_bytes(photo(2)))
    mp = pytest.MonkeyPatch()
    mp.setenv("HUBCLS_HOME", str(tmp / "hubcls_home"))  # the weights cache (and backend caches) of this test
    mp.setenv("HUBCLS_OFFLINE", "1")
    mp.setenv("HUBCLS_BACKEND", "dygraph")  # the contract does not depend on the backend: skip the export
    from hubcls.hub.download import cache_path
    from hubcls.models import resolve

    cfg = resolve(CASES[name])
    cached = Path(cache_path(cfg.weight_urls()[0]))
    weights_answering(cached, cfg.name, cv2.imread(str(tmp / "tests" / "test.jpg"))[:, :, ::-1], PEMBROKE)
    mp.chdir(tmp)
    try:
        module = hub.Module(name=name)
        yield module, tmp
    finally:
        mp.undo()


def _check_pembroke(results):
    data = results[0]
    assert "Pembroke" in data
    assert data["Pembroke"] > 0.5


def test_classification_paths(case):
    module, _ = case
    _check_pembroke(module.classification(paths=["tests/test.jpg"]))


def test_classification_images(case):
    module, _ = case
    _check_pembroke(module.classification(images=[cv2.imread("tests/test.jpg")]))


def test_classification_use_gpu_per_call(case):
    module, _ = case
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = module.classification(images=[cv2.imread("tests/test.jpg")], use_gpu=True)
    _check_pembroke(res)
    fell_back = any("no CUDA GPU: running on the CPU" in str(w.message) for w in caught)
    assert fell_back == (not _gpu())
    np.testing.assert_allclose(res[0]["Pembroke"], module.classification(paths=["tests/test.jpg"])[0]["Pembroke"],
                               rtol=1e-3)


def test_classification_missing_file_is_assertion_error(case):
    module, _ = case
    with pytest.raises(AssertionError, match="no.jpg isn't a valid file path"):
        module.classification(paths=["no.jpg"])


def test_classification_path_as_image_is_type_error(case):
    module, _ = case
    with pytest.raises(TypeError, match="paths="):
        module.classification(images=["tests/test.jpg"])
    with pytest.raises(TypeError):
        module.classification(images="tests/test.jpg")


def test_save_inference_model_file_names_and_programs(case):
    module, tmp = case
    prefix = module.save_inference_model("./inference/model")
    if module.paddlehub.api == "predict":  # PaddleHub's Layer modules: <dir>/<module name>.*
        assert prefix == os.path.join("./inference/model", module.paddlehub.hub_name)
    else:
        assert prefix == "./inference/model"
        assert os.path.exists("./inference/model.pdmodel") and os.path.exists("./inference/model.pdiparams")
    assert {os.path.exists(prefix + ext) for ext in (".pdmodel", ".json", ".pdiparams")} == {True}
    # both programs (Paddle 2.x's .pdmodel, Paddle 3's .json) answer what the Module answers
    from paddle.inference import Config, create_predictor

    batch = module.preprocess([photo(2), photo(0)])
    want = module.logits(batch)
    for program in (prefix + ".pdmodel", prefix + ".json"):
        config = Config(program, prefix + ".pdiparams")
        config.disable_gpu()
        config.disable_glog_info()
        pred = create_predictor(config)
        pred.get_input_handle(pred.get_input_names()[0]).copy_from_cpu(batch)
        pred.run()
        got = pred.get_output_handle(pred.get_output_names()[0]).copy_to_cpu()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=program)


# ------------------------------------------------------------------ the rest of PaddleHub's surface
def test_paths_come_before_images_and_top_k(case):
    module, _ = case
    cat = cv2.imread("tests/test.jpg")
    coffee = np.ascontiguousarray(photo(1)[:, :, ::-1])
    res = module.classification(images=[coffee], paths=["tests/test.jpg"], top_k=3)
    assert len(res) == 2 and all(len(r) == 3 for r in res)
    assert res[0] == module.classification(images=[cat], top_k=3)[0]  # the path's answer comes first
    assert res[1] == module.classification(images=[coffee], top_k=3)[0]
    # Paddle 1.x modules' form: classification(data={"image": [paths]})
    assert module.classification(data={"image": ["tests/test.jpg"]}, top_k=3) == [res[0]]


def test_labels_are_paddlehubs_first_names(case):
    module, _ = case
    assert module.labels[PEMBROKE] == "Pembroke" and len(module.labels) == 1000
    assert module.labels[0] == "tench" and len(set(module.labels)) == 1000
    # the same model under its PaddleClas name keeps hubcls's full names
    plain = hub.Module(name=module.pretrained_cfg.name)
    assert plain.labels[PEMBROKE] == "Pembroke, Pembroke Welsh corgi" and plain.paddlehub is None


def test_serving_method_answers_in_the_paddlehub_modules_shape(case):
    module, _ = case
    b64 = base64.b64encode(open("tests/test.jpg", "rb").read()).decode()
    got = module.serving_method(images=[b64, "not base64!"], top_k="2")
    want = module.classification(paths=["tests/test.jpg"], top_k=2)
    if module.paddlehub.answers_data:  # ImageClassifierModule: {"data": [...]}
        assert isinstance(got, dict) and list(got) == ["data"]
        got = got["data"]
    else:  # classification-style modules: a plain list
        assert isinstance(got, list)
    assert got[0] == want[0] and "error" in got[1]


def test_run_cmd_is_hub_run(case):
    module, _ = case
    out = module.run_cmd(["--input_path", "tests/test.jpg", "--top_k", "2"])
    want = module.classification(paths=["tests/test.jpg"], top_k=2)
    assert [list(r) for r in out] == [list(r) for r in want]
    # ImageClassifierModule.predict holds float32 probabilities; classification() Python floats
    assert {type(v) for v in out[0].values()} == ({np.float32} if module.paddlehub.answers_data else {float})
    with pytest.raises(SystemExit):
        module.run_cmd(["--top_k", "2"])  # --input_path is required


def test_hubcls_serve_answers_each_readme_client(case):
    """PaddleHub's README client for the module reads r.json()["results"]["data"] (ImageClassifierModule
    modules) or r.json()["results"] (the others); hubcls serve answers each in its own shape."""
    pytest.importorskip("fastapi")
    pytest.importorskip("prometheus_client")
    from fastapi.testclient import TestClient

    from hubcls.hub.serving import create_app

    module, _ = case
    name = module.paddlehub.hub_name
    img = cv2.imread("tests/test.jpg")
    data = {"images": [base64.b64encode(cv2.imencode(".jpg", img)[1]).decode("utf8")], "top_k": 2}
    with TestClient(create_app({name: module})) as client:
        r = client.post(f"/predict/{name}", headers={"Content-type": "application/json"}, json=data)
    body = r.json()
    results = body["results"]["data"] if module.paddlehub.answers_data else body["results"]
    assert body["status"] == "000" and isinstance(results, list)
    want = module.predict([cv2.imencode(".jpg", img)[1].tobytes()], top_k=2)[0]
    assert list(results[0]) == list(want) and "Pembroke" in results[0]
    np.testing.assert_allclose(list(results[0].values()), list(want.values()), rtol=1e-5)
