"""Exported models give eval-mode dygraph answers: Paddle Inference (oneDNN), onnxruntime, Predictor,
hub.Module — for several model families, on real photos (issue 9.3/9.4, issue 10.3)."""
from __future__ import annotations

import numpy as np
import pytest
from _deploy_helpers import dygraph_logits, informative_init, photos, softmax

paddle = pytest.importorskip("paddle")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("paddle2onnx")

import hubcls  # noqa: E402
from hubcls.data import eval_transforms_for  # noqa: E402
from hubcls.deploy import Predictor, export_model  # noqa: E402

# one model per family; eval size reduced (crop 96 from a short side of 110) to keep CI fast -
# the export, the preprocessing JSON and the Predictor all follow the cfg, so this is the real path.
FAMILIES = ["ResNet18_vd", "MobileNetV3_small_x0_35", "ShuffleNetV2_x0_25", "GhostNet_x0_5"]
TOL = 1e-4


def _build(name, imgs, seed=0):
    m = hubcls.create_model(name)
    cfg = m.pretrained_cfg.with_(input_size=96, resize_short=110)
    probe = np.stack([np.asarray(eval_transforms_for(cfg)(i), np.float32) for i in imgs])
    informative_init(m, seed, probe)
    return m, cfg


@pytest.fixture(scope="module")
def imgs():
    return photos()


@pytest.fixture(scope="module", params=FAMILIES)
def exported(request, tmp_path_factory, imgs):
    name = request.param
    if name not in hubcls.list_models("*"):
        pytest.skip(f"{name} is not registered")
    model, cfg = _build(name, imgs)
    out = export_model(model, tmp_path_factory.mktemp(name), cfg=cfg, onnx=True)
    ref, batch = dygraph_logits(model, eval_transforms_for(cfg), imgs)
    assert ref.std() > 0.5, "the reference logits must spread for the tolerance to mean anything"
    predictors = {}

    def predictor(backend):  # one per backend and family: Paddle Inference start-up is ~1-2 s
        if backend not in predictors:
            predictors[backend] = Predictor(out, backend=backend, threads=1)
        return predictors[backend]

    return {"name": name, "dir": out, "model": model, "cfg": cfg, "ref": ref, "batch": batch, "predictor": predictor}


@pytest.mark.parametrize("backend", ["inference", "onnxruntime"])
def test_backend_logits_and_topk_equal_dygraph(exported, backend, imgs):
    p = exported["predictor"](backend)
    # the Predictor rebuilds the preprocessing from preprocess.json: same tensor as eval
    batch = p.preprocess(imgs, channel_order="RGB")
    np.testing.assert_allclose(batch, exported["batch"], atol=1e-6)
    logits = p.logits(batch)
    ref = exported["ref"]
    assert logits.shape == ref.shape
    assert np.abs(logits - ref).max() <= TOL, f"{exported['name']} {backend}: {np.abs(logits - ref).max()}"
    res = p.predict(imgs, top_k=5, batch_size=3, channel_order="RGB")
    probs = softmax(ref.astype(np.float64))
    names = p.labels or [str(i) for i in range(ref.shape[1])]
    for r, pr in zip(res, probs):
        top = np.argsort(-pr, kind="stable")[:5]
        assert list(r) == [names[i] for i in top]
        got = np.array(list(r.values()))
        assert np.abs(got - pr[top]).max() <= TOL


def test_predictor_batching_reuses_buffer_and_is_batch_independent(exported, imgs):
    p = exported["predictor"]("onnxruntime")
    one_by_one = [p.predict([im], top_k=3, channel_order="RGB")[0] for im in imgs]
    batched = p.predict(imgs, top_k=3, batch_size=4, channel_order="RGB")  # batches of 4 and 2
    for a, b in zip(one_by_one, batched):
        assert list(a) == list(b)
        assert np.allclose(list(a.values()), list(b.values()), atol=1e-5)


def test_predictor_matches_hub_module(exported, imgs, tmp_path):
    """Predictor.predict returns what hub.Module.predict returns (labels and probabilities)."""
    hub = pytest.importorskip("hubcls.hub")
    if exported["name"] != FAMILIES[0]:
        pytest.skip("one family is enough for the Module comparison")
    # the export directory is a model package: the Module runs its weights in dygraph, with the
    # reduced eval size this test exported with (from the manifest)
    module = hub.Module(directory=str(exported["dir"]), backend="dygraph")
    assert module.pipeline.input_size == (3, 96, 96) and module.runner.name == "dygraph"
    bgr = [im[:, :, ::-1] for im in imgs]
    want = module.predict(bgr, top_k=3, batch_size=2)
    got = exported["predictor"]("inference").predict(bgr, top_k=3, batch_size=2)
    for w, g in zip(want, got):
        assert list(w) == list(g)
        assert np.allclose(list(w.values()), list(g.values()), atol=TOL)


def test_int8_agreement_reported(exported, imgs, tmp_path):
    """INT8 (onnxruntime static quantisation, calibrated on the photos): an approximation, so report
    its top-1 agreement and logit error; require that it is still the same classifier (correlation)."""
    if exported["name"] not in FAMILIES[:2]:
        pytest.skip("int8 checked on two families")
    from hubcls.deploy import quantize_onnx_int8
    from hubcls.deploy.backends import OnnxRuntimeBackend

    q = quantize_onnx_int8(exported["dir"] / "model.onnx", tmp_path / "q.onnx", exported["batch"])
    got = OnnxRuntimeBackend(q, threads=1)(exported["batch"])
    ref = exported["ref"]
    agree = float(np.mean(got.argmax(1) == ref.argmax(1)))
    corr = float(np.corrcoef(got.ravel(), ref.ravel())[0, 1])
    print(f"{exported['name']} int8: top-1 agreement {agree:.2f}, logit correlation {corr:.4f}, "
          f"max |dlogit| {np.abs(got - ref).max():.3f}")
    if exported["name"] == "ResNet18_vd":
        # random-weight MobileNetV3 (hardswish/SE on untrained statistics) quantises poorly, so only the
        # ResNet is held to a bound here; trained models: see docs/deployment.md (INT8 study)
        assert corr > 0.9
