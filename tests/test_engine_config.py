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
        "DataLoader.Train.dataset.transform_ops[2].AutoAugment.fillcolor=[0, 0, 0]",
        "Arch.pretrained=true",
    ])
    assert cfg["Global"]["epochs"] == 7 and isinstance(cfg["Global"]["epochs"], int)
    assert cfg["Optimizer"]["lr"]["learning_rate"] == pytest.approx(0.05)
    assert cfg["Global"]["image_shape"] == [3, 64, 64]
    assert cfg["Global"]["pretrained_model"] is None
    ops = cfg["DataLoader"]["Train"]["dataset"]["transform_ops"]
    assert ops[0]["RandCropImage"]["size"] == 64 and ops[1]["RandFlipImage"]["flip_code"] == 0
    assert ops[2]["AutoAugment"] == {"fillcolor": [0, 0, 0]}
    assert cfg["Arch"]["pretrained"] is True
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


# ------------------------------------------------------------------ unknown keys (did-you-mean, --strict)
import gzip  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from hubcls.errors import ConfigWarning  # noqa: E402


@pytest.mark.parametrize("override, message", [
    ("Global.epoch=10", r"Global.epoch: unknown key \(did you mean Global.epochs\?\)"),
    ("Optimizer.momentun=0.8", r"Optimizer.momentun: unknown key \(did you mean Optimizer.momentum\?\).*Momentum takes: .*use_nesterov"),
    ("Optimizer.lr.warmup_epochs=2", r"Optimizer.lr.warmup_epochs: unknown key \(did you mean Optimizer.lr.warmup_epoch\?\)"),
    ("Loss.Train[0].CELoss.epsilom=0.2", r"Loss.Train\[0\].CELoss.epsilom: unknown key \(did you mean epsilon\?\)"),
    ("DataLoader.Train.dataset.transform_ops[0].RandCropImage.sise=3", r"RandCropImage.sise: unknown key \(did you mean size\?\)"),
    ("DataLoader.Train.sampler.batchsize=3", r"DataLoader.Train.sampler.batchsize: unknown key \(did you mean DataLoader.Train.sampler.batch_size\?\)"),
    ("Globl.epochs=3", r"Globl: unknown key \(did you mean Global\?\)"),
    ("EMA.decy=0.9", r"EMA.decy: unknown key \(did you mean EMA.decay\?\)"),
])
def test_unknown_keys_warn_with_the_closest_known_key_and_strict_refuses(override, message):
    with pytest.warns(ConfigWarning, match=message):
        cfg = load_config(BASE, [override])
    assert cfg["Global"]["epochs"] == 2  # the typo did not change what trains
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \(--strict\)"):
        load_config(BASE, [override], strict=True)


def test_known_config_has_no_warning_and_ignored_keys_are_listed():
    from hubcls.engine.config_schema import check_keys

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        cfg = load_config(BASE, ["Global.use_dali=False", "Global.to_static=False", "Global.update_freq=2"])
    kinds = {i.path: i.kind for i in check_keys(cfg)}
    assert kinds == {"Global.use_dali": "ignored", "Global.to_static": "ignored"}


PADDLECLAS_2X = json.loads(gzip.open(Path(__file__).parent / "data" / "paddleclas_configs.json.gz", "rt").read())["v2x"]


def test_every_paddleclas_2x_config_loads_without_unknown_keys():
    """PaddleClas 2.x ImageNet configs (develop) of every architecture hubcls has: each loads and
    validates (incl. Arch kwargs), and no key is unknown (each is read or listed as ignored)."""
    from hubcls.engine.config_schema import check_keys

    configs = PADDLECLAS_2X["configs"]
    assert len(configs) == 130
    failures, unknown = {}, {}
    for path, raw in sorted(configs.items()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConfigWarning)
                cfg = load_config(raw)
        except ConfigError as exc:
            failures[path] = str(exc)
            continue
        bad = [i.path for i in check_keys(cfg) if i.kind == "unknown"]
        if bad:
            unknown[path] = bad
    assert unknown == {}
    # the model kwargs of the "ultra" (input_image_channel, data_format NHWC) and dbb configs included
    assert failures == {}


def test_ignored_keys_are_documented_in_training_md():
    from hubcls.engine.config_legacy import IGNORED
    from hubcls.engine.config_schema import ignored_key_table

    doc = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    missing = [key for key, _ in ignored_key_table() if f"`{key}`" not in doc]
    missing += [key for key in IGNORED if f"`{key}`" not in doc]
    assert missing == []


def test_unknown_model_kwargs_are_a_config_error_naming_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"Arch.drop_rat: ResNet18 does not take 'drop_rat' \(did you mean Arch.drop_rate\?\); "
                                          r"its arguments are: data_format, drop_rate, input_image_channel, layer_type, use_first_short_conv"):
        load_config(BASE, ["Arch.drop_rat=0.1"])
    with pytest.raises(ConfigError, match=r"Arch.input_image_chanel: .*its arguments are:"):
        load_config(BASE, ["Arch.name=MobileNetV3_large_x1_0", "Arch.input_image_chanel=4"])
    # a key the architecture name fixes
    with pytest.raises(ConfigError, match=r"Arch.layers: fixed by the architecture name ResNet18"):
        load_config(BASE, ["Arch.layers=50"])
    from hubcls.engine.trainer import build_model

    cfg = load_config(BASE, ["Arch.drop_rate=0.1"])
    assert build_model(cfg, log=lambda *_: None).num_classes == 10


def test_missing_class_id_map_file_warns(tmp_path):
    from hubcls.engine.infer import class_names_from_config

    cfg = {"Infer": {"PostProcess": {"name": "Topk", "class_id_map_file": str(tmp_path / "nope.txt")}}}
    with pytest.warns(UserWarning, match=r"Infer.PostProcess.class_id_map_file: .*nope.txt does not exist; "
                                         r"predictions are shown as class ids"):
        assert class_names_from_config(cfg) is None
    (tmp_path / "labels.txt").write_text("0 daisy\n1 rose\n")
    cfg["Infer"]["PostProcess"]["class_id_map_file"] = str(tmp_path / "labels.txt")
    assert class_names_from_config(cfg) == ["daisy", "rose"]


def test_batch_ops_and_dataset_arguments_are_checked():
    with pytest.warns(ConfigWarning, match=r"MixupOperator.alhpa: unknown key \(did you mean alpha\?\)"):
        load_config(BASE, ["DataLoader.Train.dataset.batch_transform_ops=[{MixupOperator: {alhpa: 0.2}}]"])
    with pytest.warns(ConfigWarning, match=r"DataLoader.Train.dataset.cls_labl_path: unknown key "
                                           r"\(did you mean DataLoader.Train.dataset.cls_label_path\?\)"):
        load_config(BASE, ["DataLoader.Train.dataset.name=ImageNetDataset", "DataLoader.Train.dataset.cls_labl_path=x"])


def test_an_unsupported_sampler_is_reported():
    with pytest.warns(ConfigWarning, match=r"DataLoader.Train.sampler.name: 'MultiScaleSampler' is not supported"):
        load_config(BASE, ["DataLoader.Train.sampler.name=MultiScaleSampler"])
    with pytest.raises(ConfigError, match="MultiScaleSampler"):
        load_config(BASE, ["DataLoader.Train.sampler.name=MultiScaleSampler"], strict=True)
