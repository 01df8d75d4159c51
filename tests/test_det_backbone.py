"""Detection backbone adapter (hubcls.det): PaddleDetection interface, PSS-DET settings, weights."""
import numpy as np
import paddle
import pytest

from hubcls import create_model
from hubcls.det import DeformableConvV2, HubclsBackbone, HubclsResNet
from hubcls.errors import ConfigError
from hubcls.models._weights import candidate_schemes

paddle.set_device("cpu")


def _randomise_bn(model, seed=0):
    # Non-trivial BN statistics, so that "uses running stats" is distinguishable from batch stats.
    rng = np.random.default_rng(seed)
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            c = layer._mean.shape[0]
            layer._mean.set_value(rng.normal(0, 0.1, c).astype("float32"))
            layer._variance.set_value(rng.uniform(0.5, 2.0, c).astype("float32"))


@pytest.fixture(scope="module")
def r18_weights(tmp_path_factory):
    """A ResNet18_vd classification checkpoint in both PaddleClas key schemes."""
    paddle.seed(1)
    model = create_model("ResNet18_vd")
    _randomise_bn(model)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    d = tmp_path_factory.mktemp("w")
    legendary = d / "ResNet18_vd_legendary.pdparams"
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(legendary))
    scheme20 = candidate_schemes(model)["2.0"]
    assert scheme20["stem.0.conv.weight"] == "conv1_1._conv.weight"
    old = d / "ResNet18_vd_20.pdparams"
    paddle.save({scheme20[k]: paddle.to_tensor(v) for k, v in state.items()}, str(old))
    return state, legendary, old


def test_out_shape_and_forward_follow_ppdet_interface():
    b = HubclsResNet(depth=18, variant="d", return_idx=[1, 2, 3])
    assert [(s.channels, s.stride) for s in b.out_shape] == [(128, 8), (256, 16), (512, 32)]
    b.eval()
    feats = b({"image": paddle.randn([2, 3, 64, 96])})
    assert [tuple(f.shape) for f in feats] == [(2, 128, 8, 12), (2, 256, 4, 6), (2, 512, 2, 3)]


@pytest.mark.parametrize("which", ["legendary", "2.0"])
def test_classification_weights_load_in_either_scheme(r18_weights, which):
    state, legendary, old = r18_weights
    b = HubclsResNet(depth=18, variant="d", pretrained=str(legendary if which == "legendary" else old))
    got = {k: v.numpy() for k, v in b.model.state_dict().items()}
    for k, v in state.items():
        if k.startswith("fc."):
            continue  # the classifier is dropped in a backbone
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    # the features equal the classification model's own multi-scale features
    fe = create_model("ResNet18_vd", pretrained=str(legendary), features_only=True)
    fe.eval(), b.eval()
    x = paddle.randn([1, 3, 64, 64])
    for a, r in zip(b({"image": x}), fe(x)):
        np.testing.assert_allclose(a.numpy(), r.numpy(), atol=1e-5)


def test_freeze_at_lr_mult_and_frozen_bn(r18_weights):
    _, legendary, _ = r18_weights
    b = HubclsResNet(depth=18, variant="d", pretrained=str(legendary), freeze_at=0,
                     lr_mult_list=[0.05, 0.05, 0.1, 0.15], dcn_v2_stages=[-1])
    params = dict(b.model.named_parameters())
    # stem + res2 (blocks 0-1) frozen, res3.. trainable with their stage multiplier
    assert params["stem.0.conv.weight"].stop_gradient
    assert params["blocks.1.conv1.conv.weight"].stop_gradient
    assert not params["blocks.2.conv0.conv.weight"].stop_gradient
    assert params["blocks.2.conv0.conv.weight"].optimize_attr["learning_rate"] == 0.05
    assert params["blocks.5.conv0.conv.weight"].optimize_attr["learning_rate"] == 0.1
    assert params["blocks.7.conv1.conv.weight"].optimize_attr["learning_rate"] == 0.15
    # frozen BN: no gradient, and train mode uses the running statistics (same output as eval)
    assert params["blocks.7.conv1.bn.weight"].stop_gradient
    x = paddle.randn([2, 3, 64, 64])
    b.train()
    train_out = [f.numpy() for f in b({"image": x})]
    b.eval()
    eval_out = [f.numpy() for f in b({"image": x})]
    for a, e in zip(train_out, eval_out):
        np.testing.assert_allclose(a, e, atol=1e-5)
    # and gradients reach only the trainable stages
    b.train()
    loss = sum(f.mean() for f in b({"image": x}))
    loss.backward()
    assert params["blocks.7.conv1.conv.weight"].grad is not None
    assert params["blocks.0.conv0.conv.weight"].grad is None


