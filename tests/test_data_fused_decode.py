"""Compiled pipelines decode JPEGs only where the crop needs them (hubcls.data.fused_decode): same
draws, same pixels as full decode with ``scaled_decode: false``, the same errors and skip policy,
and the OpenCV/Pillow path as before when the decoder is switched off."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from hubcls.data import build_dataloader, read_image
from hubcls.data.decode import JpegSource, read_image_or_jpeg
from hubcls.data.fused_decode import ENV_SCALED_DECODE
from hubcls.data.rng import sample_rng
from hubcls.data.transforms import build_transforms
from hubcls.errors import ImageDecodeError
from hubcls.ops import jpeg as J
from tests._ops_images import photos

pytestmark = pytest.mark.skipif(not J.jpeg_decoder_available(), reason="core built without libjpeg-turbo")

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
NORM = {"NormalizeImage": {"scale": 1 / 255, "mean": MEAN, "std": STD, "order": ""}}


def train_ops(size=224, **decode):
    return [{"DecodeImage": {"to_rgb": True, "channel_first": False, **decode}}, {"RandCropImage": {"size": size}},
            {"RandFlipImage": {"flip_code": 1}}, NORM, {"ToCHWImage": None}]


def eval_ops(short=256, size=224, **decode):
    return [{"DecodeImage": {"to_rgb": True, **decode}}, {"ResizeImage": {"resize_short": short}},
            {"CropImage": {"size": size}}, NORM, {"ToCHWImage": None}]


def _enc(arr, fmt="JPEG", orientation=None, **kw):
    buf = io.BytesIO()
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    img = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _no_scan(jpeg: bytes) -> bytes:
    """A JPEG whose header parses (frame, tables, EOI) but that has no scan: no decoder accepts it."""
    return jpeg[:jpeg.index(b"\xff\xda")] + b"\xff\xd9"


@pytest.fixture(scope="module")
def items():
    p = photos()
    gray = cv2.cvtColor(p[1], cv2.COLOR_RGB2GRAY)
    return [
        _enc(p[0], quality=90),
        _enc(p[1], orientation=6, quality=88),           # EXIF-rotated: drawn and cut in displayed coordinates
        _enc(gray, quality=90),
        _enc(p[2], quality=85, progressive=True),
        _enc(p[3], "PNG"),                                # PNG: the general path, in the same batch
        _enc(Image.fromarray(p[0]).convert("CMYK"), quality=90),  # CMYK JPEG: not a plain JPEG -> Pillow
        _enc(p[3], quality=75, subsampling=1),
    ]


def _run(pipe, items, monkeypatch, *, decoder=True, seed=0, on_error="raise"):
    if decoder:
        monkeypatch.delenv(J.ENV_DISABLE, raising=False)
    else:
        monkeypatch.setenv(J.ENV_DISABLE, "0")
    pipe.errors = []
    out, keep = pipe.run_batch(items, [sample_rng(seed, 3, i) for i in range(len(items))], on_error=on_error)
    return np.array(out), keep, [(e.source, e.reason) for e in pipe.errors]


@pytest.mark.parametrize("ops", [train_ops(scaled_decode=False), eval_ops(scaled_decode=False),
                                 train_ops(size=96, to_rgb=False, scaled_decode=False),
                                 eval_ops(short=160, size=128, scaled_decode=False)[:3]],  # uint8 HWC output
                         ids=["train", "eval", "train-bgr", "eval-uint8"])
def test_crop_aware_decode_equals_full_decode(ops, items, monkeypatch):
    pipe = build_transforms(ops)
    assert pipe._defer_jpeg
    a, ka, _ = _run(pipe, items, monkeypatch, decoder=True)
    b, kb, _ = _run(pipe, items, monkeypatch, decoder=False)
    assert ka == kb == list(range(len(items)))
    np.testing.assert_array_equal(a, b)


def test_deferred_sources_and_what_stays_eager(items):
    got = [read_image_or_jpeg(d) for d in items]
    assert [type(g).__name__ for g in got] == ["JpegSource"] * 4 + ["ndarray", "ndarray", "JpegSource"]
    rotated = got[1]
    assert rotated.orientation == 6 and rotated.shape == read_image(items[1]).shape  # displayed size
    with pytest.raises(ImageDecodeError, match="truncated"):  # no EOI: the general path, which refuses it
        read_image_or_jpeg(items[0][:-300])
    with pytest.raises(ImageDecodeError, match="more than the limit"):
        read_image_or_jpeg(items[0], max_pixels=1000)


def test_scaled_decode_on_large_photos(monkeypatch):
    big = [_enc(cv2.resize(p, (1600, 1200), interpolation=cv2.INTER_CUBIC), quality=90) for p in photos()[:2]]
    pipe = build_transforms(eval_ops())
    exact = build_transforms(eval_ops(scaled_decode=False))
    monkeypatch.delenv(ENV_SCALED_DECODE, raising=False)
    a, _, _ = _run(pipe, big, monkeypatch)
    b, _, _ = _run(exact, big, monkeypatch)
    c, _, _ = _run(pipe, big, monkeypatch, decoder=False)
    np.testing.assert_array_equal(b, c)  # without DCT scaling: full decode's pixels
    diff = np.abs(a - b) * 255 * 0.226  # back to 0..255 units
    assert 0 < diff.mean() < 3.0, diff.mean()  # DCT-scaled: close, not equal
    monkeypatch.setenv(ENV_SCALED_DECODE, "0")  # the environment switch
    d, _, _ = _run(pipe, big, monkeypatch)
    np.testing.assert_array_equal(d, b)


def test_bad_files_skip_and_raise_like_full_decode(items, monkeypatch):
    good = items[0]
    batch = [good, _no_scan(good), b"not an image", good[: len(good) // 2] + b"\xff\xd9", items[2],
             good[: len(good) * 2 // 3]]
    pipe = build_transforms(train_ops(scaled_decode=False))
    a, ka, ea = _run(pipe, batch, monkeypatch, on_error="skip")
    b, kb, eb = _run(pipe, batch, monkeypatch, decoder=False, on_error="skip")
    assert ka == kb and sorted(ea) == sorted(eb)  # (found at decode vs at the fused stage: order differs)
    assert ka == [0, 3, 4] and len(ea) == 3  # the EOI-glued cut decodes (OpenCV accepts it), as before
    np.testing.assert_array_equal(a, b)  # the batch is compacted around the dropped samples
    with pytest.raises(ImageDecodeError) as exc:
        _run(pipe, batch[:2], monkeypatch)
    assert exc.value.source == "<bytes len=%d>" % len(batch[1])


def test_refused_jpeg_with_another_size_is_drawn_again(items, monkeypatch):
    """A JPEG libjpeg refuses goes through read_image; if that gives another size than the header
    said, the sample's crop is drawn again from the real size (same generator state as eager)."""
    good = items[0]
    m = len(good) // 3
    stray = good[:m] + b"\xff\xd5" + good[m:]  # libjpeg warns (-> refused); OpenCV decodes it anyway
    real = read_image(stray)
    other = np.ascontiguousarray(real[:300, :420])
    monkeypatch.setattr(JpegSource, "decode", lambda self: other)
    pipe = build_transforms(train_ops(size=64, scaled_decode=False))
    a, keep, _ = _run(pipe, [stray, good], monkeypatch)
    ref = pipe.run_batch([other, real], [sample_rng(0, 3, i) for i in range(2)])[0]
    np.testing.assert_array_equal(a[0], ref[0])
    assert keep == [0, 1]


