"""Config loading, -o overrides and validation errors (key path + allowed values)."""
import pytest

from hubcls.engine.config import apply_override, load_config, shipped_configs
from hubcls.errors import ConfigError

BASE = {
    "Global": {"epochs": 2},
    "Arch": {"name": "ResNet18", "class_num": 10},
    "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.1}},
    "Loss": {"Train": [{"CELoss": {"epsilon": 0.1}}]},
    "DataLoader": {"Train": {"dataset": {"transform_ops": [{"RandCropImage": {"size": 224}}, {"RandFlipImage": {"flip_code": 1}}, {"AutoAugment": None}]}}},
    "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 5]}}]},
}


def test_override_types_nesting_and_list_indices():
    cfg = load_config(BASE, [
        "Global.epochs=7",
        "Optimizer.lr.learning_rate=0.05",
        "Global.image_shape=[3, 64, 64]",
        "Global.pretrained_model=null",
        "Global.device=cpu",
        "DataLoader.Train.dataset.transform_ops[0].RandCropImage.size=64",
        "DataLoader.Train.dataset.transform_ops.1.RandFlipImage.flip_code=0",
        "DataLoader.Train.dataset.transform_ops[2].AutoAugment.prob=0.5",
        "Arch.new_key=true",
    ])
    assert cfg["Global"]["epochs"] == 7 and isinstance(cfg["Global"]["epochs"], int)
    assert cfg["Optimizer"]["lr"]["learning_rate"] == pytest.approx(0.05)
    assert cfg["Global"]["image_shape"] == [3, 64, 64]
    assert cfg["Global"]["pretrained_model"] is None
    ops = cfg["DataLoader"]["Train"]["dataset"]["transform_ops"]
    assert ops[0]["RandCropImage"]["size"] == 64 and ops[1]["RandFlipImage"]["flip_code"] == 0
    assert ops[2]["AutoAugment"] == {"prob": 0.5}
    assert cfg["Arch"]["new_key"] is True
    assert BASE["Global"]["epochs"] == 2  # the input dict is not modified


@pytest.mark.parametrize("override, fragment", [
    ("Global.epochs", "KEY=VALUE"),
    ("DataLoader.Train.dataset.transform_ops[5].X.size=1", "out of range"),
    ("Global.epochs.x=1", "is a value"),
    ("DataLoader.Train.dataset.transform_ops.name=1", "is a list"),
])
def test_bad_overrides_name_the_path(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(BASE, [override])


@pytest.mark.parametrize("override, fragment", [
    ("Optimizer.name=Adagrad9", r"Optimizer.name: 'Adagrad9' is not one of .*Momentum"),
    ("Optimizer.lr.name=Cosin", r"Optimizer.lr.name: 'Cosin' is not one of .*Cosine"),
    ("Global.epochs=0", r"Global.epochs must be >= 1"),
    ("Global.epochs=ten", r"Global.epochs must be an integer"),
    ("Global.device=tpu", r"Global.device: 'tpu' is not one of auto, cpu, gpu"),
    ("Arch.class_num=-3", r"Arch.class_num must be a positive integer"),
    ("Loss.Train[0]={FocalLossX: {}}", r"Loss.Train\[0\]: 'FocalLossX' is not one of .*CELoss"),
    ("Metric.Eval[0].TopkAcc.topk=[0]", r"Metric.Eval\[0\].TopkAcc.topk must be positive"),
    ("Arch.lr_mult_list=[1, x]", r"Arch.lr_mult_list must be a list"),
    ("EMA={decay: 1.5}", r"EMA.decay must be in \(0, 1\)"),
    ("AMP={level: O3}", r"AMP.level: 'O3' is not one of O1, O2"),
])
def test_validation_errors_name_key_and_allowed_values(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(BASE, [override])


def test_missing_arch_name_and_unknown_config():
    with pytest.raises(ConfigError, match="Arch.name is required"):
        load_config({"Global": {"epochs": 1}, "Arch": {}})
    with pytest.raises(ConfigError, match="not found.*shipped configs"):
        load_config("no_such_config_xyz")


def test_shipped_configs_load_and_validate():
    names = shipped_configs()
    for required in ("quickstart", "ResNet50_vd", "MobileNetV3_large_x1_0"):
        assert required in names
    for n in names:
        cfg = load_config(n)
        assert cfg["Arch"]["name"]
    r50 = load_config("ResNet50_vd")
    # PaddleClas's ImageNet recipe
    assert r50["Optimizer"]["name"] == "Momentum" and r50["Optimizer"]["lr"]["learning_rate"] == 0.1
    assert r50["Optimizer"]["regularizer"]["coeff"] == pytest.approx(7e-5)
    assert r50["Global"]["epochs"] == 200 and r50["Loss"]["Train"][0]["CELoss"]["epsilon"] == 0.1
    mb = load_config("MobileNetV3_large_x1_0.yaml", ["Global.epochs=3"])
    assert mb["Global"]["epochs"] == 3 and mb["Optimizer"]["lr"]["learning_rate"] == 1.3


def test_apply_override_creates_sections():
    cfg = {"Global": {}}
    apply_override(cfg, "EMA.decay=0.99")
    assert cfg["EMA"] == {"decay": 0.99}
