"""Faster R-CNN + FPN from the shipped PSS-DET config, with the hubcls backbone, in real
PaddleDetection 2.6 (pip paddledet, run on Paddle 3 through hubcls.det.ppdet_compat): training steps
on a tiny generated COCO set make the loss fall, and COCO evaluation runs."""
import json

import numpy as np
import pytest

ppdet = pytest.importorskip("ppdet", reason="pip paddledet==2.6.0 (tests/install_peers.sh) not installed")

import cv2  # noqa: E402
import paddle  # noqa: E402

from hubcls import create_model  # noqa: E402
from hubcls.det import CONFIG_DIR, register_with_ppdet  # noqa: E402

COLORS = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]  # BGR for cv2: red, green, blue boxes


def make_coco(root, n_images=4, size=(128, 160), seed=0):
    """Solid coloured rectangles on a noisy background; the colour is the class."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, anns = [], []
    for i in range(n_images):
        h, w = size
        img = (rng.random((h, w, 3)) * 60 + 100).astype(np.uint8)
        for _ in range(int(rng.integers(1, 3))):
            c = int(rng.integers(0, 3))
            bw, bh = (int(v) for v in rng.integers(36, 64, 2))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            cv2.rectangle(img, (x, y), (x + bw - 1, y + bh - 1), COLORS[c], -1)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c + 1,
                         "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0})
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), img)
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "height": h, "width": w})
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(["red", "green", "blue"])]
    with open(root / "annotations" / "train.json", "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)


@pytest.mark.slow
def test_faster_rcnn_pssdet_config_trains_and_evaluates(tmp_path):
    from ppdet.core.workspace import load_config, merge_config
    from ppdet.engine import Trainer

    register_with_ppdet()
    paddle.set_device("cpu")
    paddle.seed(0)
    np.random.seed(0)
    data = tmp_path / "coco"
    make_coco(data)
    # classification weights for the backbone, as a PaddleClas-style .pdparams file
    weights = tmp_path / "ResNet18_vd.pdparams"
    paddle.save(create_model("ResNet18_vd").state_dict(), str(weights))

    cfg = load_config(str(CONFIG_DIR / "faster_rcnn_dcn_r50_vd_fpn_3x_server_side.yml"))
    assert cfg.FasterRCNN["backbone"] == "HubclsResNet"
    assert cfg.HubclsResNet["dcn_v2_stages"] == [1, 2, 3]
    dataset = dict(image_dir="images", anno_path="annotations/train.json", dataset_dir=str(data))
    merge_config({
        "use_gpu": False, "num_classes": 3, "worker_num": 0, "log_iter": 100, "epoch": 6,
        "save_dir": str(tmp_path / "out"), "snapshot_epoch": 100, "output_eval": str(tmp_path / "eval"),
        # the PSS-DET backbone settings at a small depth, so the test runs on 2 CPU cores
        "HubclsResNet": {"depth": 18, "weights": None, "pretrained": str(weights)},
        "FPN": {"in_channels": [64, 128, 256, 512]},
        "LearningRate": {"base_lr": 0.01},
        "TrainReader": {"sample_transforms": [
            {"Decode": {}},
            {"RandomResize": {"target_size": [[128, 160]], "interp": 2, "keep_ratio": True}},
            {"NormalizeImage": {"is_scale": True, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
            {"Permute": {}}], "shuffle": False},
        "EvalReader": {"sample_transforms": [
            {"Decode": {}},
            {"Resize": {"interp": 2, "target_size": [128, 160], "keep_ratio": True}},
            {"NormalizeImage": {"is_scale": True, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
            {"Permute": {}}]},
    })
    cfg.TrainDataset.__dict__.update(dataset)
    cfg.EvalDataset.__dict__.update(dataset)
    # the config's dataset objects were built from the file's YAML tags; rebuild them with our paths
    from ppdet.data.source.coco import COCODataSet

    cfg["TrainDataset"] = COCODataSet(data_fields=["image", "gt_bbox", "gt_class", "is_crowd"], **dataset)
    cfg["EvalDataset"] = COCODataSet(allow_empty=True, **dataset)

    trainer = Trainer(cfg, mode="train")
    backbone = trainer.model.backbone
    assert type(backbone).__name__ == "HubclsResNet"
    assert type(backbone.model.blocks[2].conv1.conv).__name__ == "DeformableConvV2"
    np.testing.assert_array_equal(  # the classification weights reached the detector
        backbone.model.state_dict()["blocks.0.conv0.conv.weight"].numpy(),
        paddle.load(str(weights))["blocks.0.conv0.conv.weight"].numpy())

    model, loader, optimizer = trainer.model, trainer.loader, trainer.optimizer
    model.train()
    losses = []
    for epoch in range(int(cfg.epoch)):
        for data_batch in loader:
            data_batch["epoch_id"] = epoch
            out = model(data_batch)
            out["loss"].backward()
            optimizer.step()
            optimizer.clear_grad()
            trainer.lr.step()
            losses.append(float(out["loss"]))
    assert all(np.isfinite(losses))
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < 0.8 * first, f"loss did not fall: {losses}"

    # COCO evaluation through PaddleDetection's own evaluator
    evaluator = Trainer(cfg, mode="eval")
    evaluator.model.set_state_dict(model.state_dict())
    results = []
    metric = evaluator._metrics[0]
    accumulate = metric.accumulate

    def accumulate_and_keep():  # the trainer resets its metrics after logging; keep the numbers
        accumulate()
        results.append(dict(metric.get_results()))

    metric.accumulate = accumulate_and_keep
    evaluator.evaluate()
    bbox = np.asarray(results[0]["bbox"]).ravel()
    assert len(bbox) >= 12 and all(-1.0 <= v <= 1.0 for v in bbox)

