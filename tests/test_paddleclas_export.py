"""PaddleClas 2.x inference exports served as they are: Predictor, hub.Module(directory=...) and
``hubcls serve --model-dir`` take a ``tools/export_model.py`` folder (inference.pdmodel or
inference.json + inference.pdiparams) with its ``inference_cls.yaml``-style config.

The export is made the way PaddleClas makes it, from pip paddleclas 2.6's own models
(MobileNetV3_small_x0_35; MobileNetV1_x0_25 for the Paddle 2.x .pdmodel form): its
ExportModel (ppcls/engine/engine.py: the backbone, then ``nn.Softmax(axis=-1)`` unless
``Arch.infer_add_softmax: False``) saved by ``paddle.jit.save`` as ``<dir>/inference`` with input
``[None, 3, 224, 224]`` (Paddle 3 writes inference.json; Paddle 2.x's inference.pdmodel is made
under the old-IR mode). The config is pip paddleclas's own ``deploy/configs/inference_cls.yaml``
with the paths pointed at the export and at its ImageNet label map. The reference is PaddleClas's
own deployment code on the same folder: ``deploy/python/predict_cls.py``'s ClsPredictor
(its preprocess ops, Paddle Inference, its Topk postprocess).
"""
from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from _hub_helpers import jpeg_bytes, photo

paddle = pytest.importorskip("paddle")
yaml = pytest.importorskip("yaml")
try:  # import PaddleClas's deploy package before _zoo_peer_mobile puts paddleclas/ itself on sys.path
    predict_cls = importlib.import_module("paddleclas.deploy.python.predict_cls")
    ppcls_config = importlib.import_module("paddleclas.deploy.utils.config")
except Exception as exc:  # noqa: BLE001 - not installed, or one of its imports is missing
    pytest.skip(f"pip paddleclas's deploy code is not importable ({exc}); tests/install_peers.sh",
                allow_module_level=True)

from _zoo_peer_mobile import build_peer  # noqa: E402

PACKAGE = Path(predict_cls.__file__).resolve().parents[2]  # site-packages/paddleclas
INFERENCE_CLS = PACKAGE / "deploy" / "configs" / "inference_cls.yaml"
LABEL_MAP = PACKAGE / "ppcls" / "utils" / "imagenet1k_label_list.txt"


class ExportModel(paddle.nn.Layer):
    """What PaddleClas's ExportModel computes for a classifier: the model, then its softmax."""

    def __init__(self, model, add_softmax=True):
        super().__init__()
        self.base_model = model
        self.out_act = paddle.nn.Softmax(axis=-1) if add_softmax else None

    def forward(self, x):
        x = self.base_model(x)
        return self.out_act(x) if self.out_act is not None else x


def _calibrate(model):
    """Random weights give every photo the same answer; BatchNorm statistics of the photos (one
    train-mode pass, momentum 0) make the answers photo-dependent, so the comparison means something."""
    from hubcls.data import build_transforms

    tf = build_transforms([{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
                           {"NormalizeImage": {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406],
                                               "std": [0.229, 0.224, 0.225], "order": ""}}, {"ToCHWImage": None}])
    x = paddle.to_tensor(np.stack([tf(photo(i)) for i in range(4)]).astype("float32"))
    for bn in (m for m in model.sublayers() if isinstance(m, (paddle.nn.BatchNorm, paddle.nn.layer.norm._BatchNormBase))):
        bn._momentum = 0.0
    model.train()
    with paddle.no_grad():
        model(x)
    model.eval()
    # and a classifier whose logits spread ~3 over the classes (random ones barely do)
    fc = [m for m in model.sublayers() if isinstance(m, paddle.nn.Linear)][-1]
    with paddle.no_grad():
        logits = model(x).numpy()
    factor = np.float32(3.0 / max(float(logits.std(axis=1).mean()), 1e-6))
    fc.weight.set_value(fc.weight.numpy() * factor)
    fc.bias.set_value(fc.bias.numpy() * factor)
    return model


def _export(folder: Path, *, add_softmax=True, legacy=False) -> Path:
    # Paddle 3.3 traces an old-IR program only from ops that still have a ProgramDesc form: PaddleClas's
    # MobileNetV3 calls paddle.multiply (PIR-only now), its MobileNetV1 does not
    peer = ("legendary_models.mobilenet_v1", "MobileNetV1_x0_25") if legacy else \
        ("legendary_models.mobilenet_v3", "MobileNetV3_small_x0_35")
    model = ExportModel(_calibrate(build_peer(*peer)), add_softmax)
    model.eval()
    spec = [paddle.static.InputSpec(shape=[None, 3, 224, 224], dtype="float32")]
    folder.mkdir(parents=True)
    if legacy:
        with paddle.pir_utils.OldIrGuard():
            paddle.jit.save(paddle.jit.to_static(model, input_spec=spec), str(folder / "inference"))
    else:
        paddle.jit.save(paddle.jit.to_static(model, input_spec=spec), str(folder / "inference"))
    return folder


