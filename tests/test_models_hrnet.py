"""HRNet / SE-HRNet: parity with pip paddleclas 2.6 (legendary names), the release/2.0 key scheme
(recorded 2.0 names; the official HRNet_*_C files use it), multi-branch fusion and the backbone API."""
from __future__ import annotations

import numpy as np
import pytest
from _zoo_peer_classic import check_parity, keys_20, random_input
from _zoo_peer_mobile import ppcls_module

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.models import hrnet  # noqa: E402

F = paddle.nn.functional

# Plain parity for every HRNet width: tests/test_models_all.py (generic). Here: calibrated weights
# (random HRNets give 1e11 logits, where 1e-4 says little) for the widest, slow.
@pytest.mark.slow
def test_parity_calibrated_w64(tmp_path):
    check_parity(tmp_path, "legendary_models.hrnet", "HRNet_W64_C", size=64)


def _se_peer(width):
    def build():
        mod = ppcls_module("arch.backbone.legendary_models.hrnet")
        # pip paddleclas's SE_HRNet_W*_C builders look up URLs it lacks: build the class directly
        with paddle.utils.unique_name.guard():
            return mod.HRNet(width=width, has_se=True, stages_pattern=mod.MODEL_STAGES_PATTERN["HRNet"])
    return build


def test_se_hrnet_parity(tmp_path):
    # SE_HRNet_W64_C(_ssld)'s code path at width 18
    _, _, ours = check_parity(tmp_path, None, "SE_HRNet_W18_C", size=64, state_fn=_se_peer(18),
                              ours_fn=lambda: hrnet.HRNet(width=18, has_se=True))
    assert sum(1 for k in ours.state_dict() if ".se.fc_squeeze." in k) > 0


def _mapping_20(model):
    m = hrnet.key_map_20(model)
    return {m[k]: tuple(v.shape) for k, v in model.state_dict().items()}


def test_20_key_map_matches_release_20_names():
    ours = hubcls.create_model("HRNet_W18_C")
    assert _mapping_20(ours) == dict(keys_20("HRNet_W18_C"))
    # map_20_keys is the inverse
    assert set(hrnet.map_20_keys({k: None for k, _ in keys_20("HRNet_W18_C")})) == set(ours.state_dict())


@pytest.mark.slow
def test_20_key_map_se_w64():
    ours = hubcls.create_model("SE_HRNet_W64_C_ssld")
    assert _mapping_20(ours) == dict(keys_20("SE_HRNet_W64_C"))


def test_loads_release_20_file(tmp_path):
    """A file in the 2.0 names (the recorded names paired with paddleclas 2.6's tensors by
    position, independent of our key map) loads through create_model and reproduces the peer."""
    recorded = keys_20("HRNet_W18_C")

    def rename(state):
        assert len(state) == len(recorded)
        out = {}
        for (k, v), (k20, shape) in zip(state.items(), recorded):
            assert tuple(v.shape) == shape and k.rsplit(".", 1)[1] == k20.rsplit(".", 1)[1], (k, k20)
            out[k20] = v
        return out

    check_parity(tmp_path, "legendary_models.hrnet", "HRNet_W18_C", name="HRNet_W18_C_ssld", rename=rename)


def _conv_bn(layer, x):
    """Reference conv -> BN(eval) -> act of a ConvBNLayer, from its raw parameters."""
    conv, bn = layer.conv, layer.bn
    y = F.conv2d(x, conv.weight, stride=conv._stride, padding=conv._padding)
    scale = bn.weight / paddle.sqrt(bn._variance + bn._epsilon)
    y = y * scale.reshape([1, -1, 1, 1]) + (bn.bias - bn._mean * scale).reshape([1, -1, 1, 1])
    return F.relu(y) if layer.act is not None else y


