"""Grad-CAM explanations (hubcls.hub.explain): the maths, the mapping back onto the photo, every
family's stages, Module.explain / ``hubcls explain``, and localisation on the trained quick-start model."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _hub_helpers import REPO, jpeg_bytes, photo, write_weights

paddle = pytest.importorskip("paddle")

import hubcls  # noqa: E402
import hubcls.hub as hub  # noqa: E402
from hubcls.errors import ConfigError  # noqa: E402
from hubcls.hub.explain import crop_box, default_stage, grad_cam, to_image  # noqa: E402

EVAL_OPS = [{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}}, {"NormalizeImage": {}},
            {"ToCHWImage": None}]


def test_crop_box_follows_resize_short_and_centre_crop():
    # 300x400: scale 256/300 -> 341x256 (rounded), centre crop 224 starts at (58.5, 16) in the resized
    # image; a resized pixel is 400/341 x 300/256 original pixels
    sx, sy = 400 / 341, 300 / 256
    box = crop_box(EVAL_OPS, 300, 400)
    np.testing.assert_allclose(box, (58.5 * sx, 16 * sy, (58.5 + 224) * sx, (16 + 224) * sy))
    assert crop_box([{"ResizeImage": {"size": [64, 32]}}], 100, 50) == (0.0, 0.0, 50.0, 100.0)
    with pytest.raises(ConfigError, match="cannot map op RandFlipImage"):
        crop_box([{"RandFlipImage": {}}], 10, 10)


def test_crop_box_agrees_with_the_preprocessing():
    """A marker drawn where crop_box says the crop's centre is lands at the centre of the network input."""
    from hubcls.data import build_transforms

    img = np.zeros((300, 451, 3), np.uint8)
    x0, y0, x1, y1 = crop_box(EVAL_OPS[:2], *img.shape[:2])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    img[int(cy) - 20:int(cy) + 20, int(cx) - 20:int(cx) + 20] = 255
    out = build_transforms(EVAL_OPS[:2] + [{"ToCHWImage": None}])(img)[0]
    ys, xs = np.nonzero(out > 128)
    assert abs(ys.mean() - 111.5) < 1.5 and abs(xs.mean() - 111.5) < 1.5
    # and the map's corners land on the box's corners, nothing outside it
    cam = np.zeros((7, 7), np.float32)
    cam[0, 0] = 1.0
    heat = to_image(cam, (x0, y0, x1, y1), *img.shape[:2])
    peak = np.unravel_index(np.argmax(heat), heat.shape)
    assert abs(peak[0] - y0) < 20 and abs(peak[1] - x0) < 20
    assert heat[:, : int(x0)].max() == 0 and heat[:, int(np.ceil(x1)):].max() == 0


def test_grad_cam_of_a_resnet_is_the_class_activation_map():
    """ResNet: last stage -> global average pool -> fc. Then Grad-CAM's channel weights are
    fc.weight[:, c] / (h*w), so the map is ReLU(sum_k W[k, c] A_k) scaled to [0, 1] - Zhou et al.'s CAM,
    computed here without autograd."""
    paddle.seed(0)
    model = hubcls.create_model("ResNet18", num_classes=10)
    model.eval()
    x = np.random.default_rng(0).normal(size=(2, 3, 96, 96)).astype("float32")
    cams, logits, path = grad_cam(model, x, [3, 5], stage=-1)
    with paddle.no_grad():
        feats = model.forward_features(paddle.to_tensor(x)).numpy()
        np.testing.assert_allclose(logits, model(paddle.to_tensor(x)).numpy(), rtol=1e-5, atol=1e-5)
    w = model.fc.weight.numpy()  # (in, out)
    for i, c in enumerate((3, 5)):
        ref = np.maximum(np.einsum("k,khw->hw", w[:, c], feats[i]), 0)
        assert ref.max() > 0  # (a class with no positive evidence gives an all-zero map)
        ref = ref / ref.max()
        np.testing.assert_allclose(cams[i], ref, atol=1e-5)
    assert path == model.feature_info[-1]["module"] and cams.shape == (2, 3, 3)


