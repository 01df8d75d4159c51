"""hubcls.models.profile: by name and input size, its counting conventions against Paddle's own
per-layer counting functions, and the ``hubcls models`` table. The check of every registered model
against the zoo table (params_m_today / macs_g_today) is in tests/test_models_all.py, on the model
instance the other generic checks share."""
from __future__ import annotations

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")
from hubcls.models import profile  # noqa: E402


def test_profile_by_name_and_size():
    small = profile("ResNet18", input_size=112)
    full = profile("ResNet18")
    assert small["params"] == full["params"] == 11703464  # paddleclas ResNet18 (zoo table: 11.70 M)
    assert full["input_size"] == (224, 224) and small["input_size"] == (112, 112)
    # convolutions scale with area; the classifier does not
    assert 3.5 < full["macs"] / small["macs"] < 4.01


def test_counting_conventions_match_paddle_flops_functions():
    """Run paddle.hapi.dynamic_flops's own per-layer count functions (paddle.flops itself fails to
    print its table on Paddle 3.3) on a model with every counted layer type; totals must agree."""
    from paddle.hapi import dynamic_flops as df

    from hubcls.models._profile import count_macs

    nn = paddle.nn

    class Net(nn.Layer):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2D(3, 8, 3, stride=2, padding=1)            # with bias
            self.bn = nn.BatchNorm2D(8)
            self.c2 = nn.Conv2D(8, 16, 3, padding=1, groups=4, bias_attr=False)
            self.relu = nn.ReLU()
            self.lrelu = nn.LeakyReLU(0.1)
            self.pool = nn.AvgPool2D(2, 2)
            self.gap = nn.AdaptiveAvgPool2D(1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.relu(self.bn(self.c1(x)))
            x = self.pool(self.lrelu(self.c2(x)))
            return self.fc(self.gap(x).flatten(1))

    net = Net()
    net.eval()
    totals = []

    def make(fn):
        def hook(m, x, y):
            m.total_ops = paddle.zeros([1], dtype="int64")
            fn(m, x, y)
            totals.append(int(np.asarray(m.total_ops).sum()))
        return hook

    handles = [layer.register_forward_post_hook(make(df.register_hooks[type(layer)]))
               for layer in net.sublayers() if type(layer) in df.register_hooks]
    with paddle.no_grad():
        net(paddle.zeros([1, 3, 32, 32]))
    for h in handles:
        h.remove()
    assert sum(totals) > 0
    assert count_macs(net, (32, 32)) == sum(totals)


def test_cli_models_table(capsys):
    from hubcls.cli import main

    assert main(["models", "resnet50*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "params(M)", "MACs(G)", "size", "top-1", "weights"]
    rows = {ln.split()[0]: ln.split() for ln in out[2:] if ln and not ln[0].isdigit()}
    assert rows["ResNet50_vd_ssld"] == ["ResNet50_vd_ssld", "25.63", "4.35", "224", "0.824", "yes"]
    assert rows["ResNet50_vd_10w"][-1] == "yes"
    assert all(name.lower().startswith("resnet50") for name in rows)
    assert main(["models", "ResNet200*", "--no-weights"]) == 0
    assert "ResNet200 " in capsys.readouterr().out
    assert main(["models", "nothing_like_this*"]) == 1


def test_cli_models_measure_json(capsys):
    import json

    from hubcls.cli import main

    assert main(["models", "SE_ResNet18_vd", "--measure", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "SE_ResNet18_vd" and row["weights"] is True
    assert abs(row["params_m"] - 11.81) < 0.01 and abs(row["macs_g"] - 2.07) < 0.01