def test_fuse_layers_three_branches():
    """Branch i sums every branch j resampled to its resolution: j > i through 1x1 conv + nearest
    x2^(j-i) upsampling, j < i through (i - j) strided 3x3 convs (ReLU between, none after)."""
    paddle.seed(3)
    chans = [4, 8, 16]
    fuse = hrnet.FuseLayers(chans)
    for p in fuse.parameters():
        p.set_value(paddle.randn(p.shape) * 0.2)
    fuse.eval()
    rng = np.random.default_rng(0)
    xs = [paddle.to_tensor(rng.standard_normal((2, c, 16 // 2 ** i, 16 // 2 ** i)).astype("float32"))
          for i, c in enumerate(chans)]
    with paddle.no_grad():
        outs = fuse(xs)
    L = fuse.residual_func_list
    # creation order: (0,1) (0,2) | (1,0) (1,2) | (2,0,k=0) (2,0,k=1) (2,1)
    up = lambda t, f: paddle.to_tensor(np.repeat(np.repeat(t.numpy(), f, axis=2), f, axis=3))  # noqa: E731
    with paddle.no_grad():
        ref0 = xs[0] + up(_conv_bn(L[0], xs[1]), 2) + up(_conv_bn(L[1], xs[2]), 4)
        ref1 = xs[1] + _conv_bn(L[2], xs[0]) + up(_conv_bn(L[3], xs[2]), 2)
        ref2 = xs[2] + _conv_bn(L[5], _conv_bn(L[4], xs[0])) + _conv_bn(L[6], xs[1])
    assert L[4].act is not None and L[5].act is None and L[2].act is None
    for got, ref in zip(outs, (ref0, ref1, ref2)):
        np.testing.assert_allclose(got.numpy(), F.relu(ref).numpy(), rtol=1e-5, atol=1e-5)


def test_features_only_branches():
    m = hubcls.create_model("HRNet_W18_C", features_only=True)
    m.eval()
    assert m.channels() == [18, 36, 72, 144] and m.reduction() == [4, 8, 16, 32]
    with paddle.no_grad():
        feats = m(paddle.to_tensor(random_input(64, batch=1)))
    assert [tuple(f.shape) for f in feats] == [(1, 18, 16, 16), (1, 36, 8, 8), (1, 72, 4, 4), (1, 144, 2, 2)]


def test_backbone_api():
    m = hubcls.create_model("HRNet_W18_C", num_classes=5)
    m.eval()
    x = paddle.to_tensor(random_input(64, batch=2))
    with paddle.no_grad():
        f = m.forward_features(x)
        assert tuple(f.shape) == (2, 2048, 2, 2)
        np.testing.assert_allclose(m.forward_head(f).numpy(), m(x).numpy(), rtol=1e-6)
        m.reset_classifier(0)
        assert tuple(m(x).shape) == (2, 2048)
    cfg = hubcls.models.resolve("hrnet_w48_c_ssld")
    assert cfg.arch == "HRNet_W48_C" and cfg.key_scheme == "2.0" and cfg.url.endswith("HRNet_W48_C_ssld_pretrained.pdparams")


def test_pretrained_true_downloads_release_20_file(tmp_path, monkeypatch):
    """create_model(..., pretrained=True) end to end: the official release/2.0 URL (served by a
    loopback stand-in of the model host) holds a 2.0-named file; it is downloaded, cached, its key
    scheme detected and renamed, and the model reproduces paddleclas's logits."""
    from _hub_helpers import StaticServer
    from _zoo_peer_classic import calibrate, logits
    from _zoo_peer_mobile import build_peer

    peer = build_peer("legendary_models.hrnet", "HRNet_W18_C")
    x = random_input(64)
    calibrate(peer, 64, x=x)
    recorded = keys_20("HRNet_W18_C")
    state = {k20: v for (k20, _), v in zip(recorded, peer.state_dict().values())}
    host = tmp_path / "host"
    (host / "dygraph").mkdir(parents=True)
    paddle.save(state, str(host / "dygraph" / "HRNet_W18_C_ssld_pretrained.pdparams"))
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HUBCLS_OFFLINE", raising=False)
    monkeypatch.setenv("HUBCLS_ALLOW_HTTP", "1")  # the stand-in host is plain http on 127.0.0.1
    with StaticServer(host) as srv:
        monkeypatch.setenv("HUBCLS_MODEL_ENDPOINT", srv.url)
        ours = hubcls.create_model("hrnet_w18_c_imagenet_ssld", pretrained=True)
        assert srv.requests == ["/dygraph/HRNet_W18_C_ssld_pretrained.pdparams"]
    ours.eval()
    np.testing.assert_allclose(logits(ours, x), logits(peer, x), atol=1e-4)
    from hubcls._download import cache_path

    assert cache_path(hubcls.models.resolve("HRNet_W18_C_ssld").url).is_file()