def _config(path: Path, model_dir: Path, label_map=LABEL_MAP, topk=5) -> Path:
    """pip paddleclas's deploy/configs/inference_cls.yaml, pointed at the export and its label map."""
    doc = yaml.safe_load(INFERENCE_CLS.read_text())
    doc["Global"].update(inference_model_dir=str(model_dir), use_gpu=False, enable_mkldnn=False, cpu_num_threads=1,
                         enable_benchmark=False, batch_size=1)
    doc["PostProcess"]["Topk"].update(topk=topk, class_id_map_file=str(label_map))
    doc["PostProcess"].pop("SavePreLabel", None)
    path.write_text(yaml.safe_dump(doc))
    return path


def _paddleclas_predict(config: Path, rgb_images):
    """PaddleClas's own answer: ClsPredictor (its ops, Paddle Inference, Topk) on RGB arrays, as
    predict_cls.main feeds them (cv2.imread(...)[:, :, ::-1]). Two changes for Paddle 3.3: it refuses
    ``config.enable_memory_optim()`` ("Not find predictor_id 0 and pass_name memory_optimize_pass"),
    so memory optimisation (which changes no value) is switched back off; and a folder with a 2.x
    inference.pdmodel is opened by its file names, as PaddleClas does for Paddle < 2.6."""
    predictor_mod = importlib.import_module("paddleclas.deploy.utils.predictor")
    real, real_config = predictor_mod.create_predictor, predictor_mod.Config

    def create_predictor(config):
        config.enable_memory_optim(False)
        return real(config)

    def config_(*args):  # PaddleClas 2.6 on Paddle >= 2.6 asks for <dir>/inference.json only; a 2.x
        if len(args) == 2 and not os.path.isfile(os.path.join(args[0], args[1] + ".json")):  # folder has .pdmodel
            return real_config(os.path.join(args[0], args[1] + ".pdmodel"), os.path.join(args[0], args[1] + ".pdiparams"))
        return real_config(*args)

    predictor_mod.create_predictor, predictor_mod.Config = create_predictor, config_
    try:
        predictor = predict_cls.ClsPredictor(ppcls_config.get_config(str(config), show=False))
    finally:
        predictor_mod.create_predictor, predictor_mod.Config = real, real_config
    return [predictor.predict([img.copy()])[0] for img in rgb_images], predictor


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("paddleclas_export")
    out = {"json": _export(root / "pir"), "pdmodel": _export(root / "legacy", legacy=True),
           "logits": _export(root / "nosoftmax", add_softmax=False)}
    assert (out["json"] / "inference.json").is_file() and (out["pdmodel"] / "inference.pdmodel").is_file()
    return out


IMAGES = [photo(0), photo(1), photo(2)]


@pytest.mark.parametrize("kind", ["json", "pdmodel"])
def test_predictor_answers_what_paddleclas_deploy_answers(exports, tmp_path, kind):
    from hubcls.deploy import Predictor

    folder = exports[kind]
    config = _config(tmp_path / "inference_cls.yaml", folder)
    want, ppcls = _paddleclas_predict(config, IMAGES)
    ppcls_ops = ppcls.preprocess_ops
    for model in (folder, config):  # the folder (config found inside) and the config itself
        if model == folder:
            (folder / "inference_cls.yaml").write_text(config.read_text())
        p = Predictor(str(model), backend="inference")
        got = p.predict(IMAGES, top_k=5, channel_order="RGB")
        # 1. the config's preprocessing, built by hubcls, is PaddleClas's (within its 1.5 grey levels
        #    of resize rounding, as tests/test_data_transforms.py checks for these ops)
        batch = p.preprocess(IMAGES, channel_order="RGB")
        for x, img in zip(batch, IMAGES):
            ref = img.copy()
            for op in ppcls_ops:
                ref = op(ref)
            assert x.shape == ref.shape and np.abs(x - ref).max() < 1.5 / 255 / 0.225
        # 2. on the same tensors, PaddleClas's program run + Topk (its names, no second softmax) and
        #    hubcls answer the same, to Topk's 5 decimals
        ppcls.preprocess_ops = []
        for g, x in zip(got, batch):
            w = ppcls.predict([x])[0]
            assert list(g) == w["label_names"]
            np.testing.assert_allclose(list(g.values()), w["scores"], atol=6e-6)
        ppcls.preprocess_ops = ppcls_ops
        assert p.pipeline.outputs == "probabilities"  # the program's softmax is not applied twice
        (folder / "inference_cls.yaml").unlink(missing_ok=True)
    # photo-dependent answers (a comparison of more than a constant)
    assert len({tuple(w["scores"]) for w in want}) == len(want) and max(w["scores"][0] for w in want) > 0.05