def test_header_that_disagrees_with_libjpeg_falls_back(items, monkeypatch):
    """Geometry drawn from a header libjpeg does not confirm never fails the batch: the sample is
    decoded the general way and its crop drawn again from the real size."""
    from dataclasses import replace

    import hubcls.data.decode as D

    real = D._plain_jpeg

    def lying(data):  # width and height swapped
        h = real(data)
        return None if h is None else replace(h, height=h.width, width=h.height)

    pipe = build_transforms(train_ops(size=64, scaled_decode=False))
    batch = [items[0], items[6]]
    b, _, _ = _run(pipe, batch, monkeypatch, decoder=False)
    monkeypatch.setattr(D, "_plain_jpeg", lying)
    assert read_image_or_jpeg(items[0]).shape[:2] == read_image(items[0]).shape[1::-1]
    a, keep, errors = _run(pipe, batch, monkeypatch)
    assert keep == [0, 1] and errors == []
    np.testing.assert_array_equal(a, b)


def test_loader_uses_it_and_workers_agree(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(10):
        p = photos()[i % len(photos())]
        (tmp_path / f"{i}.jpg").write_bytes(_enc(p, quality=int(rng.integers(80, 95)), orientation=(i % 8) + 1))
        lines.append(f"{i}.jpg {i % 3}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")

    def cfg(workers, **decode):
        return {"DataLoader": {"Train": {
            "dataset": {"name": "ImageNetDataset", "image_root": str(tmp_path), "cls_label_path": str(tmp_path / "list.txt"),
                        "transform_ops": train_ops(size=128, **decode)},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": 4, "shuffle": True},
            "loader": {"num_workers": workers}}}}

    def batches(c, decoder=True):
        if decoder:
            monkeypatch.delenv(J.ENV_DISABLE, raising=False)
        else:
            monkeypatch.setenv(J.ENV_DISABLE, "0")
        with build_dataloader(c, "Train", seed=3) as dl:
            dl.set_epoch(1)
            return [(b["index"], b["image"]) for b in dl]

    exact = batches(cfg(0, scaled_decode=False))
    eager = batches(cfg(0, scaled_decode=False), decoder=False)
    workers = batches(cfg(1, scaled_decode=False))
    for (i0, x0), (i1, x1), (i2, x2) in zip(exact, eager, workers):
        np.testing.assert_array_equal(i0, i1)
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(i0, i2)
        np.testing.assert_array_equal(x0, x2)


def test_prediction_pipeline_decodes_jpegs_fused(items, monkeypatch):
    """hub.Module / Predictor / serve: encoded JPEGs reach the fused decode (same batch as decoding
    them whole, with scaled_decode off); decode() still returns arrays; a JPEG whose compressed data
    no decoder accepts is that image's error."""
    from hubcls.deploy.pipeline import PredictionError, PredictionPipeline

    ops = eval_ops()[1:]  # the prediction pipeline decodes itself: no DecodeImage
    batches = []

    def backend(x):
        batches.append(x.copy())
        return np.zeros((len(x), 2), np.float32)

    pp = PredictionPipeline(backend, ops, ["a", "b"], (3, 224, 224))
    broken = _no_scan(items[0])
    inputs = [items[0], items[1], broken, items[4]]
    assert [type(d).__name__ for d in pp.decode(inputs)] == ["ndarray", "ndarray", "PredictionError", "ndarray"]
    assert type(pp.decode(inputs, defer_jpeg=True)[0]).__name__ == "JpegSource"
    monkeypatch.setenv(ENV_SCALED_DECODE, "0")
    fused = pp.predict(inputs, batch_size=4, on_error="return")
    monkeypatch.setenv(J.ENV_DISABLE, "0")
    eager = pp.predict(inputs, batch_size=4, on_error="return")
    assert isinstance(fused[2], PredictionError) and isinstance(eager[2], PredictionError)
    assert fused[2].reason == eager[2].reason
    np.testing.assert_array_equal(batches[-2], batches[-1])
    with pytest.raises(ImageDecodeError):
        pp.predict(inputs)