# one small member of every family with a Grad-CAM stage (input size: 64 unless the model fixes it)
FAMILIES = ["ResNet18", "ResNet18_vd", "MobileNetV3_small_x0_35", "MobileNetV2_x0_25", "MobileNetV1_x0_25",
            "GhostNet_x0_5", "ShuffleNetV2_x0_25", "EfficientNetB0_small", "SqueezeNet1_0", "DenseNet121", "DPN68",
            "HRNet_W18_C", "Res2Net50_26w_4s", "ResNeXt50_32x4d", "SE_ResNeXt50_32x4d", "Xception41", "DarkNet53",
            "RegNetX_4GF", "ResNeSt50_fast_1s1x64d", "InceptionV3", "InceptionV4", "GoogLeNet", "AlexNet", "VGG11",
            "SE_ResNet18_vd"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_grad_cam_for_every_family(name):
    paddle.seed(0)
    model = hubcls.create_model(name, num_classes=5)
    model.eval()
    size = getattr(model, "fixed_input_size", None) or max(64, getattr(model, "min_input_size", 0) or 0)
    x = np.random.default_rng(1).normal(size=(1, 3, size, size)).astype("float32")
    for stage in (-1, default_stage(model, (3, size, size))):
        cams, logits, _ = grad_cam(model, x, [2], stage=stage)
        assert cams.ndim == 3 and np.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
        assert logits.shape == (1, 5)


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return hub.Module(name="MobileNetV3_small_x0_35", weights=str(write_weights(tmp_path_factory.mktemp("w") / "w.pdparams")),
                      backend="dygraph")


def test_module_explain_maps_onto_the_photo_and_writes_overlays(module, tmp_path):
    imgs = [photo(0), photo(2)]
    res = module.explain(imgs, channel_order="RGB", top_k=2, out_dir=tmp_path)
    want = module.predict(imgs, top_k=2, channel_order="RGB")
    for row, img, w in zip(res, imgs, want):
        assert [e.label for e in row] == list(w)
        np.testing.assert_allclose([e.probability for e in row], list(w.values()), rtol=1e-4)
        for rank, e in enumerate(row):
            # the map's peak (1) is sampled at the nearest original pixel centre (bilinear)
            assert e.heatmap.shape == img.shape[:2] and 0.95 < e.heatmap.max() <= 1.0
            x0, y0, x1, y1 = crop_box(module.pipeline.preprocess_ops, *img.shape[:2])
            assert e.heatmap[:, : int(x0)].max() == 0  # outside what the network saw
            from PIL import Image

            png = np.asarray(Image.open(e.path))
            assert e.path.endswith(f"_gradcam_{rank + 1}.png") and png.shape == img.shape
            np.testing.assert_array_equal(png, e.overlay())
    # a class of the caller's choice, by name or index
    name = module.labels[5]
    by_name = module.explain([imgs[0]], channel_order="RGB", label=name)[0][0]
    by_index = module.explain([imgs[0]], channel_order="RGB", label=5)[0][0]
    assert by_name.label == by_index.label == name and by_name.class_index == 5
    np.testing.assert_array_equal(by_name.heatmap, by_index.heatmap)
    with pytest.raises(ConfigError, match="unknown class"):
        module.explain([imgs[0]], label="no such class")
    with pytest.raises(ConfigError, match="class index 1000 out of range"):
        module.explain([imgs[0]], label=1000)
    with pytest.raises(ConfigError, match="stage 9 out of range"):
        module.explain([imgs[0]], stage=9)


def test_explain_cli(tmp_path):
    w = write_weights(tmp_path / "w.pdparams")
    imgs = [tmp_path / "cat.jpg", tmp_path / "more" / "cat.jpg"]  # one name twice: no overlay overwrites another
    imgs[1].parent.mkdir()
    for i, img in enumerate(imgs):
        img.write_bytes(jpeg_bytes(photo(2 + i)))
    r = subprocess.run([sys.executable, "-m", "hubcls", "explain", *map(str, imgs), "-m", "MobileNetV3_small_x0_35",
                        "--weights", str(w), "-o", str(tmp_path / "cams"), "--top-k", "2"],
                       capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 and all(str(tmp_path / "cams") in line for line in lines)
    assert sorted(p.name for p in (tmp_path / "cams").iterdir()) == [
        "cat-2_gradcam_1.png", "cat-2_gradcam_2.png", "cat_gradcam_1.png", "cat_gradcam_2.png"]


def test_demo_sample_renders_the_saved_image_again_with_its_mask(tmp_path):
    """The localisation measure's ground truth: demo_sample(c, k) is the saved file (before JPEG) and
    its mask covers the object (the object's colour differs from the background's)."""
    from PIL import Image

    from hubcls.data.demo import CLASSES, demo_sample, make_demo_dataset

    make_demo_dataset(tmp_path, num_classes=3, train_per_class=2, val_per_class=1)
    for c, k in [(0, 0), (1, 2), (2, 1)]:
        img, mask = demo_sample(c, k, num_classes=3)
        saved = np.asarray(Image.open(tmp_path / "images" / CLASSES[c] / f"{k:04d}.jpg").convert("RGB"))
        assert img.shape == saved.shape and mask.shape == img.shape[:2]
        assert np.abs(img.astype(np.float32) - saved).mean() < 3.0  # JPEG q90 error only
        other, _ = demo_sample(c, k + 1, num_classes=3)
        assert other.shape != img.shape or np.abs(other.astype(np.float32) - saved).mean() > 10
        assert 0.02 < (mask > 0.5).mean() < 0.9 and mask.min() >= 0 and mask.max() <= 1


@pytest.mark.slow
def test_grad_cam_finds_the_object_on_the_trained_quickstart_model(tmp_path):
    """benchmarks/gradcam_localisation.py: train the quick-start recipe, then on its 60 validation
    images (object masks known) the heatmap's mass inside the object beats chance (a map with no
    information: the object's share of the crop), on most images."""
    out = tmp_path / "gradcam.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gradcam_localisation.py"), "--json", str(out)],
                       capture_output=True, text=True, timeout=1500, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    print(r.stdout)
    res = json.loads(out.read_text())
    default = next(x for x in res["scenes"]["val"] if x["stage"] is None)
    assert default["accuracy"] > 0.6  # the model learned the task
    assert default["energy_in_object"] > default["chance"] + 0.03
    assert default["wins_vs_chance"] > 0.7 and default["p_vs_chance"] < 1e-3
