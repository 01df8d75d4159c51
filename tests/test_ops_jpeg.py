"""hubcls.ops.jpeg_decode_resize (libjpeg-turbo, crop-aware and DCT-scaled) against its references:
full decode (read_image / OpenCV) + resize_crop_normalize, and OpenCV's own DCT-reduced decode."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from hubcls import ops
from hubcls.data import read_image
from hubcls.ops import jpeg as J
from hubcls.ops import reference, resize_crop_normalize
from tests._ops_images import photos

pytestmark = pytest.mark.skipif(not J.jpeg_decoder_available(), reason="core built without libjpeg-turbo")


def _jpeg(arr, orientation=None, **kw) -> bytes:
    buf = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    Image.fromarray(arr).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _random_crop(rng, W, H):
    cw, ch = int(rng.integers(8, W + 1)), int(rng.integers(8, H + 1))
    cx, cy = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
    bw, bh = rng.uniform(1, cw), rng.uniform(1, ch)
    return [cx, cy, cw, ch], [rng.uniform(0, cw - bw), rng.uniform(0, ch - bh), bw, bh]


ENCODINGS = {
    "420": dict(quality=90),
    "422": dict(quality=90, subsampling=1),
    "444": dict(quality=90, subsampling=0),
    "progressive": dict(quality=85, progressive=True),
}


@pytest.mark.parametrize("enc", sorted(ENCODINGS))
def test_unscaled_equals_full_decode_then_kernel(enc):
    """max_scale_denom=1: decoding only the crop's rows/columns gives exactly full decode + the kernel,
    for random clips/boxes, every filter, both sampling conventions, flips."""
    rng = np.random.default_rng(1)
    for photo in photos()[:2]:
        data = _jpeg(photo, **ENCODINGS[enc])
        full = read_image(data)
        H, W = full.shape[:2]
        for t in range(12):
            clip, box = _random_crop(rng, W, H)
            cx, cy, cw, ch = clip
            flip = bool(t % 2)
            for interp in ("bilinear", "bicubic", "area", "nearest"):
                aa = bool(rng.integers(0, 2))
                ref = resize_crop_normalize([full[cy:cy + ch, cx:cx + cw]], [box], (40, 56), flip=[flip],
                                            interpolation=interp, antialias=aa)
                out, rep = J.jpeg_decode_resize([data], [clip], [box], (40, 56), flip=[flip], interpolation=interp,
                                                antialias=aa, max_scale_denom=1)
                assert rep.status.tolist() == [0] and rep.scale_denom.tolist() == [1]
                np.testing.assert_array_equal(out, ref, err_msg=f"{enc} clip={clip} box={box} {interp} aa={aa}")


def test_decodes_only_the_needed_region():
    photo = photos()[0]  # 500x375
    data = _jpeg(photo, quality=90)
    out, rep = J.jpeg_decode_resize([data, data], [[300, 200, 100, 80], [0, 0, 500, 375]],
                                    [[0, 0, 100, 80], [0, 0, 500, 375]], 64, max_scale_denom=1)
    w, h = rep.decoded[0]
    assert h <= 80 + 2 and w < 500 * 0.5  # crop rows + taps; columns widened to iMCUs, far from full
    assert tuple(rep.decoded[1]) == (500, 375)


@pytest.mark.parametrize("den", [2, 4, 8])
def test_scaled_decode_equals_opencv_reduced_decode(den):
    """At DCT scale 1/d the pixels are libjpeg's reduced decode (what cv2.IMREAD_REDUCED_COLOR_d
    gives), also for a crop of it."""
    flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[den]
    photo = cv2.resize(photos()[0], (504, 376), interpolation=cv2.INTER_AREA)  # multiples of 8
    for enc in ("420", "progressive"):
        data = _jpeg(photo, **ENCODINGS[enc])
        ref = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), flag), cv2.COLOR_BGR2RGB)
        h, w = ref.shape[:2]
        kw = dict(interpolation="nearest", antialias=False, dtype="uint8", layout="NHWC")
        out, rep = J.jpeg_decode_resize([data], [[0, 0, 504, 376]], [[0, 0, 504, 376]], (h, w), **kw)
        assert rep.scale_denom.tolist() == [den]
        np.testing.assert_array_equal(out[0], ref)
        # a crop at that scale: 16 scaled pixels in, 40x20 scaled pixels wide
        out, rep = J.jpeg_decode_resize([data], [[0, 0, 504, 376]], [[16 * den, 8 * den, 40 * den, 20 * den]], (20, 40),
                                        **kw)
        assert rep.scale_denom.tolist() == [den]
        np.testing.assert_array_equal(out[0], ref[8:28, 16:56])


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_scaled_decode_matches_the_reference(orientation):
    """Random crops of a photo with odd sizes, every DCT scale, orientations that reverse either axis:
    the op equals OpenCV's reduced decode + the mapping in hubcls.ops.reference (float64 resize)."""
    rng = np.random.default_rng(orientation)
    photo = cv2.resize(photos()[1], (603, 497), interpolation=cv2.INTER_CUBIC)
    data = _jpeg(photo, orientation=orientation, quality=90)
    H, W = read_image(data).shape[:2]
    out_hw = (20, 16)
    seen = set()
    for t in range(15):
        clip, box = _random_crop(rng, W, H)
        if t % 3 == 0:
            clip, box = [0, 0, W, H], [0.0, 0.0, float(W), float(H)]
        kw = dict(interpolation=("bilinear", "area", "bicubic")[t % 3], antialias=bool(t % 2))
        out, rep = J.jpeg_decode_resize([data], [clip], [box], out_hw, orientations=[orientation], **kw)
        den = int(rep.scale_denom[0])
        expect = max([1] + [d for d in (2, 4, 8) if box[2] / d >= out_hw[1] and box[3] / d >= out_hw[0]])
        assert den == expect
        seen.add(den)
        ref = reference.jpeg_decode_resize(data, clip, box, out_hw, den, **kw)
        np.testing.assert_allclose(out[0], ref, atol=2e-4, err_msg=f"clip={clip} box={box} d={den} {kw}")
    assert seen >= {1, 2, 8}


