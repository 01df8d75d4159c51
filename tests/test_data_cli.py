"""`hubcls data preview|demo`: the grid shows the loader's first batch, de-normalised, with labels."""
import numpy as np
import yaml
from PIL import Image

from hubcls.cli import main


def test_data_demo_and_preview(tmp_path, capsys):
    assert main(["data", "demo", str(tmp_path / "demo"), "--classes", "3", "--train-per-class", "4",
                 "--val-per-class", "1"]) == 0
    assert (tmp_path / "demo" / "val_list.txt").read_text().count("\n") == 3
    cfg = {"Arch": {"class_num": 3},
           "DataLoader": {"Eval": {
               "dataset": {"name": "ImageNetDataset", "image_root": str(tmp_path / "demo"),
                           "cls_label_path": str(tmp_path / "demo" / "train_list.txt"),
                           "label_list": str(tmp_path / "demo" / "label_list.txt"),
                           "transform_ops": [{"DecodeImage": {}}, {"ResizeImage": {"size": 80}},
                                             {"NormalizeImage": {"mean": [0.5] * 3, "std": [0.25] * 3, "order": ""}},
                                             {"ToCHWImage": None}]},
               "sampler": {"batch_size": 2, "shuffle": False}, "loader": {"num_workers": 2}}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "grid.png"
    assert main(["data", "preview", "-c", str(tmp_path / "c.yaml"), "--mode", "Eval", "-n", "4", "--output", str(out)]) == 0
    assert "4 Eval samples" in capsys.readouterr().out
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape == (2 * (160 + 20), 2 * 160, 3)  # 2x2 tiles of 160 px + caption strips
    # the first tile is the first sample, resized to 80 then shown at 160: compare with the file itself
    import cv2

    first = cv2.resize(np.asarray(Image.open(tmp_path / "demo" / "images" / "circle" / "0000.jpg").convert("RGB")),
                       (80, 80), interpolation=cv2.INTER_LINEAR)
    shown = cv2.resize(grid[:160, :160], (80, 80), interpolation=cv2.INTER_AREA)
    assert np.abs(shown.astype(int) - first.astype(int)).mean() < 6
    assert (grid[160:180, :160] < 128).any()  # a caption was drawn
