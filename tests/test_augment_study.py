"""benchmarks/augment_study.py: the augmentation study runs end to end (``--quick``) and its parts
(IDX reader, split, scaled PaddleClas parameters, paired statistics) compute what they claim.

The end-to-end run needs Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package
(.ci/apt-packages.txt installs it); without it the test skips, except in CI where it fails.
"""
import gzip
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "augment_study.py"


def _load_study():
    spec = importlib.util.spec_from_file_location("augment_study", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


study = _load_study()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _write_idx(path, arr):
    arr = np.ascontiguousarray(arr, np.uint8)
    header = (0x0800 | arr.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def test_read_idx_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    _write_idx(tmp_path / "i.gz", imgs)
    _write_idx(tmp_path / "l.gz", labels)
    np.testing.assert_array_equal(study.read_idx(tmp_path / "i.gz"), imgs)
    np.testing.assert_array_equal(study.read_idx(tmp_path / "l.gz"), labels)
    with gzip.open(tmp_path / "bad.gz", "wb") as f:  # int32 data (0x0C): not what the reader handles
        f.write((0x0C01).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\0\0\0\0")
    with pytest.raises(ValueError, match="unsigned-byte"):
        study.read_idx(tmp_path / "bad.gz")


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), 400)
    val, train0 = study.split_indices(labels, 0, 30)
    val_b, train0_b = study.split_indices(labels, 0, 30)
    _, train1 = study.split_indices(labels, 1, 30)
    np.testing.assert_array_equal(val, val_b)          # the val split never moves
    np.testing.assert_array_equal(train0, train0_b)    # a seed gives the same training subset
    assert not np.array_equal(train0, train1)          # another seed draws another one
    assert np.bincount(labels[val]).tolist() == [study.VAL_PER_CLASS] * 10
    assert np.bincount(labels[train0]).tolist() == [30] * 10
    assert not set(val) & set(train0) and not set(val) & set(train1)


def test_paddleclas_pixel_parameters_scale_with_the_crop():
    a = study.augmentations(28, 10)
    assert a["Cutout"][1][0]["Cutout"]["length"] == 14                     # 112 at 224
    assert a["HideAndSeek"][1][0]["HideAndSeek"]["grid_sizes"] == [0, 2, 4, 6, 7]  # 0,16,32,44,56 at 224
    gm = a["GridMask"][1][0]["GridMask"]
    assert (gm["d1"], gm["d2"], gm["num_epochs"]) == (12, 28, 8)          # 96, 224; 240 of 300 epochs
    assert a["RandomErasing"][1][0]["RandomErasing"]["sh"] == 0.4          # area fractions: not scaled
    assert a["Mixup"][2] == [{"MixupOperator": {"alpha": 0.2}}]
    big = study.augmentations(224, 300)
    assert big["Cutout"][1][0]["Cutout"]["length"] == 112
    assert big["GridMask"][1][0]["GridMask"]["num_epochs"] == 240
    assert study.eval_ops(28)[1] == {"ResizeImage": {"resize_short": 32}}


def test_paired_statistics_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    base = {0: 0.80, 1: 0.82, 2: 0.79, 3: 0.81}
    aug = {0: 0.83, 1: 0.82, 2: 0.80, 3: 0.84}
    s = study.summarize({"standard": base, "Mixup": aug}, [0, 1, 2, 3])
    ref = stats.ttest_rel(list(aug.values()), list(base.values()))
    m = s["Mixup"]
    assert m["t"] == pytest.approx(ref.statistic)
    assert m["p"] == pytest.approx(ref.pvalue)
    assert m["diff_mean"] == pytest.approx(np.mean(np.subtract(list(aug.values()), list(base.values()))))
    assert (m["wins"], m["losses"], m["n_pairs"]) == (3, 0, 4)
    assert s["standard"]["std"] == pytest.approx(np.std(list(base.values()), ddof=1))
    one = study.summarize({"standard": {0: 0.5}, "Cutmix": {0: 0.4}}, [0])
    assert one["Cutmix"]["t"] is None and one["Cutmix"]["diff_mean"] == pytest.approx(-0.1)


def test_quick_study_runs_end_to_end(tmp_path):
    have = all((Path(study.FASHION_MNIST_DIR) / f).is_file()
               for pair in study.FASHION_MNIST_FILES.values() for f in pair)
    if not have:
        msg = f"Fashion-MNIST is not in {study.FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)"
        if IN_CI:
            pytest.fail(msg + "; .ci/apt-packages.txt should have installed it")
        pytest.skip(msg)
    out = tmp_path / "study.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out), "--figures", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    res = json.loads(out.read_text())
    assert list(res["summary"]) == study.VARIANTS and len(study.VARIANTS) == 9
    assert res["eval_images"] == 200
    assert len(res["runs"]) == 9
    for r in res["runs"].values():
        assert 0.0 <= r["top1"] <= 1.0 and np.isfinite(r["train_loss"])
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ") and not ln.startswith("| pipeline")]
    assert [ln.split("|")[1].strip() for ln in rows] == study.VARIANTS
    for name in ("augment_grid.png", "augment_bars.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
