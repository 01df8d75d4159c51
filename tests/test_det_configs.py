"""PaddleDetection 2.6 configs with their ResNet swapped for HubclsResNet (tests/data/det/: the model
part of PaddleDetection release/2.6's ppyolo_r50vd_dcn_1x_coco.yml and
faster_rcnn_x101_vd_64x4d_fpn_1x_coco.yml, flattened, ``backbone: ResNet`` -> ``HubclsResNet`` and
nothing else changed). Each config is built twice in real PaddleDetection (pip paddledet 2.6 on
Paddle 3, through hubcls.det.ppdet_compat): with its own ResNet and with HubclsResNet. Given the same
weights (random, BN statistics and DCN offsets included; the backbone's go through the "ppdet" key
scheme), the eval forward gives identical backbone feature maps and identical detections."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ppdet = pytest.importorskip("ppdet", reason="pip paddledet==2.6.0 (tests/install_peers.sh) not installed")

import paddle  # noqa: E402

from hubcls.det import register_with_ppdet  # noqa: E402
from hubcls.models._weights import load_pretrained  # noqa: E402

CONFIGS = Path(__file__).parent / "data" / "det"


def _forget_configs(*paths: Path) -> None:
    """PaddleDetection merges every loaded config into one global config: clear the values the
    sections of these configs were given (their schema defaults come back), so no test sees another's."""
    import yaml
    from ppdet.core.workspace import global_config

    for path in paths:
        for key in [*yaml.safe_load(path.read_text()), "ResNet"]:  # ResNet: set from HubclsResNet's section
            value = global_config.get(key)
            if hasattr(value, "schema"):
                for item in list(value.keys()):
                    del value[item]


@pytest.fixture(autouse=True)
def _clean_ppdet_config():
    yield
    _forget_configs(*sorted(CONFIGS.glob("*.yml")))


def build_both(config: str):
    """(PaddleDetection's model with its ResNet, the same model with HubclsResNet), same weights."""
    from ppdet.core.workspace import create, load_config, merge_config
    from test_models_parity import randomize

    register_with_ppdet()
    paddle.set_device("cpu")
    _forget_configs(*sorted(CONFIGS.glob("*.yml")))
    cfg = load_config(str(CONFIGS / config))
    arch = cfg.architecture
    assert cfg[arch]["backbone"] == "HubclsResNet"
    args = dict(cfg["HubclsResNet"])
    merge_config({arch: {"backbone": "ResNet"}, "ResNet": args})  # the config as PaddleDetection ships it
    paddle.seed(0)
    ref = create(arch)
    merge_config({arch: {"backbone": "HubclsResNet"}})
    ours = create(arch)
    assert type(ref.backbone).__name__ == "ResNet" and type(ours.backbone).__name__ == "HubclsResNet"
    randomize(ref)
    rng = np.random.RandomState(1)
    for name, p in ref.named_parameters():
        if "conv_offset" in name:  # DCNv2 offsets start at zero; make them matter
            p.set_value((rng.standard_normal(p.shape) * 0.01).astype("float32"))
    state = {k: v.numpy() for k, v in ref.backbone.state_dict().items()}
    assert load_pretrained(ours.backbone.model, "ppdet ResNet", state=state) == "ppdet"
    for name, sub in ref.named_children():
        if name != "backbone":
            getattr(ours, name).set_state_dict(sub.state_dict())
    ref.eval()
    ours.eval()
    return ref, ours


def eval_forward_identical(ref, ours, size: int):
    x = paddle.to_tensor(np.random.RandomState(2).standard_normal((1, 3, size, size)).astype("float32"))
    inputs = {"image": x, "im_shape": paddle.to_tensor([[size, size]], "float32"),
              "scale_factor": paddle.to_tensor([[1.0, 1.0]], "float32")}
    with paddle.no_grad():
        feats_ref, feats = ref.backbone(inputs), ours.backbone(inputs)
        assert len(feats) == len(feats_ref)
        for a, b in zip(feats_ref, feats):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-5 * float(np.abs(a.numpy()).max()))
        out_ref, out = ref(inputs), ours(inputs)
    assert set(out) == set(out_ref) >= {"bbox", "bbox_num"}
    assert int(out["bbox_num"][0]) > 0
    for k in out_ref:
        np.testing.assert_allclose(out[k].numpy(), out_ref[k].numpy(), rtol=1e-5, atol=1e-4)


def test_ppyolo_r50vd_dcn_swaps_to_hubcls_resnet():
    """PP-YOLO: ResNet50-vd with DCNv2 in res5, norm_decay 0, trainable sync_bn norms (plain BN on
    this CPU, as PaddleDetection falls back), PPYOLOFPN + YOLOv3 head + Matrix NMS."""
    ref, ours = build_both("ppyolo_r50vd_dcn_1x_coco.yml")
    assert ours.backbone.name == "ResNet50_vd" and ours.backbone.dcn_v2_stages == [3]
    assert type(ours.backbone.model.blocks[13].conv1.conv).__name__ == "DeformableConvV2"
    eval_forward_identical(ref, ours, 256)


@pytest.mark.slow
def test_faster_rcnn_x101_vd_64x4d_swaps_to_hubcls_resnet():
    """Faster R-CNN + FPN on ResNeXt101-vd 64x4d (groups=64, base_width=4): hubcls's ResNeXt101_vd_64x4d."""
    ref, ours = build_both("faster_rcnn_x101_vd_64x4d_fpn_1x_coco.yml")
    assert ours.backbone.name == "ResNeXt101_vd_64x4d"
    eval_forward_identical(ref, ours, 160)
