"""Quiet by default (Paddle's OMP_NUM_THREADS notice, matplotlib's font-cache messages: only with
--verbose / HUBCLS_VERBOSE=1) and the training report's HTML (styled, mistakes named by file,
config and weights provenance)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("paddle")


def _py(code, **env):
    e = dict(os.environ, **env)
    e.pop("HUBCLS_VERBOSE", None)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=300)


def test_paddle_omp_notice_only_when_verbose():
    code = "from hubcls._paddle import import_paddle; import sys; import_paddle(); print('x', file=sys.stderr)"
    quiet = _py(code, OMP_NUM_THREADS="2")
    assert quiet.returncode == 0, quiet.stderr
    assert "OMP_NUM_THREADS" not in quiet.stderr and quiet.stderr.strip().endswith("x")  # stderr still works
    loud = _py(code, OMP_NUM_THREADS="2", HUBCLS_VERBOSE="1")
    assert "WARNING: OMP_NUM_THREADS set to 2" in loud.stderr and "PLEASE USE OMP_NUM_THREADS WISELY" in loud.stderr
    # the CLI's --verbose turns it on too
    cli = subprocess.run([sys.executable, "-m", "hubcls", "--verbose", "info"], capture_output=True, text=True,
                         env={k: v for k, v in dict(os.environ, OMP_NUM_THREADS="2").items() if k != "HUBCLS_VERBOSE"},
                         timeout=300)
    assert cli.returncode == 0 and "OMP_NUM_THREADS set to 2" in cli.stderr


def test_matplotlib_font_cache_messages_only_when_verbose(tmp_path):
    pytest.importorskip("matplotlib")
    # a fresh MPLCONFIGDIR makes matplotlib build its font cache, which it logs at INFO
    code = ("import logging; logging.basicConfig(level=logging.INFO); "
            "from hubcls.engine.report import _plt; _plt().figure()")
    quiet = _py(code, MPLCONFIGDIR=str(tmp_path / "a"))
    assert quiet.returncode == 0, quiet.stderr
    assert "fontManager" not in quiet.stderr and "font cache" not in quiet.stderr
    loud = _py(code, MPLCONFIGDIR=str(tmp_path / "b"), HUBCLS_VERBOSE="1")
    assert "generated new fontManager" in loud.stderr


def test_report_html_is_styled_names_mistakes_by_file_and_says_where_config_and_weights_came_from(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from hubcls.data.datasets import ImageNetDataset
    from hubcls.engine.metrics import EvalResult
    from hubcls.engine.report import write_report

    data = tmp_path / "data"
    rel = [f"images/{c}/{k:04d}.jpg" for c in ("circle", "square") for k in range(3)]
    for i, r in enumerate(rel):
        (data / r).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(data / r)
    (data / "val.txt").write_text("".join(f"{r} {i // 3}\n" for i, r in enumerate(rel)))
    ds = ImageNetDataset(str(data), str(data / "val.txt"))
    res = EvalResult(2)
    labels = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([0, 1, 0, 1, 1, 0])  # samples 1 and 5 are wrong
    res.add(np.eye(2, dtype=np.float32)[pred], labels, np.arange(6))
    res.finalize([res.arrays()])

    out = tmp_path / "run"
    (out / "best").mkdir(parents=True)
    (out / "config.yaml").write_text("Arch: {name: ResNet18}\n")
    (out / "last.pdckpt").write_bytes(b"")
    cfg = {"Arch": {"name": "ResNet18", "pretrained": "/weights/start.pdparams"}, "Global": {},
           "DataLoader": {"Eval": {"dataset": {"name": "ImageNetDataset", "cls_label_path": str(data / "val.txt")}}},
           "_source": "/configs/my_recipe.yaml"}
    trainer = SimpleNamespace(output_dir=out, cfg=cfg, class_names=["circle", "square"], start_epoch=1,
                              history=[{"epoch": 1, "train_loss": 1.0, "lr": 0.1, "eval_top1": 0.5},
                                       {"epoch": 2, "train_loss": 0.5, "lr": 0.05, "eval_top1": 0.67}],
                              best={"metric": "top1", "value": 0.67, "epoch": 2},
                              eval_loader=SimpleNamespace(dataset=ds), _last_eval=res)
    page = write_report(trainer)
    text = Path(page).read_text()
    assert "<style>" in text and "font:" in text
    # mistakes: by the file, as the file list names it; the right ones only
    assert "images/circle/0001.jpg" in text and "images/square/0002.jpg" in text
    assert "images/circle/0000.jpg" not in text and "#1<br>" not in text
    assert "Mistakes (2 of 6; first 2)" in text
    # provenance: the config file and the saved copy, the starting weights, what was written
    assert "/configs/my_recipe.yaml" in text and 'href="config.yaml"' in text
    assert "/weights/start.pdparams</code> (Arch.pretrained)" in text
    assert 'href="best/"' in text and 'href="last.pdckpt"' in text and "hubcls " in text
    cfg["Arch"]["pretrained"] = False
    assert "random initialisation" in Path(write_report(trainer)).read_text()


def test_quickstart_says_the_whole_reason_the_weights_are_unavailable(tmp_path, monkeypatch):
    """The quick start's "FROM SCRATCH: official weights not available (...)" keeps the reason whole
    (it used to be cut at 160 characters: "(URLError: <urlopen erro))")."""
    import hubcls.models._download as D
    from hubcls.engine.quickstart import quick_weights
    from hubcls.errors import HostUnreachableError

    reason = ("https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/MobileNetV3_small_x0_35_pretrained.pdparams: "
              "host unreachable (URLError: <urlopen error [Errno -3] Temporary failure in name resolution>)")
    assert len(reason) > 160

    def unreachable(url, **kw):
        raise HostUnreachableError(reason + "\n(set HUBCLS_MODEL_ENDPOINT to a mirror)")

    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path))
    monkeypatch.delenv("HUBCLS_OFFLINE", raising=False)
    monkeypatch.setattr(D, "download", unreachable)
    path, why = quick_weights("MobileNetV3_small_x0_35", timeout=1)
    assert path is None and why == f"model host unreachable ({reason})"
