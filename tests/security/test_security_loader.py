"""Decoding and loading touch no global state and never block or blow up on non-regular files:
a FIFO, a device or a symlink to one in a file list is a bad sample under the skip/error policy;
read_image leaves Pillow's process-wide MAX_IMAGE_PIXELS and LOAD_TRUNCATED_IMAGES alone."""
from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from hubcls.data import build_dataloader, make_demo_dataset
from hubcls.data.decode import read_image
from hubcls.data.loader import BadSampleWarning
from hubcls.errors import ImageDecodeError

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(),
                                reason="needs FIFOs and /dev/zero")


def _jpeg(seed=0, size=(40, 30)):
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@needs_fifo
@pytest.mark.timeout(60)
def test_read_image_refuses_non_regular_files(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    link_to_fifo = tmp_path / "link.jpg"
    link_to_fifo.symlink_to(fifo)
    for path, kind in ((fifo, "a FIFO"), (zero, "a character device"), (link_to_fifo, "a FIFO")):
        with pytest.raises(ImageDecodeError, match=f"not a regular file \\({kind}\\)") as ei:
            read_image(path)  # without the check: blocks forever (FIFO) or reads until OOM (/dev/zero)
        assert ei.value.source == str(path)
    with pytest.raises(ImageDecodeError, match="is a directory"):
        read_image(tmp_path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), num_classes=3, train_per_class=4,
                             val_per_class=1, seed=3)


@needs_fifo
@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [0, 2])
def test_loader_treats_fifo_and_device_as_bad_samples(demo, tmp_path, workers):
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    lines = Path(demo["train_list"]).read_text().split("\n")[:8]
    rel = lambda p: os.path.relpath(p, demo["root"])  # noqa: E731
    lines[2] = f"{rel(tmp_path / 'fifo.jpg')} 0"
    lines[5] = f"{rel(tmp_path / 'zero.jpg')} 1"
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    norm = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5] * 3, "std": [0.5] * 3, "order": ""}}
    ds = {"name": "ImageNetDataset", "image_root": demo["root"], "cls_label_path": str(tmp_path / "list.txt"),
          "transform_ops": [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 32}}, norm,
                            {"ToCHWImage": None}]}
    cfg = {"Global": {}, "Arch": {"class_num": 3},
           "DataLoader": {"Train": {"dataset": ds, "sampler": {"name": "DistributedBatchSampler", "batch_size": 4,
                                                             "drop_last": False, "shuffle": False},
                                    "loader": {"num_workers": workers}}}}
    with build_dataloader(cfg, "Train") as dl:
        with pytest.warns(BadSampleWarning, match="skipped 2 bad sample"):
            batches = list(dl)
        assert sum(len(b["index"]) for b in batches) == 6
        reasons = " ".join(r for _, _, r in dl.bad_sample_log)
        assert "a FIFO" in reasons and "a character device" in reasons
    cfg["DataLoader"]["Train"]["on_bad_sample"] = "error"
    with build_dataloader(cfg, "Train") as dl:
        with pytest.raises(ImageDecodeError, match="not a regular file"):
            list(dl)


def test_a_larger_limit_works_without_touching_pillows_global(monkeypatch):
    """A caller's max_pixels above Pillow's bomb threshold decodes, and Image.MAX_IMAGE_PIXELS is
    the same object before, during and after (the old code set it to None and back)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow errors above 2x this: 1000 pixels
    png = io.BytesIO()
    Image.fromarray(np.full((40, 50, 3), 7, np.uint8)).save(png, "PNG")
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(png.getvalue()))  # Pillow alone refuses 2000 pixels here
    out = read_image(png.getvalue(), max_pixels=10_000, fast=False)
    assert out.shape == (40, 50, 3) and int(out[0, 0, 0]) == 7
    assert Image.MAX_IMAGE_PIXELS == 500
    with pytest.raises(ImageDecodeError, match="decompression-bomb|limit"):
        read_image(png.getvalue(), max_pixels=1_500, fast=False)


def test_concurrent_decodes_never_change_pillow_globals(monkeypatch):
    """Threads decoding bomb-sized, truncated and normal images while another thread watches the two
    process-wide Pillow settings: they never change (a race once left MAX_IMAGE_PIXELS = None)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as PaddleDetection sets it
    big = io.BytesIO()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(big, "PNG")
    good = _jpeg(1)
    cut = good[: len(good) // 2]
    seen, stop, errors = set(), threading.Event(), []

    def watch():
        while not stop.is_set():
            seen.add((Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES))

    def work(i):
        try:
            for _ in range(30):
                assert read_image(big.getvalue(), max_pixels=10_000, fast=False).shape == (40, 50, 3)
                assert read_image(good, fast=False).shape == (30, 40, 3)
                with pytest.raises(ImageDecodeError, match="truncated"):
                    read_image(cut, fast=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    w = threading.Thread(target=watch)
    w.start()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    w.join()
    assert not errors, errors[0]
    assert seen == {(500, True)}


def test_truncated_png_refused_while_load_truncated_images_is_set(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    with pytest.raises(ImageDecodeError, match="truncated"):
        read_image(data[: len(data) * 2 // 3])
    assert read_image(data).shape == (64, 64, 3)  # the complete file still decodes
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True