def test_trainable_bn_when_not_frozen():
    b = HubclsResNet(depth=18, variant="d", freeze_at=-1, freeze_norm=False)
    _randomise_bn(b.model)
    x = paddle.randn([2, 3, 64, 64]) * 3 + 1
    b.train()
    a = b({"image": x})[-1].numpy()
    b.eval()
    e = b({"image": x})[-1].numpy()
    assert not np.allclose(a, e, atol=1e-3)  # batch statistics in training
    assert all(not p.stop_gradient for n, p in b.named_parameters() if not n.endswith(("_mean", "_variance")))


def test_dcn_v2_stages_swap_the_3x3_convs_and_keep_weight_names(r18_weights):
    _, legendary, _ = r18_weights
    b = HubclsResNet(depth=18, variant="d", pretrained=str(legendary), dcn_v2_stages=[1, 2, 3])
    blocks = b.model.blocks
    assert not isinstance(blocks[1].conv1.conv, DeformableConvV2)  # res2: plain
    assert all(isinstance(blocks[i].conv1.conv, DeformableConvV2) for i in range(2, 8))
    keys = set(b.model.state_dict())
    assert "blocks.2.conv1.conv.weight" in keys and "blocks.2.conv1.conv.conv_offset.weight" in keys


def test_deformable_conv_v2_matches_conv_with_zero_offsets_and_full_modulation():
    paddle.seed(3)
    conv = paddle.nn.Conv2D(8, 16, 3, stride=2, padding=1, bias_attr=False)
    x = paddle.randn([2, 8, 17, 15])
    ref = conv(x).numpy()
    dcn = DeformableConvV2(conv)
    n_off = dcn._n_offset
    bias = np.zeros(3 * 9, "float32")
    bias[n_off:] = 30.0  # sigmoid(30) == 1: modulation off
    dcn.conv_offset.bias.set_value(bias)
    np.testing.assert_allclose(dcn(x).numpy(), ref, atol=1e-4)
    # the default init (zero offsets, modulation sigmoid(0) = 0.5) halves the response, as DCNv2 does
    dcn.conv_offset.bias.set_value(np.zeros(27, "float32"))
    np.testing.assert_allclose(dcn(x).numpy(), 0.5 * ref, atol=1e-4)


