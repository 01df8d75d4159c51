"""Datasets (PaddleClas lists, multi-label, ImageFolder, Flowers102, demo) and the Flowers-102
download helper against a loopback HTTP server serving generated files."""
import functools
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from hubcls.data import (
    DemoDataset,
    Flowers102,
    ImageFolder,
    ImageNetDataset,
    MultiLabelDataset,
    build_dataset,
    make_demo_dataset,
    read_image,
)
from hubcls.errors import ConfigError


def _jpg(path, color, size=(20, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "JPEG", quality=95)


def test_imagenet_list(tmp_path):
    _jpg(tmp_path / "a" / "x 1.jpg", (255, 0, 0))
    _jpg(tmp_path / "b" / "y.jpg", (0, 255, 0))
    (tmp_path / "train.txt").write_text("a/x 1.jpg 0\n\nb/y.jpg 2\n")
    (tmp_path / "labels.txt").write_text("0 cat\n1 dog\n2 bird, small\n")
    ds = ImageNetDataset(tmp_path, tmp_path / "train.txt", label_list=tmp_path / "labels.txt")
    assert len(ds) == 2 and ds.labels.dtype == np.int64 and list(ds.labels) == [0, 2]
    assert ds.source(0) == str(tmp_path / "a" / "x 1.jpg")  # space in the path survives
    assert ds.class_names == ["cat", "dog", "bird, small"] and ds.num_classes == 3
    assert read_image(ds.source(1))[0, 0, 1] > 200
    ds2 = build_dataset({"name": "ImageNetDataset", "image_root": str(tmp_path),
                         "cls_label_path": str(tmp_path / "train.txt")})
    assert ds2.class_names is None and ds2.num_classes == 3


@pytest.mark.parametrize("text, match", [
    ("a.jpg\n", "expected 'path label'"),
    ("a.jpg cat\n", "not an integer"),
    ("", "empty"),
])
def test_imagenet_list_errors(tmp_path, text, match):
    (tmp_path / "l.txt").write_text(text)
    with pytest.raises(ConfigError, match=match):
        ImageNetDataset(tmp_path, tmp_path / "l.txt")


def test_dataset_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ImageNetDataset(tmp_path, tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match=r"dataset\.name.*unknown dataset"):
        build_dataset({"name": "NoSuchDataset"})
    with pytest.raises(ConfigError, match="bad parameters"):
        build_dataset({"name": "ImageNetDataset"})  # image_root/cls_label_path missing


def test_multilabel_list(tmp_path):
    (tmp_path / "ml.txt").write_text("img/a.jpg\t0,1,1,0\nimg/b.jpg\t1,0,0,0\n")
    ds = MultiLabelDataset(tmp_path, tmp_path / "ml.txt")
    assert ds.multilabel and ds.labels.dtype == np.float32 and ds.labels.shape == (2, 4)
    assert ds.num_classes == 4
    np.testing.assert_array_equal(ds.labels[0], [0, 1, 1, 0])
    (tmp_path / "bad.txt").write_text("img/a.jpg\t0,1,1,0\nimg/b.jpg\t1,0\n")
    with pytest.raises(ConfigError, match="2 labels, earlier lines have 4"):
        MultiLabelDataset(tmp_path, tmp_path / "bad.txt")
    (tmp_path / "bad2.txt").write_text("img/a.jpg\t0,2\n")
    with pytest.raises(ConfigError, match="0 or 1"):
        MultiLabelDataset(tmp_path, tmp_path / "bad2.txt")


def test_image_folder(tmp_path):
    for cls, n in (("zebra", 2), ("ant", 3)):
        for i in range(n):
            _jpg(tmp_path / cls / f"{i}.jpg", (i * 50, 0, 0))
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    _jpg(tmp_path / "ant" / "sub" / "deep.JPG", (1, 2, 3))
    ds = ImageFolder(tmp_path)
    assert ds.class_names == ["ant", "zebra"]
    assert list(ds.labels) == [0, 0, 0, 0, 1, 1]
    assert all(s.lower().endswith(".jpg") for s in ds.images)
    with pytest.raises(ConfigError, match="no class sub-folders"):
        ImageFolder(tmp_path / "ant" / "sub")


def _flowers_files(tmp_path, n=12):
    import scipy.io

    src = tmp_path / "src"
    (src / "jpg").mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 103, n)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(1, n + 1):
            b = io.BytesIO()
            Image.new("RGB", (24, 18), (int(labels[i - 1]), 0, 0)).save(b, "JPEG", quality=95)
            info = tarfile.TarInfo(f"jpg/image_{i:05d}.jpg")
            info.size = len(b.getvalue())
            tf.addfile(info, io.BytesIO(b.getvalue()))
    (src / "102flowers.tgz").write_bytes(buf.getvalue())
    scipy.io.savemat(src / "imagelabels.mat", {"labels": labels[None, :]})
    scipy.io.savemat(src / "setid.mat", {"trnid": np.array([[1, 2, 3, 4, 5]]), "valid": np.array([[6, 7, 8]]),
                                          "tstid": np.array([[9, 10, 11, 12]])})
    return src, labels


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    src, labels = _flowers_files(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(src)))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", labels
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.network
def test_download_flowers102_and_both_dataset_forms(tmp_path, http_root, monkeypatch):
    from hubcls.data import download_flowers102

    url, labels = http_root
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")  # the stand-in server is plain http on 127.0.0.1
    root = tmp_path / "flowers"
    paths = download_flowers102(root, base_url=url, progress=False)
    assert sorted(p.name for p in (root / "jpg").iterdir())[0] == "image_00001.jpg"
    lines = (root / "train_list.txt").read_text().split("\n")
    assert lines[0] == f"jpg/image_00001.jpg {labels[0] - 1}"

    official = Flowers102(root, split="val")
    listed = build_dataset({"name": "Flowers102", "image_root": str(root), "cls_label_path": paths["val_list"]})
    assert official.images == listed.images and list(official.labels) == list(listed.labels)
    assert list(official.labels) == [int(labels[i]) - 1 for i in (5, 6, 7)]
    assert official.num_classes == 102
    assert read_image(official.source(0))[0, 0, 0] == pytest.approx(labels[5], abs=3)
    assert len(Flowers102(root, split="test")) == 4
    # second call: everything cached, nothing re-downloaded even offline
    monkeypatch.setenv("HUBCLS_OFFLINE", "1")
    assert download_flowers102(root, base_url=url, progress=False)["train_list"] == paths["train_list"]


