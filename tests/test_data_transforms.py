"""Transform pipelines: fused == op-by-op == PaddleClas's own ops; layout-aware erasing; the
AutoAugment/RandAugment tables; batch ops; registry and config errors."""
import numpy as np
import pytest

from hubcls.data import AUGMENTERS, build_transforms, eval_transforms_for
from hubcls.data.demo import render_sample
from hubcls.data.rng import sample_rng
from hubcls.errors import ConfigError

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
NORM = {"NormalizeImage": {"scale": "1.0/255.0", "mean": MEAN, "std": STD, "order": ""}}
EVAL_OPS = [{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}}, NORM, {"ToCHWImage": None}]
TRAIN_OPS = [{"RandCropImage": {"size": 224}}, {"RandFlipImage": {"flip_code": 1}}, NORM, {"ToCHWImage": None}]
# one level of the uint8 image after normalisation, plus cv2's fixed-point rounding of its resize
TOL = 1.5 / 255 / min(STD)


def photos(shapes=((300, 400), (257, 256), (500, 333), (180, 240)), seed=0):
    rng = np.random.default_rng(seed)
    return [_photo(rng, *s) for s in shapes]


def _photo(rng, h, w):
    import cv2

    img = render_sample("star", rng, size_range=(96, 96))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)


def rngs(n, epoch=0, seed=0):
    return [sample_rng(seed, epoch, i) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# fusion
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ops", [EVAL_OPS, TRAIN_OPS], ids=["eval", "train"])
def test_fused_pipeline_equals_op_by_op(ops):
    imgs = photos()
    fused = build_transforms(ops)
    plain = build_transforms(ops, fuse=False)
    assert fused.stages[0].fused and len(fused.stages) == 1
    assert not any(s.fused for s in plain.stages)
    for epoch in range(3):
        a, keep_a = fused.run_batch(imgs, rngs(len(imgs), epoch))
        b, keep_b = plain.run_batch(imgs, rngs(len(imgs), epoch))
        assert keep_a == keep_b == [0, 1, 2, 3]
        assert a.shape == b.shape == (4, 3, 224, 224) and a.dtype == np.float32
        assert np.abs(a - b).max() < TOL
        assert np.abs(a - b).mean() < 0.2 * TOL


def test_fused_handles_flip_before_crop_and_hwc_output():
    ops = [{"RandFlipImage": {}}, {"CropImage": {"size": [120, 90]}}, {"ResizeImage": {"size": [64, 48]}}, NORM]
    imgs = photos()
    fused, plain = build_transforms(ops), build_transforms(ops, fuse=False)
    assert fused.describe().count("fused") == 1
    flipped = 0
    for epoch in range(4):
        a, _ = fused.run_batch(imgs, rngs(4, epoch))
        b, _ = plain.run_batch(imgs, rngs(4, epoch))
        assert a.shape == (4, 48, 64, 3)
        assert np.abs(a - b).max() < TOL
        flipped += sum(bool(sample_rng(0, epoch, i).integers(0, 2)) for i in range(4))
    assert 0 < flipped < 16  # both branches exercised


def test_two_resamples_split_into_two_fused_stages():
    ops = [{"ResizeImage": {"size": 300}}, {"RandCropImage": {"size": 96}}, NORM, {"ToCHWImage": None}]
    p = build_transforms(ops)
    assert [s.fused for s in p.stages] == [True, True]
    q = build_transforms(ops, fuse=False)
    imgs = photos()
    a, _ = p.run_batch(imgs, rngs(4))
    b, _ = q.run_batch(imgs, rngs(4))
    # two roundings to uint8 (after each resize), each within a level of cv2's
    assert np.abs(a - b).max() < 2.5 / 255 / min(STD)
    assert np.abs(a - b).mean() < 0.2 * TOL


def test_unfusable_ops_run_per_sample():
    ops = [{"RandCropImage": {"size": 64}}, {"AutoAugment": {}}, NORM, {"ToCHWImage": None},
           {"RandFlipImage": {"flip_code": 0}}]
    p = build_transforms(ops)
    assert [s.fused for s in p.stages] == [True, False, True, False]
    out = p(photos()[0], sample_rng(0, 0, 0))
    assert out.shape == (3, 64, 64) and out.dtype == np.float32
    again = p(photos()[0], sample_rng(0, 0, 0))
    np.testing.assert_array_equal(out, again)


def test_output_spec_and_decode(tmp_path):
    from PIL import Image

    img = photos()[0]
    Image.fromarray(img).save(tmp_path / "x.png")
    p = build_transforms([{"DecodeImage": {"to_rgb": True}}] + EVAL_OPS)
    assert p.static_output_spec() == ((3, 224, 224), "float32")
    from_path = p(str(tmp_path / "x.png"))
    from_array = p(img)
    np.testing.assert_array_equal(from_path, from_array)
    bgr = build_transforms([{"DecodeImage": {"to_rgb": False}}] + EVAL_OPS, fuse=False)(str(tmp_path / "x.png"))
    assert not np.allclose(bgr, from_array)


# ---------------------------------------------------------------------------------------------
# against PaddleClas's own ops (pip paddleclas: deploy/python/preprocess.py)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ppcls_ops():
    return pytest.importorskip("paddleclas.deploy.python.preprocess")


class _RandomFromGenerator:
    """Stands in for the `random` module inside PaddleClas's ops, fed by a numpy Generator in the
    same call order as hubcls's draws — so both make the same random decisions."""

    def __init__(self, rng):
        self.rng = rng

    def uniform(self, a, b):
        return self.rng.uniform(a, b)

    def randint(self, a, b):
        return int(self.rng.integers(a, b + 1))


def test_eval_pipeline_matches_paddleclas(ppcls_ops):
    ops = ppcls_ops.create_operators([{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
                                      {"NormalizeImage": {"scale": 1 / 255.0, "mean": MEAN, "std": STD, "order": ""}},
                                      {"ToCHWImage": None}])
    ours = build_transforms(EVAL_OPS)
    for img in photos():
        ref = img
        for op in ops:
            ref = op(ref)
        out = ours(img)
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() < TOL


def test_train_pipeline_matches_paddleclas_given_same_draws(ppcls_ops, monkeypatch):
    crop = ppcls_ops.RandCropImage(size=224)
    flip = ppcls_ops.RandFlipImage(flip_code=1)
    norm = ppcls_ops.NormalizeImage(scale=1 / 255.0, mean=MEAN, std=STD, order="")
    ours = build_transforms(TRAIN_OPS)
    for epoch in range(3):
        for i, img in enumerate(photos()):
            monkeypatch.setattr(ppcls_ops, "random", _RandomFromGenerator(sample_rng(0, epoch, i)))
            ref = norm(flip(crop(img))).transpose(2, 0, 1)
            out = ours(img, sample_rng(0, epoch, i))
            assert np.abs(out - ref).max() < TOL


# ---------------------------------------------------------------------------------------------
# eval transforms from a model's pretrained config
# ---------------------------------------------------------------------------------------------
def test_eval_transforms_for_pretrained_cfg():
    from hubcls.models._pretrained import PretrainedCfg

    cfg = PretrainedCfg(name="X", arch="X", input_size=192, resize_short=220, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    p = eval_transforms_for(cfg)
    names = [type(o).__name__ for o in p.ops]
    assert names == ["ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage"]
    assert p.stages[0].fused
    img = photos()[1]
    out = p(img)
    assert out.shape == (3, 192, 192)
    ref = build_transforms([{"ResizeImage": {"resize_short": 220}}, {"CropImage": {"size": 192}},
                            {"NormalizeImage": {"mean": [0.5] * 3, "std": [0.5] * 3, "order": ""}},
                            {"ToCHWImage": None}], fuse=False)(img)
    assert np.abs(out - ref).max() < 1.5 / 255 / 0.5
    batch = p.batch(photos())
    assert batch.shape == (4, 3, 192, 192)


# ---------------------------------------------------------------------------------------------
# erasing ops handle the layout they are given
# ---------------------------------------------------------------------------------------------
ERASERS = [
    {"Cutout": {"n_holes": 2, "length": 40}},
    {"RandomErasing": {"EPSILON": 1.0, "sl": 0.05, "sh": 0.3, "mode": "pixel"}},
    {"RandomErasing": {"EPSILON": 1.0, "mode": "const", "mean": [1.0, 2.0, 3.0]}},
    {"HideAndSeek": {}},
    {"GridMask": {"d1": 24, "d2": 60, "prob": 1.0, "num_epochs": 0}},
]


@pytest.mark.parametrize("cfg", ERASERS, ids=lambda c: next(iter(c)))
def test_erasers_same_result_in_hwc_and_chw(cfg):
    # non-square on purpose: PaddleClas's HideAndSeek/GridMask swap the axes on HWC input
    img = np.random.default_rng(0).normal(size=(96, 160, 3)).astype(np.float32)
    hwc = build_transforms([cfg], fuse=False)
    chw = build_transforms([{"ToCHWImage": None}, cfg], fuse=False)
    changed = 0
    for i in range(6):
        a = hwc(img.copy(), sample_rng(1, 0, i))
        b = chw(img.copy(), sample_rng(1, 0, i))
        assert a.shape == img.shape and b.shape == (3, 96, 160)
        np.testing.assert_array_equal(a, b.transpose(1, 2, 0))
        changed += not np.array_equal(a, img)
        # float64 takes the plain NumPy path, float32 hubcls.ops's fill kernels: same result
        c = hwc(img.astype(np.float64), sample_rng(1, 0, i))
        np.testing.assert_allclose(c, a, rtol=1e-6, atol=1e-6)
    assert changed > 0


def test_random_erasing_area_and_value():
    op = build_transforms([{"ToCHWImage": None}, {"RandomErasing": {"EPSILON": 1.0, "sl": 0.1, "sh": 0.2,
                                                                      "mean": [5.0, 6.0, 7.0]}}], fuse=False)
    img = np.zeros((100, 120, 3), np.float32)
    for i in range(10):
        out = op(img, sample_rng(0, 0, i))
        erased = out[0] == 5.0
        assert 0.1 * 12000 * 0.9 <= erased.sum() <= 0.2 * 12000 * 1.1
        assert np.all(out[1][erased] == 6.0) and np.all(out[2][erased] == 7.0)
        ys, xs = np.nonzero(erased)
        assert erased[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()  # one rectangle


def test_gridmask_probability_ramps_with_epoch():
    p = build_transforms([{"GridMask": {"d1": 20, "d2": 40, "prob": 1.0}}], fuse=False)  # num_epochs 240
    img = np.full((64, 64, 3), 7, np.uint8)
    np.testing.assert_array_equal(p(img, sample_rng(0, 0, 0), epoch=0), img)  # prob 0 at epoch 0
    hits = sum(not np.array_equal(p(img, sample_rng(0, 240, i), epoch=240), img) for i in range(5))
    assert hits == 5


# ---------------------------------------------------------------------------------------------
# AutoAugment / RandAugment
# ---------------------------------------------------------------------------------------------
def test_autoaugment_policy_table():
    from hubcls.data import autoaugment as aa

    assert len(aa.IMAGENET_POLICY) == 25
    ops = {op for p in aa.IMAGENET_POLICY for op in (p[1], p[4])}
    assert ops == {"posterize", "rotate", "solarize", "autocontrast", "equalize", "color", "invert",
                   "contrast", "sharpness", "shearX"}
    assert list(aa._AA_RANGES["posterize"]) == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    assert aa._AA_RANGES["rotate"][9] == 30
    lv = aa.randaugment_levels(5)
    assert lv["posterize"] == 2 and lv["rotate"] == 15 and abs(lv["translateX"] - 75 / 331) < 1e-12


def test_autoaugment_primitives_match_pil():
    from PIL import Image, ImageOps

    from hubcls.data.autoaugment import apply_primitive

    img = photos()[3]
    np.testing.assert_array_equal(apply_primitive(img, "invert", 0), 255 - img)
    np.testing.assert_array_equal(apply_primitive(img, "solarize", 100),
                                  np.where(img < 100, img, 255 - img))
    np.testing.assert_array_equal(apply_primitive(img, "posterize", 4), img & 0xF0)
    np.testing.assert_array_equal(apply_primitive(img, "equalize", 0),
                                  np.asarray(ImageOps.equalize(Image.fromarray(img))))
    rot = apply_primitive(img, "rotate", 30)
    np.testing.assert_array_equal(rot[0, 0], [128, 128, 128])  # grey fill in the corner
    sh = apply_primitive(img, "shearX", 0.3, sign=-1)
    assert np.array_equal(sh[:, :, :], apply_primitive(img, "shearX", -0.3, sign=1))


@pytest.mark.parametrize("op", ["shearX", "shearY", "translateX", "translateY", "rotate", "color", "posterize",
                                "solarize", "contrast", "sharpness", "brightness", "autocontrast", "equalize",
                                "invert"])
def test_core_primitives_equal_pillow_path(op):
    """AutoAugment/RandAugment run on hubcls.ops's kernels; PaddleClas's Pillow code is the reference."""
    from hubcls.data.autoaugment import _AA_RANGES, apply_primitive, randaugment_levels

    mags = [_AA_RANGES[op][k] for k in (0, 4, 9)] + [randaugment_levels(7)[op]]
    for img in photos()[:2]:
        for m in mags:
            for sign in (-1, 1):
                a = apply_primitive(img, op, m, sign, backend="core")
                b = apply_primitive(img, op, m, sign, backend="pil")
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cfg", [{"AutoAugment": {}}, {"RandAugment": {"num_layers": 2, "magnitude": 9}}],
                         ids=["AutoAugment", "RandAugment"])
def test_policy_augmenters_deterministic_per_sample(cfg):
    p = build_transforms([cfg])
    img = photos()[3]
    outs = [p(img, sample_rng(0, 0, i)) for i in range(12)]
    again = [p(img, sample_rng(0, 0, i)) for i in range(12)]
    for a, b in zip(outs, again):
        np.testing.assert_array_equal(a, b)
    assert sum(not np.array_equal(o, img) for o in outs) >= 6
    chw = build_transforms([{"ToCHWImage": None}, cfg])  # CHW uint8 input keeps its layout
    for i, o in enumerate(outs[:4]):
        np.testing.assert_array_equal(chw(img, sample_rng(0, 0, i)), o.transpose(2, 0, 1))
    with pytest.raises(ConfigError, match="uint8 images"):
        build_transforms([NORM, cfg])(img)


# ---------------------------------------------------------------------------------------------
# batch ops
# ---------------------------------------------------------------------------------------------
def test_mixup_and_cutmix():
    from hubcls.data.transforms import build_batch_transforms

    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(6, 3, 20, 30)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 0])
    mix = build_batch_transforms([{"MixupOperator": {"alpha": 0.4}}], class_num=5)
    out, t = mix(imgs.copy(), labels, np.random.default_rng(7))
    assert t.shape == (6, 5) and np.allclose(t.sum(1), 1)
    g = np.random.default_rng(7)
    idx = g.permutation(6)
    lam = g.beta(0.4, 0.4)
    np.testing.assert_allclose(out, lam * imgs + (1 - lam) * imgs[idx], rtol=1e-5, atol=1e-6)

    cut = build_batch_transforms([{"CutmixOperator": {"alpha": 1.0}}], class_num=5)
    o1, t1 = cut(imgs.copy(), labels, np.random.default_rng(3), layout="CHW")
    o2, t2 = cut(imgs.transpose(0, 2, 3, 1).copy(), labels, np.random.default_rng(3), layout="HWC")
    np.testing.assert_array_equal(o1, o2.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(t1, t2)
    from hubcls.data.transforms import CutmixOperator

    g = np.random.default_rng(3)
    idx = g.permutation(6)
    lam = g.beta(1.0, 1.0)
    y1, y2, x1, x2 = CutmixOperator.rand_bbox(20, 30, lam, g)
    expect = imgs.copy()
    expect[:, :, y1:y2, x1:x2] = imgs[idx][:, :, y1:y2, x1:x2]
    np.testing.assert_array_equal(o1, expect)
    lam_area = 1 - (y2 - y1) * (x2 - x1) / 600
    onehot = np.eye(5, dtype=np.float32)[labels]
    np.testing.assert_allclose(t1, lam_area * onehot + (1 - lam_area) * onehot[idx], atol=1e-6)
    # float64 batches take the NumPy path, float32 hubcls.ops's kernels: same mixing
    o64, t64 = mix(imgs.astype(np.float64), labels, np.random.default_rng(7))
    np.testing.assert_allclose(o64, out, rtol=1e-5, atol=1e-5)
    c64, _ = cut(imgs.astype(np.float64), labels, np.random.default_rng(3), layout="CHW")
    np.testing.assert_array_equal(c64.astype(np.float32), o1)
    with pytest.raises(ConfigError, match="alpha"):
        build_batch_transforms([{"MixupOperator": {"alpha": 0}}], class_num=5)


# ---------------------------------------------------------------------------------------------
# registry, plugins, config errors
# ---------------------------------------------------------------------------------------------
def test_registry_has_every_paddleclas_op():
    for name in ["DecodeImage", "ResizeImage", "CropImage", "RandCropImage", "RandFlipImage", "NormalizeImage",
                 "ToCHWImage", "AutoAugment", "RandAugment", "Cutout", "RandomErasing", "HideAndSeek", "GridMask"]:
        assert name in AUGMENTERS
    assert AUGMENTERS.get("randcropimage") is AUGMENTERS.get("RandCropImage")


def test_foreign_callable_augmenter_is_reproducible():
    import random

    class Jitter:  # PaddleClas-style op: global RNGs, HWC uint8 in and out
        def __init__(self, amount=10):
            self.amount = amount

        def __call__(self, img):
            return np.clip(img.astype(int) + random.randint(-self.amount, self.amount)
                           + np.random.randint(0, 3), 0, 255).astype(np.uint8)

    AUGMENTERS.register(Jitter, name="TestJitterAug", force=True)
    p = build_transforms([{"TestJitterAug": {"amount": 50}}, NORM])
    img = photos()[0]
    a = [p(img, sample_rng(0, 0, i)) for i in range(6)]
    b = [p(img, sample_rng(0, 0, i)) for i in range(6)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert len({x.tobytes() for x in a}) >= 3


@pytest.mark.parametrize("ops, match", [
    ([{"NoSuchOp": {}}], r"transform_ops\[0\].*unknown augmenter 'NoSuchOp'"),
    ([{"RandCropImage": {"sizes": 3}}], r"transform_ops\[0\]\.RandCropImage: bad parameters"),
    ([{"RandFlipImage": {"flip_code": 2}}], "flip_code"),
    (["ResizeImage"], "one-key mapping"),
    ([{"ResizeImage": {}}], "size.*resize_short"),
    ([{"ResizeImage": {"size": 10, "interpolation": "cubic-ish"}}], "interpolation"),
    ([{"RandomErasing": {"mode": "weird"}}], "mode"),
])
def test_config_errors_name_the_op(ops, match):
    with pytest.raises(ConfigError, match=match):
        build_transforms(ops)


def test_crop_larger_than_image_is_a_sample_error():
    from hubcls.data.transforms import SampleError

    p = build_transforms([{"CropImage": {"size": 500}}, NORM])
    with pytest.raises(SampleError, match="larger than the image"):
        p(photos()[0])
    out, keep = p.run_batch([photos()[0]], rngs(1), on_error="skip")
    assert keep == [] and len(p.errors) == 1


def test_decode_reduce_option_for_eval(tmp_path):
    import cv2
    from PIL import Image

    big = cv2.resize(photos()[0], (1200, 900), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, "JPEG", quality=92)
    ops = [{"ResizeImage": {"resize_short": 128, "interpolation": "area"}}, {"CropImage": {"size": 112}}, NORM,
           {"ToCHWImage": None}]
    fast = build_transforms([{"DecodeImage": {"reduce": True}}] + ops)
    full = build_transforms([{"DecodeImage": {}}] + ops)
    assert fast.decode.reduce_to == 128 and full.decode.reduce_to is None
    a, b = fast(str(path)), full(str(path))
    assert a.shape == b.shape == (3, 112, 112)
    assert np.abs(a - b).mean() < 2.0 / 255 / min(STD)  # 1/4-scale DCT decode ~ full decode + area resize


def test_geometric_ops_on_chw_input():
    img = photos()[0]
    chw_first = build_transforms([{"ToCHWImage": None}, {"RandCropImage": {"size": 64}}, {"RandFlipImage": {}},
                                  {"ResizeImage": {"size": [40, 30]}}])
    hwc_first = build_transforms([{"RandCropImage": {"size": 64}}, {"RandFlipImage": {}},
                                  {"ResizeImage": {"size": [40, 30]}}], fuse=False)
    for i in range(4):
        a = chw_first(img, sample_rng(0, 0, i))
        b = hwc_first(img, sample_rng(0, 0, i))
        assert a.shape == (3, 30, 40)
        np.testing.assert_array_equal(a, b.transpose(2, 0, 1))


# ---------------------------------------------------------------------------------------------
# ColorJitter / PCALighting (PaddleClas's ResNet18_dbb config): paddle.vision's functional ops on
# Pillow images are the reference PaddleClas's ColorJitter runs.
@pytest.mark.parametrize("kind,factor", [("brightness", 1.3), ("brightness", 0.2), ("contrast", 0.7),
                                         ("saturation", 1.4), ("saturation", 0.0), ("hue", 0.23), ("hue", -0.4)])
def test_color_jitter_steps_equal_paddle_vision(kind, factor):
    import paddle.vision.transforms.functional as TF
    from PIL import Image

    from hubcls.data.transforms import ColorJitter

    img = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    ref = {"brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast,
           "saturation": TF.adjust_saturation, "hue": TF.adjust_hue}[kind](Image.fromarray(img), factor)
    np.testing.assert_array_equal(ColorJitter.run_steps(img, [(kind, factor)]), np.asarray(ref))


def test_color_jitter_draws_every_factor_in_range_in_random_order():
    import paddle.vision.transforms.functional as TF
    from PIL import Image

    from hubcls.data.transforms import ColorJitter
    from hubcls.data.transforms._base import Context

    op = AUGMENTERS.build("ColorJitter", dict(brightness=0.4, hue=0.4, saturation=0.4), where="t")
    orders, fns = set(), {"brightness": TF.adjust_brightness, "saturation": TF.adjust_saturation, "hue": TF.adjust_hue}
    img = (np.random.default_rng(1).random((24, 20, 3)) * 255).astype(np.uint8)
    for seed in range(12):
        steps = op.draw(np.random.default_rng(seed))
        assert sorted(k for k, _ in steps) == ["brightness", "hue", "saturation"]
        factors = dict(steps)
        assert 0.6 <= factors["brightness"] <= 1.4 and 0.6 <= factors["saturation"] <= 1.4
        assert -0.4 <= factors["hue"] <= 0.4
        orders.add(tuple(k for k, _ in steps))
        ref = Image.fromarray(img)
        for k, f in steps:  # paddle.vision's ColorJitter with the same draws, in the same order
            ref = fns[k](ref, f)
        got = op.apply(img, np.random.default_rng(seed), Context())
        np.testing.assert_array_equal(got, np.asarray(ref))
        chw = op.apply(np.ascontiguousarray(img.transpose(2, 0, 1)), np.random.default_rng(seed), Context(layout="CHW"))
        np.testing.assert_array_equal(chw.transpose(1, 2, 0), got)
    assert len(orders) > 1  # the order is random
    assert ColorJitter(brightness=0.5, prob=0.0).draw(np.random.default_rng(0)) == []
    with pytest.raises(ConfigError, match="hue"):
        ColorJitter(hue=0.7)
    with pytest.raises(ConfigError, match="contrast"):
        ColorJitter(contrast=-1)


def test_pca_lighting_is_paddleclas_formula():
    """PaddleClas: alpha ~ N(0, 0.1); rgb = (eigvec * alpha * eigval).sum(1), added per channel."""
    from hubcls.data.transforms import PCALighting
    from hubcls.data.transforms._base import Context

    op = AUGMENTERS.build("PCALighting", None, where="t")
    img = (np.random.default_rng(2).random((9, 7, 3)) * 255).astype(np.uint8)
    out = op.apply(img, np.random.default_rng(5), Context())
    alpha = np.random.default_rng(5).normal(0.0, 0.1, 3).astype(np.float32)
    eigval = np.array(PCALighting.EIGVAL, np.float32)
    eigvec = np.array(PCALighting.EIGVEC, np.float32)
    rgb = (eigvec * np.broadcast_to(alpha.reshape(1, 3), (3, 3)) * np.broadcast_to(eigval.reshape(1, 3), (3, 3))).sum(1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, img.astype(np.float32) + rgb.reshape(1, 1, 3), rtol=0, atol=1e-5)
    chw = op.apply(np.ascontiguousarray(img.transpose(2, 0, 1)), np.random.default_rng(5), Context(layout="CHW"))
    np.testing.assert_allclose(chw.transpose(1, 2, 0), out, atol=1e-6)


def test_dbb_config_train_pipeline_runs():
    """ResNet18_dbb.yaml's train ops (RandCrop, flip, ColorJitter, PCALighting, Normalize) end to end."""
    ops = [{"DecodeImage": {"to_rgb": True, "channel_first": False}},
           {"RandCropImage": {"size": 32, "interpolation": "bilinear", "backend": "pil"}},
           {"RandFlipImage": {"flip_code": 1}},
           {"ColorJitter": {"brightness": 0.4, "hue": 0.4, "saturation": 0.4}},
           {"PCALighting": None},
           {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "order": ""}},
           {"ToCHWImage": None}]
    pipe = build_transforms(ops)
    img = (np.random.default_rng(3).random((48, 40, 3)) * 255).astype(np.uint8)
    out = pipe(img, sample_rng(0, 1, 0))
    assert out.shape == (3, 32, 32) and out.dtype == np.float32 and np.isfinite(out).all()


def test_pca_lighting_float_output_is_not_fused_with_normalize():
    """The fused resize/normalise kernel takes uint8: after PCALighting's float image the pipeline
    normalises op by op, with PaddleClas's arithmetic ((x + noise) * scale - mean) / std."""
    from hubcls.data.transforms import PCALighting

    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    ops = [{"ResizeImage": {"size": [20, 16]}}, {"PCALighting": None},
           {"NormalizeImage": {"scale": "1.0/255.0", "mean": mean.tolist(), "std": std.tolist(), "order": ""}},
           {"ToCHWImage": None}]
    pipe = build_transforms(ops)
    assert "per-sample [PCALighting -> NormalizeImage -> ToCHWImage]" in pipe.describe()
    img = (np.random.default_rng(4).random((16, 20, 3)) * 255).astype(np.uint8)  # already 20x16: no resample
    out = pipe(img, sample_rng(0, 2, 0))
    noise = PCALighting().noise(sample_rng(0, 2, 0))
    want = ((img.astype(np.float32) + noise.reshape(1, 1, 3)) / 255.0 - mean) / std
    np.testing.assert_allclose(out, want.transpose(2, 0, 1), rtol=0, atol=1e-5)
    assert build_transforms(ops[:2]).static_output_spec() == ((16, 20, 3), "float32")