def test_any_zoo_model_through_features_only():
    b = HubclsBackbone("MobileNetV3_small_x1_0", return_idx=[1, 2, 3], freeze_at=-1)
    b.eval()
    feats = b({"image": paddle.randn([1, 3, 96, 96])})
    assert [f.shape[1] for f in feats] == [s.channels for s in b.out_shape]
    assert [96 // f.shape[2] for f in feats] == [s.stride for s in b.out_shape]


@pytest.mark.parametrize("kwargs, match", [
    (dict(norm_type="group_norm"), "norm_type"),
    (dict(return_idx=[4]), "return_idx"),
    (dict(lr_mult_list=[1.0, 1.0]), "lr_mult_list"),
    (dict(variant="e"), "variant"),
    (dict(depth=42), "depth"),
    (dict(groups=32, base_width=4), "basic blocks"),
    (dict(ch_in=33), "ch_in"),
    (dict(groups=3, base_width=7, depth=50, pretrained=True), "no zoo model"),
])
def test_bad_settings_are_clear_errors(kwargs, match):
    args = dict(depth=18, variant="d")
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        HubclsResNet(**args)


# ---------------------------------------------------------------------------------------------
# PaddleDetection's own ResNet / SENet (pip paddledet 2.6): every argument with its meaning. The
# peer gets random weights (BN statistics and DCN offsets included), its state_dict is loaded into
# HubclsResNet through the "ppdet" key scheme, and the feature maps must be identical.
PPDET_CASES = [
    dict(depth=50, variant="d", return_idx=[1, 2, 3], dcn_v2_stages=[3], freeze_at=-1, freeze_norm=False,
         norm_decay=0.0),                                                  # PP-YOLO r50vd_dcn
    dict(depth=18, variant="a"),
    dict(depth=50, variant="a", num_stages=3, return_idx=[0, 2]),
    dict(depth=34, variant="c", ch_in=32),
    dict(depth=50, variant="b", groups=32, base_width=4),                 # -> zoo ResNeXt50_32x4d
    dict(depth=50, variant="d", groups=32, base_width=8, lr_mult_list=[0.1, 0.2, 0.3, 0.4]),
    dict(depth=34, variant="d", std_senet=True),                          # -> zoo SE_ResNet34_vd
    dict(depth=50, variant="b", groups=16, base_width=4, std_senet=True, dcn_v2_stages=[1, 2], ch_in=48),
]


def _ppdet_peer(cls, kwargs, seed=0):
    from test_models_parity import randomize

    paddle.seed(seed)
    with paddle.utils.unique_name.guard():
        peer = cls(**kwargs)
    randomize(peer, seed)
    rng = np.random.RandomState(seed + 1)
    for n, p in peer.named_parameters():
        if "conv_offset" in n:  # DCNv2 offsets start at zero; make them matter
            p.set_value((rng.standard_normal(p.shape) * 0.01).astype("float32"))
    return peer


def _same_features(peer, ours, shape=(1, 3, 96, 128)):
    peer.eval()
    ours.eval()
    x = paddle.to_tensor(np.random.RandomState(7).standard_normal(shape).astype("float32"))
    with paddle.no_grad():
        a, b = peer({"image": x}), ours({"image": x})
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(v.numpy(), u.numpy(), rtol=1e-5, atol=1e-5 * float(np.abs(u.numpy()).max()))


@pytest.mark.parametrize("kwargs", PPDET_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_every_ppdet_resnet_argument(kwargs, tmp_path):
    pytest.importorskip("ppdet", reason="pip paddledet==2.6.0 (tests/install_peers.sh) not installed")
    from ppdet.modeling.backbones.resnet import ResNet

    peer = _ppdet_peer(ResNet, kwargs)
    path = tmp_path / "ppdet_backbone.pdparams"
    paddle.save(peer.state_dict(), str(path))
    ours = HubclsResNet(pretrained=str(path), **kwargs)
    assert [(s.channels, s.stride) for s in ours.out_shape] == [(s.channels, s.stride) for s in peer.out_shape]
    _same_features(peer, ours)
    # the same freezing and learning rates as PaddleDetection's parameters
    ref = {n: (p.stop_gradient, p.optimize_attr["learning_rate"]) for n, p in peer.named_parameters()}
    from hubcls.models._weights import candidate_schemes

    ppdet_name = candidate_schemes(ours.model)["ppdet"]
    for n, p in ours.model.named_parameters():
        if n.endswith(("_mean", "_variance")):  # BN statistics: never optimised
            continue
        assert (p.stop_gradient, p.optimize_attr["learning_rate"]) == ref[ppdet_name[n]], n


def test_hubcls_senet_is_ppdet_senet(tmp_path):
    pytest.importorskip("ppdet", reason="pip paddledet==2.6.0 (tests/install_peers.sh) not installed")
    from ppdet.modeling.backbones.senet import SENet

    from hubcls.det import HubclsSENet

    kwargs = dict(depth=50, variant="d", groups=32, base_width=4)  # SE_ResNeXt50_vd_32x4d
    peer = _ppdet_peer(SENet, kwargs)
    path = tmp_path / "senet.pdparams"
    paddle.save(peer.state_dict(), str(path))
    ours = HubclsSENet(pretrained=str(path), **kwargs)
    assert ours.name == "SE_ResNeXt50_vd_32x4d"
    _same_features(peer, ours)


def test_defaults_are_ppdet_defaults():
    """A PaddleDetection config that leaves an argument out gets PaddleDetection's default."""
    ppdet_resnet = pytest.importorskip("ppdet.modeling.backbones.resnet")
    import inspect

    theirs = inspect.signature(ppdet_resnet.ResNet.__init__).parameters
    ours = inspect.signature(HubclsResNet.__init__).parameters
    for name, p in theirs.items():
        if name == "self":
            continue
        assert name in ours, f"HubclsResNet does not take PaddleDetection's {name!r}"
        default = ours[name].default
        assert list(default) == list(p.default) if isinstance(p.default, (list, tuple)) else default == p.default, name


def test_sync_bn_falls_back_to_batch_norm_on_cpu_and_norm_decay():
    """norm_type='sync_bn' on CPU (or one process) keeps plain BatchNorm, as PaddleDetection does:
    PP-YOLO's config runs its eval forward on a CPU. norm_decay is the norm layers' own L2 decay."""
    b = HubclsResNet(depth=18, variant="d", norm_type="sync_bn", freeze_norm=False, norm_decay=0.0)
    norms = [layer for layer in b.model.sublayers() if isinstance(layer, paddle.nn.layer.norm._BatchNormBase)]
    assert norms and not any(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in norms)
    b.eval()
    assert len(b({"image": paddle.randn([1, 3, 64, 64])})) == 4
    for layer in norms:
        for p in (layer.weight, layer.bias):
            assert isinstance(p.regularizer, paddle.regularizer.L2Decay) and p.regularizer._coeff == 0.0
    decayed = HubclsResNet(depth=18, norm_decay=1e-4)
    w = next(layer for layer in decayed.model.sublayers() if isinstance(layer, paddle.nn.BatchNorm2D)).weight
    assert w.regularizer._coeff == pytest.approx(1e-4)
    # a conv weight keeps the optimizer's own decay
    assert decayed.model.stem[0].conv.weight.regularizer is None