def test_flowers102_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="imagelabels.mat is missing"):
        Flowers102(tmp_path)
    with pytest.raises(ConfigError, match="split"):
        Flowers102(tmp_path, split="everything")


def test_demo_dataset_deterministic_and_config_entry(tmp_path):
    for sub, seed in (("a", 5), ("b", 5), ("c", 6)):
        make_demo_dataset(tmp_path / sub, num_classes=3, train_per_class=3, val_per_class=1, seed=seed)
    la = (tmp_path / "a" / "train_list.txt").read_text().split()
    assert la[:2] == ["images/circle/0000.jpg", "0"] and len(la) == 18
    f = "images/triangle/0002.jpg"
    assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes()
    assert (tmp_path / "a" / "label_list.txt").read_text() == "0 circle\n1 square\n2 triangle\n"
    img = read_image(tmp_path / "a" / f)
    assert 112 <= img.shape[0] <= 176 and img.std() > 20  # textured, not flat
    ds = build_dataset({"name": "DemoDataset", "image_root": str(tmp_path / "d"), "split": "val",
                        "num_classes": 3, "train_per_class": 2, "val_per_class": 2})
    assert isinstance(ds, DemoDataset) and len(ds) == 6 and ds.class_names == ["circle", "square", "triangle"]
    mtime = (tmp_path / "d" / "images" / "circle" / "0000.jpg").stat().st_mtime_ns
    again = DemoDataset(tmp_path / "d", split="train", num_classes=3, train_per_class=2, val_per_class=2)
    assert len(again) == 6
    assert (tmp_path / "d" / "images" / "circle" / "0000.jpg").stat().st_mtime_ns == mtime  # not re-rendered


def test_demo_classes_are_separable(tmp_path):
    """Cheap learnability check: nearest-centroid on a hue histogram of the saturated pixels (the
    object) beats chance by far. (A 3-conv CNN reaches ~90% val accuracy in 3 epochs at 48 px —
    measured, too slow for CI on 2 cores.)"""
    import cv2

    make_demo_dataset(tmp_path, num_classes=6, train_per_class=12, val_per_class=6, seed=0)

    def feats(list_name):
        X, y = [], []
        for line in (tmp_path / list_name).read_text().split("\n"):
            if not line:
                continue
            rel, lab = line.rsplit(" ", 1)
            hsv = cv2.cvtColor(read_image(tmp_path / rel), cv2.COLOR_RGB2HSV_FULL)
            sat = hsv[..., 1] > 120
            h = np.bincount(hsv[..., 0][sat] // 16, minlength=16).astype(float)
            X.append(h / (h.sum() + 1e-6))
            y.append(int(lab))
        return np.array(X), np.array(y)

    Xtr, ytr = feats("train_list.txt")
    Xva, yva = feats("val_list.txt")
    cent = np.stack([Xtr[ytr == k].mean(0) for k in range(6)])
    pred = np.argmin(((Xva[:, None] - cent[None]) ** 2).sum(-1), 1)
    assert (pred == yva).mean() > 0.6  # chance is 1/6
