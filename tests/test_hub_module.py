"""hubcls.hub.Module: predict on every input kind, per-image errors, weights resolution, features."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from _hub_helpers import MODEL, StaticServer, jpeg_bytes, photo, reference_probs, same_answers, write_weights

pytest.importorskip("paddle")

import hubcls.hub as hub  # noqa: E402
from hubcls.errors import ConfigError, ImageDecodeError  # noqa: E402
from hubcls.hub.module import PredictionError, WeightsUnavailableError  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_weights(tmp_path_factory.mktemp("w") / "mnv3.pdparams")


@pytest.fixture(scope="module")
def module(weights):
    return hub.Module(name=MODEL, weights=str(weights))


def _ranked(d: dict):
    return list(d.items())


def test_predict_matches_eval_reference_on_photos(module, weights, tmp_path):
    imgs = [photo(0), photo(1), photo(2)]
    paths = []
    for i, img in enumerate(imgs):
        p = tmp_path / f"p{i}.jpg"
        p.write_bytes(jpeg_bytes(img))
        paths.append(p)
    from hubcls.data import read_image

    decoded = [read_image(str(p)) for p in paths]
    ref = reference_probs(weights, decoded)
    res = module.predict([str(p) for p in paths], top_k=5, batch_size=2)
    assert len(res) == 3
    for r, row in zip(res, ref):
        order = np.argsort(-row, kind="stable")[:5]
        assert list(r) == [module.labels[i] for i in order]
        np.testing.assert_allclose(list(r.values()), row[order], rtol=1e-4, atol=1e-6)
        probs = list(r.values())
        assert probs == sorted(probs, reverse=True)
    # the generated head makes answers image-dependent (a real check, not ~uniform noise)
    assert len({next(iter(r)) for r in res}) >= 2


def test_every_input_kind_gives_the_same_answer(module, tmp_path):
    from PIL import Image

    rgb = photo(1)
    data = jpeg_bytes(rgb)
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    from hubcls.data import read_image

    dec = read_image(data)  # what the JPEG decodes to
    inputs = [
        str(path),
        path,  # os.PathLike
        data,  # bytes
        io.BytesIO(data),  # file object
        Image.open(io.BytesIO(data)),  # PIL
        np.ascontiguousarray(dec[:, :, ::-1]),  # BGR array (PaddleHub / cv2 default)
    ]
    res = module.predict(inputs, top_k=3)
    rgb_res = module.predict([dec], top_k=3, channel_order="RGB")[0]
    for r in res:
        assert list(r) == list(rgb_res)
        np.testing.assert_allclose(list(r.values()), list(rgb_res.values()), rtol=1e-5)


def test_bgr_default_differs_from_rgb(module):
    img = photo(0)
    as_bgr = module.predict([img], top_k=1000)[0]  # interpreted as BGR -> channels swapped
    as_rgb = module.predict([img], top_k=1000, channel_order="RGB")[0]
    assert not np.allclose([as_bgr[k] for k in as_rgb], list(as_rgb.values()))
    swapped = module.predict([np.ascontiguousarray(img[:, :, ::-1])], top_k=1000)[0]
    np.testing.assert_allclose([swapped[k] for k in as_rgb], list(as_rgb.values()), rtol=1e-5)


def test_gray_and_rgba_arrays(module):
    img = photo(2)
    gray = img.mean(axis=2).astype(np.uint8)
    r_gray = module.predict([gray], top_k=2)[0]
    r_stack = module.predict([np.stack([gray] * 3, axis=2)], top_k=2)[0]
    assert list(r_gray) == list(r_stack)
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 7, np.uint8)], axis=2)
    assert list(module.predict([rgba], top_k=2, channel_order="RGB")[0]) == list(
        module.predict([img], top_k=2, channel_order="RGB")[0])


def test_batch_size_does_not_change_answers(module):
    imgs = [photo(i) for i in range(4)]
    a = module.predict(imgs, batch_size=1, top_k=3)
    b = module.predict(imgs, batch_size=3, top_k=3)
    for x, y in zip(a, b):
        assert list(x) == list(y)
        np.testing.assert_allclose(list(x.values()), list(y.values()), rtol=1e-4, atol=1e-6)


def test_bad_images_raise_by_default_naming_each(module, tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ImageDecodeError) as ei:
        module.predict([photo(0), b"not an image", str(missing)])
    msg = str(ei.value)
    assert "2 of 3" in msg and "nope.jpg" in msg and "#1" in msg and "on_error='return'" in msg


def test_bad_images_return_per_image_errors_without_sinking_others(module):
    good = photo(0)
    expected = module.predict([good], top_k=2)[0]
    res = module.predict([b"\xff\xd8\xff garbage", good, np.zeros((4, 4), np.float32), "no/such/file.png", good],
                         top_k=2, on_error="return", batch_size=2)
    assert [type(r) is PredictionError for r in res] == [True, False, True, True, False]
    assert res[0].index == 0 and "error" in res[0]
    assert "uint8" in res[2]["error"]
    assert "no such file" in res[3]["error"]
    for r in (res[1], res[4]):
        assert list(r) == list(expected)


def test_top_k_and_argument_validation(module):
    r = module.predict([photo(0)], top_k=10_000)[0]
    assert len(r) == module.num_classes  # ImageNet's duplicate names ("crane", "maillot") stay apart
    assert len(set(module.labels)) == module.num_classes
    np.testing.assert_allclose(sum(r.values()), 1.0, rtol=1e-4)
    with pytest.raises(ValueError):
        module.predict([photo(0)], top_k=0)
    with pytest.raises(ValueError):
        module.predict([photo(0)], batch_size=0)
    with pytest.raises(ValueError):
        module.predict([photo(0)], channel_order="BRG")
    with pytest.raises(ValueError):
        module.predict([photo(0)], on_error="ignore")


def test_classification_alias_is_paddlehub_shaped(module, tmp_path):
    img = photo(3)
    p = tmp_path / "a.jpg"
    p.write_bytes(jpeg_bytes(img))
    bgr = np.ascontiguousarray(img[:, :, ::-1])
    res = module.classification(images=[bgr], paths=[str(p)], top_k=2)
    assert len(res) == 2 and all(isinstance(r, dict) and len(r) == 2 for r in res)
    assert res[1] == module.predict([bgr], top_k=2)[0]  # PaddleHub answers paths= first, then images=
    with pytest.raises(ValueError):
        module.classification()


def test_label_list_override_and_mismatch(weights, tmp_path):
    names = [f"class_{i}" for i in range(1000)]
    m = hub.Module(name=MODEL, weights=str(weights), label_list=names)
    assert all(k.startswith("class_") for k in m.predict([photo(0)], top_k=3)[0])
    f = tmp_path / "labels.txt"
    f.write_text("\n".join(f"{i} thing{i}" for i in range(1000)))
    m2 = hub.Module(name=MODEL, weights=str(weights), label_list=str(f))
    assert m2.labels[5] == "thing5"
    with pytest.raises(ConfigError, match="3 names"):
        hub.Module(name=MODEL, weights=str(weights), label_list=["a", "b", "c"])


def test_snake_and_paddlehub_names_resolve(weights):
    m = hub.Module(name="mobilenetv3_small_x0_35_imagenet", weights=str(weights))
    assert m.name == MODEL


def test_no_weights_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as ei:
        hub.Module(name=MODEL)
    msg = str(ei.value)
    assert f"{MODEL}_pretrained.pdparams" in msg  # the file
    assert str(tmp_path / "home") in msg  # where to put it
    assert "weights=" in msg


def test_missing_weights_file_and_bad_args(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        hub.Module(name=MODEL, weights=str(tmp_path / "missing.pdparams"))
    with pytest.raises(ConfigError):
        hub.Module()
    with pytest.raises(TypeError):
        hub.Module(name=MODEL, weights="random", colour="blue")


def test_random_weights_only_when_asked():
    with pytest.warns(UserWarning, match="untrained"):
        m = hub.Module(name=MODEL, weights="random")
    assert m.weights_source == "random"


def test_official_weights_download_from_a_mirror(tmp_path, monkeypatch, weights):
    """weights=None downloads the official file: here from a 127.0.0.1 mirror (HUBCLS_MODEL_ENDPOINT)."""
    from hubcls.models import resolve

    cfg = resolve(MODEL)
    url = cfg.weight_urls()[0] if hasattr(cfg, "weight_urls") else cfg.url
    rel = url.split("bcebos.com/", 1)[1]
    root = tmp_path / "mirror"
    (root / rel).parent.mkdir(parents=True)
    (root / rel).write_bytes(weights.read_bytes())
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HUBCLS_OFFLINE", raising=False)
    monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")  # the stand-in mirror is plain http on 127.0.0.1
    with StaticServer(root) as srv:
        monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", srv.url)
        m = hub.Module(name=MODEL)
        assert any(rel.split("/")[-1] in p for p in srv.requests)
    assert m.weights_source == "official"
    ref = hub.Module(name=MODEL, weights=str(weights))
    assert same_answers(m.predict([photo(1)], top_k=3), ref.predict([photo(1)], top_k=3))
    # second time: from the cache, no server needed
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    assert same_answers(hub.Module(name=MODEL).predict([photo(1)], top_k=3), ref.predict([photo(1)], top_k=3))


def test_directory_save_pretrained_round_trip(module, tmp_path):
    d = tmp_path / "saved"
    module.model.save_pretrained(str(d))
    m = hub.Module(directory=str(d))
    imgs = [photo(0), photo(2)]
    assert m.predict(imgs, top_k=3) == module.predict(imgs, top_k=3)


def test_directory_of_a_generated_module_package(weights):
    from hubcls.hub.make_modules import hub_name
    from hubcls.models import resolve

    d = Path(__file__).resolve().parents[1] / "modules" / hub_name(resolve(MODEL))
    assert (d / "module.py").is_file()
    m = hub.Module(directory=str(d), weights=str(weights))
    assert m.name == MODEL


def test_features_are_the_classifier_input(module):
    import paddle

    imgs = [photo(0), photo(1), photo(2)]
    f = module.features(imgs, batch_size=2)
    # the classifier's input width (MobileNetV3 keeps it in head_hidden_size, after its head conv)
    width = getattr(module.model, "head_hidden_size", None) or module.model.num_features
    assert f.shape == (3, width)
    # the classifier applied to the features gives the model's logits
    fc = module.model.get_classifier()
    logits = fc(paddle.to_tensor(f)).numpy()
    ref = module.logits(module.preprocess([np.ascontiguousarray(i[:, :, ::-1]) for i in imgs]))
    np.testing.assert_allclose(logits, ref, rtol=1e-4, atol=1e-4)


def test_backbone_gives_multiscale_features(module):
    import paddle

    bb = module.backbone(out_indices=(1, 2, 3))
    bb.eval()
    outs = bb(paddle.to_tensor(module.preprocess([photo(0)])))
    assert len(outs) == 3
    sizes = [o.shape[-1] for o in outs]
    assert sizes == sorted(sizes, reverse=True)


def test_export_matches_predict(module, tmp_path):
    pytest.importorskip("hubcls.deploy.export")
    out = module.export(str(tmp_path / "export"))
    files = {p.name for p in Path(out).iterdir()}
    assert any(f.endswith(".pdiparams") for f in files)
    assert {"model.json", "model.safetensors", "labels.txt"} <= files  # an export is a model package
    labels = (Path(out) / "labels.txt").read_text().splitlines()
    assert labels == module.labels
    # ... so it is a model for every entry point, the dygraph Module included
    again = hub.Module(directory=out, backend="dygraph")
    a, b = again.predict([photo(1)], top_k=1000)[0], module.predict([photo(1)], top_k=1000)[0]
    assert set(a) == set(b) and len(a) == 1000
    np.testing.assert_allclose([a[k] for k in b], list(b.values()), rtol=1e-4, atol=1e-6)
    # the exported program answers like the Module (same preprocessing, same weights)
    from hubcls.deploy import Predictor

    imgs = [photo(0), photo(3)]
    got = Predictor(out).predict(imgs, top_k=3)
    exp = module.predict(imgs, top_k=3)
    for g, e in zip(got, exp):
        assert list(g) == list(e)
        np.testing.assert_allclose(list(g.values()), list(e.values()), rtol=1e-3, atol=1e-5)