def test_module_and_serve_model_dir_take_the_folder(exports, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import hubcls.hub as hub
    from hubcls.deploy import Predictor
    from hubcls.hub.serving import create_app

    folder = exports["json"]
    _config(folder / "inference_cls.yaml", folder)
    want = Predictor(str(folder), backend="inference").predict([IMAGES[0]], top_k=5, channel_order="RGB")[0]
    m = hub.Module(directory=str(folder), backend="inference")
    assert m.num_classes == 1000 and m.source.kind == "export" and m.source.provenance["format"] == "PaddleClas export"
    got = m.predict([IMAGES[0]], top_k=5, channel_order="RGB")[0]
    assert list(got) == list(want)
    np.testing.assert_allclose(list(got.values()), list(want.values()), rtol=1e-6)
    # `hubcls serve --model-dir DIR` serves Module(name=DIR) under the folder's name
    import base64

    with TestClient(create_app({folder.name: hub.Module(name=str(folder), backend="inference")})) as client:
        body = client.post(f"/predict/{folder.name}", json={"images": [base64.b64encode(jpeg_bytes(photo(0))).decode()],
                                                            "top_k": 5}).json()
    served = body["results"][0]
    assert body["status"] == "000" and list(served) == list(m.predict([jpeg_bytes(photo(0))], top_k=5)[0])


def test_export_without_softmax_gets_the_pipelines_softmax(exports, tmp_path):
    from hubcls.deploy import Predictor

    folder = exports["logits"]
    config = _config(tmp_path / "c.yaml", folder)
    raw = _paddleclas_predict(config, IMAGES[:2])[0]  # PaddleClas's Topk ranks the raw outputs
    p = Predictor(str(config), backend="inference")
    assert p.pipeline.outputs == "logits"
    got = p.predict(IMAGES[:2], top_k=5, channel_order="RGB")
    batch = p.preprocess(IMAGES[:2], channel_order="RGB")
    logits = p.logits(batch)
    for g, w, row in zip(got, raw, logits):
        assert next(iter(g)) == w["label_names"][0]  # the same top class
        e = np.exp(row - row.max())
        np.testing.assert_allclose(sum(g.values()), (e / e.sum())[np.argsort(-row)[:5]].sum(), rtol=1e-5)
        assert sum(g.values()) <= 1.0


def test_folder_without_config_uses_paddleclas_deploy_defaults(exports, tmp_path):
    from hubcls.deploy import Predictor

    folder = exports["pdmodel"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = Predictor(str(folder), backend="inference")
    assert any("PaddleClas's deploy defaults" in str(w.message) for w in caught)
    # the defaults are pip paddleclas's deploy/configs/inference_cls.yaml with its ImageNet label map
    explicit = Predictor(str(_config(tmp_path / "c.yaml", folder)), backend="inference")
    assert p.labels == explicit.labels and p.labels[0] == "tench, Tinca tinca"
    assert p.input_size == explicit.input_size == (3, 224, 224)
    np.testing.assert_array_equal(p.preprocess(IMAGES[:2], channel_order="RGB"),
                                  explicit.preprocess(IMAGES[:2], channel_order="RGB"))


def test_bad_configs_are_clear_errors(exports, tmp_path):
    from hubcls.errors import ConfigError
    from hubcls.models import resolve_model

    folder = exports["json"]
    short = tmp_path / "ten.txt"
    short.write_text("".join(f"{i} class{i}\n" for i in range(10)))
    with pytest.raises(ConfigError, match="10 class names .* for a program with 1000 outputs"):
        resolve_model(str(_config(tmp_path / "a.yaml", folder, label_map=short)))
    gaps = tmp_path / "gaps.txt"
    gaps.write_text("0 a\n2 b\n")
    with pytest.raises(ConfigError, match="class ids must be 0..1 without gaps"):
        resolve_model(str(_config(tmp_path / "b.yaml", folder, label_map=gaps)))
    missing = _config(tmp_path / "c.yaml", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="inference_model_dir .* is not an export folder"):
        resolve_model(str(missing))
    other = tmp_path / "train.yaml"
    other.write_text("Global:\n  epochs: 1\n")
    with pytest.raises(ConfigError, match="not a PaddleClas inference config"):
        resolve_model(str(other))


def test_program_signature_is_read_not_run(exports):
    from hubcls.models._paddleclas_export import program_signature

    for kind, softmax in (("json", True), ("pdmodel", True), ("logits", False)):
        sig = program_signature(exports[kind] / "inference")
        assert sig.input_shape == (-1, 3, 224, 224) and sig.num_outputs == 1000 and sig.ends_in_softmax is softmax
    assert os.path.getsize(exports["json"] / "inference.json") > 0