def test_scale_is_the_largest_that_still_covers_the_output():
    photo = cv2.resize(photos()[0], (1600, 1200), interpolation=cv2.INTER_CUBIC)
    data = _jpeg(photo, quality=90)
    clip = [0, 0, 1600, 1200]
    cases = [([0, 0, 1600, 1200], 8), ([0, 0, 1000, 900], 8), ([0, 0, 1000, 800], 4), ([0, 0, 400, 400], 2),
             ([0, 0, 200, 200], 1), ([0, 0, 224, 224], 2), ([0, 0, 223, 224], 1),
             ([0, 0, 1600, 223], 1)]  # a box shorter than the output is never scaled
    for box, den in cases:
        _, rep = J.jpeg_decode_resize([data], [clip], [box], 112)
        assert rep.scale_denom.tolist() == [den], box
    _, rep = J.jpeg_decode_resize([data], [clip], [[0, 0, 1600, 1200]], 112, max_scale_denom=2)
    assert rep.scale_denom.tolist() == [2]


def test_scaled_decode_stays_close_to_full_decode():
    """DCT scaling is another low-pass filter: close to (not equal to) full decode + antialiased resize."""
    photo = cv2.resize(photos()[2], (1200, 1200), interpolation=cv2.INTER_CUBIC)
    data = _jpeg(photo, quality=90)
    full = read_image(data)
    box = [[100.0, 50.0, 900.0, 1000.0]]
    clip = [[0, 0, 1200, 1200]]
    ref = resize_crop_normalize([full], box, 224, antialias=True, dtype="uint8", layout="NHWC")
    out, rep = J.jpeg_decode_resize([data], clip, box, 224, antialias=True, dtype="uint8", layout="NHWC")
    assert rep.scale_denom.tolist() == [4]
    diff = np.abs(out.astype(np.int16) - ref)
    assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 12, (diff.mean(), diff.max())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_match_read_image(orientation):
    """Coordinates are those of the displayed image; every orientation, crops touching the edges, and
    a DCT-scaled decode compared with read_image's own scaled (draft) decode."""
    rng = np.random.default_rng(orientation)
    photo = photos()[0][:373, :497]  # odd sizes: the partial last block sits at a reversed edge
    data = _jpeg(photo, orientation=orientation, quality=92)
    full = read_image(data)
    H, W = full.shape[:2]
    clips, boxes = zip(*[_random_crop(rng, W, H) for _ in range(10)])
    clips = list(clips) + [[0, 0, W, H], [W - 20, H - 30, 20, 30]]
    boxes = list(boxes) + [[0, 0, W, H], [0, 0, 20, 30]]
    n = len(clips)
    ref = resize_crop_normalize([full[cy:cy + ch, cx:cx + cw] for cx, cy, cw, ch in clips], boxes, (24, 32))
    out, rep = J.jpeg_decode_resize([data] * n, clips, boxes, (24, 32), orientations=[orientation] * n,
                                    max_scale_denom=1)
    np.testing.assert_array_equal(out, ref)
    # DCT-scaled by 4: the pixels are those of the oriented 1/4 decode (read_image's reduced path)
    small = read_image(data, reduce_to=-(-min(H, W) // 4))
    assert small.shape[:2] == (-(-H // 4), -(-W // 4))
    h4, w4 = H // 4, W // 4
    out, rep = J.jpeg_decode_resize([data], [[0, 0, W, H]], [[0, 0, 4 * w4, 4 * h4]], (h4, w4),
                                    orientations=[orientation], interpolation="nearest", antialias=False,
                                    dtype="uint8", layout="NHWC")
    assert rep.scale_denom.tolist() == [4]
    np.testing.assert_array_equal(out[0], small[:h4, :w4])


# Decoded regions above this many bytes are streamed row by row into the resize pass (a ring of
# rows, no whole intermediate image; csrc/ops/cpu/jpeg_decode.cpp kStreamRegionBytes), smaller ones
# decoded whole first. Both must give the same pixels.
STREAM_REGION_BYTES = 1 << 20


def _large_photo_jpeg(enc="420", size=(1600, 1200)):
    return _jpeg(cv2.resize(photos()[0], size, interpolation=cv2.INTER_CUBIC), **ENCODINGS[enc])


@pytest.mark.parametrize("enc", ["420", "444", "progressive"])
def test_streamed_large_regions_equal_full_decode_then_kernel(enc):
    """Regions over the streaming threshold (rows decoded into a ring as the kernel reaches them):
    exactly full decode + the kernel at scale 1, and the reduced decode + the kernel at DCT scale 1/2;
    downscales (many taps) and upscales, flips, every filter."""
    rng = np.random.default_rng(7)
    data = _large_photo_jpeg(enc)
    full = read_image(data)
    half = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_2), cv2.COLOR_BGR2RGB)
    H, W = full.shape[:2]
    streamed = 0
    for t in range(8):
        cw, ch = int(rng.integers(700, W + 1)), int(rng.integers(600, H + 1))
        cx, cy = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
        bw, bh = rng.uniform(0.5 * cw, cw), rng.uniform(0.5 * ch, ch)
        clip, box = [cx, cy, cw, ch], [rng.uniform(0, cw - bw), rng.uniform(0, ch - bh), bw, bh]
        interp = ("bilinear", "bicubic", "area", "nearest")[t % 4]
        aa, flip = bool(t % 3), bool(t % 2)
        size = (36, 52) if t % 4 else (1000, 900)  # large downscales, and one upscale of the region
        ref = resize_crop_normalize([full[cy:cy + ch, cx:cx + cw]], [box], size, flip=[flip], interpolation=interp,
                                    antialias=aa)
        out, rep = J.jpeg_decode_resize([data], [clip], [box], size, flip=[flip], interpolation=interp, antialias=aa,
                                        max_scale_denom=1)
        assert rep.status.tolist() == [0] and rep.scale_denom.tolist() == [1]
        streamed += int(np.prod(rep.decoded[0])) * 3 > STREAM_REGION_BYTES
        np.testing.assert_array_equal(out, ref, err_msg=f"{enc} clip={clip} box={box} {interp} aa={aa}")
        # DCT scale 1/2 of the whole image: libjpeg's reduced decode (OpenCV's) + the kernel, exactly
        kw = dict(flip=[flip], interpolation=interp, antialias=aa)
        fbox = [cx + box[0], cy + box[1], bw, bh] if t % 2 else [0.25, 0.5, W - 1.0, H - 0.75]
        out, rep = J.jpeg_decode_resize([data], [[0, 0, W, H]], [fbox], (36, 52), max_scale_denom=2, **kw)
        assert rep.scale_denom.tolist() == [2]
        streamed += int(np.prod(rep.decoded[0])) * 3 > STREAM_REGION_BYTES
        np.testing.assert_array_equal(out, resize_crop_normalize([half], [[v / 2 for v in fbox]], (36, 52), **kw))
    assert streamed >= 6 + 4


def test_streamed_truncated_file_leaves_its_sample_untouched():
    """A file libjpeg gives up on halfway through a streamed region: reported, its sample untouched
    (the rows already resampled went to a staging sample), the other samples decoded."""
    good = _large_photo_jpeg()
    cut = good[: len(good) // 2] + b"\xff\xd9"
    out = np.full((2, 3, 64, 64), 5.0, np.float32)
    clips = [[0, 0, 1600, 1200]] * 2
    _, rep = J.jpeg_decode_resize([cut, good], clips, clips, 64, out=out, max_scale_denom=1)
    assert rep.failed == [0] and rep.messages[0]
    assert (out[0] == 5.0).all()
    ref = resize_crop_normalize([read_image(good)], clips[:1], 64)
    np.testing.assert_array_equal(out[1:], ref)


def test_every_cpu_isa_gives_the_same_pixels():
    """The op resamples with the resize_crop_normalize row kernel of the level picked at run time
    (scalar / AVX2 / AVX-512, whichever this CPU has): every level equals the scalar one within the
    kernel tests' tolerance, on whole-region and streamed decodes, DCT-scaled or not; and each equals
    full decode + resize_crop_normalize at that level exactly."""
    small = _jpeg(photos()[0], quality=90)
    large = _large_photo_jpeg()
    cases = [(small, [30, 20, 400, 300], [5.5, 3.0, 380.0, 290.0], (224, 224), 1),
             (small, [0, 0, 500, 375], [0.0, 0.0, 500.0, 375.0], (40, 56), 8),
             (large, [100, 50, 1400, 1100], [10.0, 20.0, 1300.0, 1000.0], (224, 224), 1),  # streamed
             (large, [0, 0, 1600, 1200], [0.0, 0.0, 1600.0, 1200.0], (160, 224), 4)]
    full = {id(d): read_image(d) for d in (small, large)}
    isas = ops.supported_cpu_isas()
    assert isas[0] == "scalar"
    for k, (data, clip, box, size, den) in enumerate(cases):
        got = {}
        for isa in isas:
            with ops.using_cpu_isa(isa):
                assert ops.cpu_isa() == isa
                for layout in ("NCHW", "NHWC"):
                    out, rep = J.jpeg_decode_resize([data], [clip], [box], size, flip=[k % 2 == 1], layout=layout,
                                                    max_scale_denom=den)
                    assert rep.scale_denom.tolist() == [den]
                    got[isa, layout] = out
                    if den == 1:
                        cx, cy, cw, ch = clip
                        ref = resize_crop_normalize([full[id(data)][cy:cy + ch, cx:cx + cw]], [box], size,
                                                    flip=[k % 2 == 1], layout=layout)
                        np.testing.assert_array_equal(out, ref, err_msg=f"{isa} case {k} {layout}")
        for (isa, layout), out in got.items():
            np.testing.assert_allclose(out, got["scalar", layout], atol=3e-5, rtol=0, err_msg=f"{isa} case {k} {layout}")


def test_grayscale_and_bgr_output():
    photo = photos()[1]
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    g = _jpeg(gray, quality=90)
    c = _jpeg(photo, quality=90)
    boxes = [[5.5, 3.25, 250.0, 150.0]] * 2
    clips = [[10, 20, 300, 200]] * 2
    out, rep = J.jpeg_decode_resize([g, c], clips, boxes, 48, max_scale_denom=1)
    refs = [read_image(d)[20:220, 10:310] for d in (g, c)]
    np.testing.assert_array_equal(out, resize_crop_normalize(refs, boxes, 48))
    bgr, _ = J.jpeg_decode_resize([c], clips[:1], boxes[:1], 48, max_scale_denom=1, channel_order="BGR")
    # BGR output = the kernel over a BGR image (mean/std apply in output order, as in the pipeline)
    np.testing.assert_array_equal(bgr[0], resize_crop_normalize([refs[1][:, :, ::-1]], boxes[:1], 48)[0])


def test_out_index_writes_only_its_samples():
    data = _jpeg(photos()[0], quality=90)
    out = np.full((4, 3, 16, 16), 7.0, np.float32)
    J.jpeg_decode_resize([data, data], [[0, 0, 500, 375]] * 2, [[0, 0, 500, 375]] * 2, 16, out_index=[3, 1], out=out)
    assert (out[0] == 7).all() and (out[2] == 7).all()
    np.testing.assert_array_equal(out[1], out[3])
    assert not (out[1] == 7).all()


def test_corrupt_data_is_reported_not_raised():
    good = _jpeg(photos()[0], quality=90)
    cut = good[: len(good) // 2] + b"\xff\xd9"       # truncated scan, an EOI glued on
    m = len(good) // 3
    noise = good[:m] + b"\xff\xd5" + good[m:]  # a stray restart marker in the scan
    out = np.full((4, 3, 32, 32), 5.0, np.float32)
    clips = [[0, 0, 500, 375]] * 4
    _, rep = J.jpeg_decode_resize([good, cut, b"\xff\xd8\xff\xe0 not a jpeg", noise], clips, clips, 32, out=out)
    assert rep.status[0] == 0
    assert rep.failed == [1, 2, 3] and all(rep.messages[i] for i in (1, 2, 3))
    assert (out[1:] == 5.0).all()  # failed samples are left for the caller


def test_argument_errors():
    data = _jpeg(photos()[0], quality=90)
    with pytest.raises(ValueError, match="outside"):
        J.jpeg_decode_resize([data], [[0, 0, 600, 375]], [[0, 0, 10, 10]], 8)
    with pytest.raises(ValueError, match="lies outside its 100x100"):
        J.jpeg_decode_resize([data], [[0, 0, 100, 100]], [[50, 0, 60, 10]], 8)
    _, rep = J.jpeg_decode_resize([data, data], [[0, 0, 600, 375], [0, 0, 100, 100]], [[0, 0, 10, 10]] * 2, 8,
                                  strict=False)
    assert rep.failed == [0] and rep.status.tolist() == [J.STATUS_BAD_ARGUMENT, J.STATUS_OK]
    # geometry drawn for another size is refused even where it happens to fit
    _, rep = J.jpeg_decode_resize([data, data], [[0, 0, 100, 100]] * 2, [[0, 0, 10, 10]] * 2, 8,
                                  sizes=[[500, 375], [375, 500]])
    assert rep.failed == [0] and "not the expected 375x500" in rep.messages[0]
    with pytest.raises(ValueError, match="orientation"):
        J.jpeg_decode_resize([data], [[0, 0, 100, 100]], [[0, 0, 10, 10]], 8, orientations=[9])
    with pytest.raises(ValueError, match="max_scale_denom"):
        J.jpeg_decode_resize([data], [[0, 0, 100, 100]], [[0, 0, 10, 10]], 8, max_scale_denom=3)
    with pytest.raises(ValueError, match="shape"):
        J.jpeg_decode_resize([data], [[0, 0, 100, 100]] * 2, [[0, 0, 10, 10]], 8)
    with pytest.raises(ValueError, match="out_index"):
        J.jpeg_decode_resize([data], [[0, 0, 100, 100]], [[0, 0, 10, 10]], 8, out_index=[1])
    with pytest.raises(ValueError, match="out must be"):
        J.jpeg_decode_resize([data], [[0, 0, 100, 100]], [[0, 0, 10, 10]], 8, out=np.empty((1, 3, 8, 8), np.float16))


def test_runtime_switch(monkeypatch):
    monkeypatch.setenv(J.ENV_DISABLE, "0")
    assert not J.jpeg_decoder_available()
    monkeypatch.delenv(J.ENV_DISABLE)
    assert J.jpeg_decoder_available()
    assert J.jpeg_library().startswith("libjpeg")
