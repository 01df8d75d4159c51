"""Entry-point plugins: the loader's rules on generated distributions, and the real example plugin
(plugins/hubcls-plugin-pplcnet) pip-installed into a throw-away target directory."""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from hubcls.errors import RegistryError
from hubcls.plugins import PLUGIN_API_VERSION, PluginWarning, discover, load_entry_points
from hubcls.registry import Registry

REPO = Path(__file__).resolve().parents[1]
PLUGIN_SRC = REPO / "plugins" / "hubcls-plugin-pplcnet"


# ------------------------------------------------------------------ generated distributions
def make_dist(root: Path, name: str, entry_points: dict, modules: dict, version: str = "1.0") -> None:
    """Write an installed distribution (dist-info with METADATA + entry_points.txt) and its modules."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for fname, src in modules.items():
        (root / fname).write_text(textwrap.dedent(src))


@pytest.fixture()
def group(tmp_path, monkeypatch):
    """A fresh entry-point group name + a sys.path entry to install distributions into."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    return f"hubcls_test.{uuid.uuid4().hex[:8]}", root


def _mod() -> str:
    return f"plug_{uuid.uuid4().hex[:8]}"


def test_entry_points_load_lazily_on_first_lookup(group):
    g, root = group
    mod = _mod()
    make_dist(root, "lazy-plugin", {g: {"Widget": f"{mod}:Widget"}},
              {f"{mod}.py": "import builtins\nbuiltins._hubcls_lazy_imported = True\nclass Widget: pass\n"})
    import builtins

    builtins._hubcls_lazy_imported = False
    reg = Registry("widget", on_first_lookup=lambda r: load_entry_points(g, r))
    assert [r.name for r in discover(g)] == ["Widget"]
    assert builtins._hubcls_lazy_imported is False  # discovery does not import
    cls = reg.get("widget")  # case-insensitive, triggers the load
    assert builtins._hubcls_lazy_imported is True and cls.__name__ == "Widget"
    assert reg.origin("Widget").startswith("distribution lazy-plugin 1.0")


def test_duplicate_name_across_distributions_names_both(group):
    g, root = group
    m1, m2 = _mod(), _mod()
    make_dist(root, "alpha-plugin", {g: {"Same": f"{m1}:f"}}, {f"{m1}.py": "def f(): pass\n"})
    make_dist(root, "beta-plugin", {g: {"same": f"{m2}:f"}}, {f"{m2}.py": "def f(): pass\n"}, version="2.0")
    with pytest.raises(RegistryError) as ei:
        load_entry_points(g, Registry("thing"))
    msg = str(ei.value)
    assert "alpha-plugin 1.0" in msg and "beta-plugin 2.0" in msg and "'same'" in msg.lower()


def test_clash_with_a_builtin_names_the_distribution(group):
    g, root = group
    m = _mod()
    make_dist(root, "clash-plugin", {g: {"Builtin": f"{m}:f"}}, {f"{m}.py": "def f(): pass\n"})
    reg = Registry("thing")

    @reg.register(name="Builtin")
    def builtin():
        pass

    with pytest.raises(RegistryError, match="clash-plugin"):
        load_entry_points(g, reg)
    assert reg.get("builtin") is builtin  # the built-in was not replaced


def test_a_clash_fails_every_lookup_not_just_the_first(group):
    g, root = group
    m = _mod()
    make_dist(root, "clash-plugin", {g: {"builtin": f"{m}:f"}}, {f"{m}.py": "def f(): pass\n"})
    reg = Registry("thing", group=g)
    reg.register(lambda: None, name="Builtin")
    for _ in range(2):
        with pytest.raises(RegistryError, match="clash-plugin 1.0.*already means thing 'Builtin'"):
            reg.get("Builtin")


def test_broken_plugin_warns_and_the_rest_keeps_working(group):
    g, root = group
    good, bad = _mod(), _mod()
    make_dist(root, "good-plugin", {g: {"Good": f"{good}:f"}}, {f"{good}.py": "def f(): return 42\n"})
    make_dist(root, "bad-plugin", {g: {"Bad": f"{bad}:f", "Missing": "no_such_module_xyz:f"}},
              {f"{bad}.py": "raise RuntimeError('plugin is broken')\n"})
    reg = Registry("thing", on_first_lookup=lambda r: load_entry_points(g, r))
    with pytest.warns(PluginWarning) as rec:
        assert reg.get("Good")() == 42
    texts = " | ".join(str(w.message) for w in rec)
    assert "bad-plugin" in texts and "plugin is broken" in texts and "no_such_module_xyz" in texts
    assert "Bad" not in reg and "Good" in reg


def test_plugin_api_version_is_checked(group):
    g, root = group
    old, ok = _mod(), _mod()
    make_dist(root, "old-plugin", {g: {"Old": f"{old}:f"}}, {f"{old}.py": "HUBCLS_PLUGIN_API = 99\ndef f(): pass\n"})
    make_dist(root, "ok-plugin", {g: {"Ok": f"{ok}:f"}},
              {f"{ok}.py": f"HUBCLS_PLUGIN_API = {PLUGIN_API_VERSION}\ndef f(): pass\n"})
    reg = Registry("thing")
    with pytest.warns(PluginWarning, match=r"HUBCLS_PLUGIN_API=99.*implements API 1"):
        records = load_entry_points(g, reg)
    status = {r.name: r.status for r in records}
    assert status == {"Old": "incompatible", "Ok": "loaded"}
    assert "Ok" in reg and "Old" not in reg


def test_a_registry_with_a_group_reads_it_on_first_lookup(group):
    """The one loader: any Registry(kind, group=...) fills itself from its entry-point group."""
    g, root = group
    m = _mod()
    make_dist(root, "loss-plugin", {g: {"FocalLoss": f"{m}:FocalLoss"}},
              {f"{m}.py": "class FocalLoss:\n    def __init__(self, gamma=2.0):\n        self.gamma = gamma\n"})
    reg = Registry("loss", group=g)

    @reg.register(name="CELoss")
    class CELoss:
        pass

    assert not reg._looked_up  # registering does not read the plugins
    assert reg.build("focalloss", {"gamma": 0.5}, where="Loss.Train[0]").gamma == 0.5
    assert reg.names() == ["CELoss", "FocalLoss"]
    assert reg.origin("FocalLoss").startswith("distribution loss-plugin 1.0")


@pytest.mark.parametrize("exc", ["SystemExit(3)", "SystemExit('bye')", "BaseException('odd')", "GeneratorExit()"])
def test_sys_exit_or_base_exception_in_a_plugin_is_contained(group, exc):
    g, root = group
    good, bad = _mod(), _mod()
    make_dist(root, "exit-plugin", {g: {"Quitter": f"{bad}:f"}}, {f"{bad}.py": f"raise {exc}\n"})
    make_dist(root, "fine-plugin", {g: {"Fine": f"{good}:f"}}, {f"{good}.py": "def f(): return 7\n"})
    reg = Registry("thing", group=g)
    with pytest.warns(PluginWarning, match=r"Quitter.*exit-plugin 1.0.*failed to import"):
        assert reg.get("Fine")() == 7
    assert "Quitter" not in reg
    from hubcls.plugins import _RECORDS

    assert {r.name: r.status for r in _RECORDS[g]} == {"Quitter": "failed", "Fine": "loaded"}


def test_keyboard_interrupt_in_a_plugin_is_not_swallowed(group):
    g, root = group
    bad = _mod()
    make_dist(root, "ctrl-c-plugin", {g: {"Stop": f"{bad}:f"}}, {f"{bad}.py": "raise KeyboardInterrupt\n"})
    with pytest.raises(KeyboardInterrupt):
        load_entry_points(g, Registry("thing"))


@pytest.mark.parametrize("plugin_name, reaches", [
    ("resnet_50", "ResNet50"),                          # underscores: create_model("resnet_50") is ResNet50
    ("RESNET50", "ResNet50"),                           # case
    ("resnet50-vd", "ResNet50_vd"),                     # dashes
    ("resnet50_vd_imagenet_ssld", "ResNet50_vd_ssld"),  # PaddleHub module name of a weight variant
    ("ResNet50_vd_ssld", "ResNet50_vd_ssld"),           # a weight variant, not an architecture
    ("mobilenet_v3_large", "MobileNetV3_large_x1_0"),   # PaddleHub alias
    ("hrnet18", "HRNet_W18_C"),                         # PaddleHub pattern
    ("mobile_net_v2", "MobileNetV2"),                   # split words
])
def test_backbone_plugin_names_compared_after_create_model_normalisation(group, plugin_name, reaches):
    """A plugin must not silently take a name that already reaches a built-in (finding of issue 14)."""
    from hubcls.models import ARCHS, resolve

    g, root = group
    m = _mod()
    make_dist(root, "shadow-plugin", {g: {plugin_name: f"{m}:build"}}, {f"{m}.py": "def build(**kw): pass\n"})
    before = resolve(plugin_name)
    assert before.name == reaches
    with pytest.raises(RegistryError) as ei:
        load_entry_points(g, ARCHS)
    msg = str(ei.value)
    assert "shadow-plugin 1.0" in msg and repr(reaches) in msg and "hubcls/models/" in msg
    assert resolve(plugin_name) is before  # nothing was replaced
    assert ARCHS.find(plugin_name) == reaches


def test_backbone_plugin_duplicates_across_distributions_after_normalisation(group):
    from hubcls.models._registry import ModelRegistry, canonical_name

    g, root = group
    m1, m2 = _mod(), _mod()
    make_dist(root, "one-plugin", {g: {"My-Net": f"{m1}:f"}}, {f"{m1}.py": "def f(**kw): pass\n"})
    make_dist(root, "two-plugin", {g: {"my_net": f"{m2}:f"}}, {f"{m2}.py": "def f(**kw): pass\n"})
    with pytest.raises(RegistryError, match=r"one-plugin 1.0.*two-plugin 1.0|two-plugin 1.0.*one-plugin 1.0"):
        load_entry_points(g, ModelRegistry("backbone", key=canonical_name))


def test_a_new_backbone_plugin_resolves_in_every_spelling(group):
    """The positive path, in a subprocess so the shared model registry stays clean."""
    g, root = group
    m = _mod()
    # like a real backbone plugin, the module registers its weight sets on import
    make_dist(root, "tiny-plugin", {"hubcls.backbones": {"TinyNet_x1_0": f"{m}:TinyNet_x1_0"}},
              {f"{m}.py": "from hubcls.models import PretrainedCfg, register_pretrained\n"
                          "register_pretrained(PretrainedCfg(name='TinyNet_x1_0', arch='TinyNet_x1_0', num_classes=7),\n"
                          "                    PretrainedCfg(name='TinyNet_x1_0_ssld', arch='TinyNet_x1_0'))\n"
                          "def TinyNet_x1_0(num_classes=1000, **kw):\n    return ('tiny', num_classes)\n"})
    code = textwrap.dedent("""
        import json
        from hubcls.models import ARCHS, get_arch, list_models, resolve
        out = {"resolve": [resolve(n).arch for n in ("TinyNet_x1_0", "tinynet_x1_0", "tiny-net-x1-0")],
               "classes": resolve("tinynet_x1_0").num_classes, "ssld": resolve("tinynet_x1_0_ssld").arch,
               "built": list(get_arch("tinynet_x1_0")(num_classes=3)),
               "listed": list_models("tiny*"), "origin": ARCHS.origin("TINYNET_X1_0")}
        print("RESULT" + json.dumps(out))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.split("RESULT", 1)[1])
    assert out["resolve"] == ["TinyNet_x1_0"] * 3 and out["classes"] == 7 and out["ssld"] == "TinyNet_x1_0"
    assert out["built"] == ["tiny", 3] and out["listed"] == ["TinyNet_x1_0", "TinyNet_x1_0_ssld"]
    assert out["origin"].startswith("distribution tiny-plugin 1.0")


def test_every_group_names_a_registry_that_reads_it():
    from hubcls.plugins import GROUPS, registry_for

    for group in GROUPS:
        reg = registry_for(group)
        assert isinstance(reg, Registry) and reg.group == group, group


# ------------------------------------------------------------------ the real example plugin
@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """pip-install plugins/hubcls-plugin-pplcnet (a copy, so the source tree stays clean) into a
    target directory; tests put it on PYTHONPATH of a subprocess, so the shared environment and
    the other tests never see it."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(PLUGIN_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
           "--target", str(target), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "bdist_wheel" in r.stderr:
        pytest.skip("setuptools here cannot build wheels without the 'wheel' package (pip install wheel)")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (target / "hubcls_plugin_pplcnet").is_dir()
    return target


def _run_with_plugin(site: Path, code: str, *args, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(site.parent))


@pytest.mark.slow
def test_pplcnet_plugin_create_model_and_parity_with_paddleclas(plugin_site):
    r = _run_with_plugin(plugin_site, """
        import json, numpy as np, paddle, hubcls
        from hubcls.models import resolve, list_models
        out = {}
        out["names"] = list_models("PPLCNet*")
        cfg = resolve("pplcnet_x1_0")
        out["url"] = cfg.url_legendary
        m = hubcls.create_model("PPLCNet_x0_25", num_classes=10)
        m.eval()
        x = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype("float32"))
        y = m(x).numpy()
        out["shape"] = list(y.shape)
        out["origin"] = hubcls.models._registry.ARCHS.origin("pplcnet_x0_25")
        feats = hubcls.create_model("PPLCNet_x0_25", features_only=True, out_indices=(2, 3, 4))
        feats.eval()
        out["feature_shapes"] = [list(f.shape) for f in feats(x)]
        try:
            from paddleclas.ppcls.arch.backbone.legendary_models.pp_lcnet import PPLCNet_x0_25 as Ref
        except Exception as exc:
            out["parity"] = f"skipped: {exc}"
        else:
            ref = Ref(pretrained=False, class_num=10)
            ref.eval()
            missing = ref.set_state_dict(m.state_dict())
            out["key_diff"] = sorted(set(m.state_dict()) ^ set(ref.state_dict()))
            out["parity"] = float(np.abs(ref(x).numpy() - y).max())
        print("RESULT" + json.dumps(out))
    """)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.split("RESULT", 1)[1])
    assert out["names"] == [f"PPLCNet_x{s}" for s in ("0_25", "0_35", "0_5", "0_75", "1_0", "1_5", "2_0", "2_5")]
    assert out["url"].endswith("/legendary_models/PPLCNet_x1_0_pretrained.pdparams")
    assert out["shape"] == [2, 10]
    assert out["origin"].startswith("distribution hubcls-plugin-pplcnet 0.1.0")
    # out_indices index feature_info (blocks2..blocks6 at strides 2..32); 64 px input, x0.25 widths
    assert out["feature_shapes"] == [[2, 32, 8, 8], [2, 64, 4, 4], [2, 128, 2, 2]]
    if not str(out["parity"]).startswith("skipped"):
        assert out["key_diff"] == []  # PaddleClas's parameter names: its weight files load as they are
        assert out["parity"] < 1e-5


@pytest.mark.slow
def test_trivialaugment_in_a_training_config_and_hubcls_plugins_cli(plugin_site, tmp_path):
    cfg_yaml = textwrap.dedent(f"""
        Global: {{output_dir: {tmp_path / 'out'}, device: cpu, epochs: 1, seed: 0, eval_during_train: False,
                 save_interval: 1, print_batch_step: 1, image_shape: [3, 64, 64]}}
        Arch: {{name: PPLCNet_x0_25, class_num: 2, pretrained: False}}
        Loss: {{Train: [{{CELoss: {{}}}}], Eval: [{{CELoss: {{}}}}]}}
        Optimizer: {{name: Momentum, momentum: 0.9, lr: {{name: Cosine, learning_rate: 0.05}}}}
        DataLoader:
          Train:
            dataset:
              name: DemoDataset
              image_root: {tmp_path / 'demo'}
              split: train
              num_classes: 2
              train_per_class: 4
              val_per_class: 2
              transform_ops:
                - DecodeImage: {{to_rgb: True, channel_first: False}}
                - RandCropImage: {{size: 64}}
                - TrivialAugment: {{num_magnitude_bins: 31}}
                - NormalizeImage: {{scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}}
                - ToCHWImage:
            sampler: {{name: DistributedBatchSampler, batch_size: 4, drop_last: False, shuffle: True}}
            loader: {{num_workers: 0}}
          Eval:
            dataset:
              name: DemoDataset
              image_root: {tmp_path / 'demo'}
              split: val
              num_classes: 2
              train_per_class: 4
              val_per_class: 2
              transform_ops:
                - DecodeImage: {{to_rgb: True, channel_first: False}}
                - ResizeImage: {{resize_short: 72}}
                - CropImage: {{size: 64}}
                - NormalizeImage: {{scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}}
                - ToCHWImage:
            sampler: {{name: DistributedBatchSampler, batch_size: 4, drop_last: False, shuffle: False}}
            loader: {{num_workers: 0}}
    """)
    cfg = tmp_path / "pplcnet_trivialaugment.yaml"
    cfg.write_text(cfg_yaml)
    r = _run_with_plugin(plugin_site, """
        import json, sys, yaml, numpy as np
        from hubcls.data import build_dataloader
        from hubcls.data.transforms import AUGMENTERS
        from hubcls.cli import main
        config = yaml.safe_load(open(sys.argv[1]))
        out = {"origin": AUGMENTERS.origin("TrivialAugment")}
        loader = build_dataloader(config, "Train", seed=0)
        batch = next(iter(loader))
        out["batch"] = list(batch["image"].shape)
        again = next(iter(build_dataloader(config, "Train", seed=0)))
        out["deterministic"] = bool(np.array_equal(np.asarray(batch["image"]), np.asarray(again["image"])))
        no_ta = dict(config)
        import copy
        no_ta = copy.deepcopy(config)
        no_ta["DataLoader"]["Train"]["dataset"]["transform_ops"] = [
            op for op in no_ta["DataLoader"]["Train"]["dataset"]["transform_ops"] if "TrivialAugment" not in op]
        plain = next(iter(build_dataloader(no_ta, "Train", seed=0)))
        out["augmented"] = not bool(np.allclose(np.asarray(plain["image"]), np.asarray(batch["image"])))
        out["train_rc"] = main(["train", "-c", sys.argv[1]])
        print("RESULT" + json.dumps(out))
    """, str(cfg))
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
    out = json.loads(r.stdout.split("RESULT", 1)[1])
    assert out["origin"].startswith("distribution hubcls-plugin-pplcnet")
    assert out["batch"] == [4, 3, 64, 64]
    assert out["deterministic"] and out["augmented"]
    assert out["train_rc"] == 0, (r.stdout[-2000:], r.stderr[-3000:])

    r = _run_with_plugin(plugin_site, "import sys; from hubcls.cli import main; sys.exit(main(['plugins']))")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "hubcls-plugin-pplcnet 0.1.0" in r.stdout and "TrivialAugment" in r.stdout
    assert r.stdout.count("loaded") >= 9 and str(plugin_site) in r.stdout


def test_trivialaugment_semantics():
    """The augmenter itself, imported from the source tree (no install needed)."""
    sys.path.insert(0, str(PLUGIN_SRC))
    try:
        ta_mod = importlib.import_module("hubcls_plugin_pplcnet.trivialaugment")
    finally:
        sys.path.remove(str(PLUGIN_SRC))
    from _hub_helpers import photo

    from hubcls.data.transforms import Context

    TA = ta_mod.TrivialAugment
    img = photo(1)[:200, :200].copy()
    ta = TA()
    a = ta(img, np.random.default_rng(5), Context())
    b = ta(img, np.random.default_rng(5), Context())
    assert np.array_equal(a, b) and a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(TA(ops=["identity"])(img, np.random.default_rng(0), Context()), img)
    # every op is drawn, about uniformly (14 ops, 2800 draws: expected 200 each)
    rng = np.random.default_rng(0)
    counts = {}
    levels = set()
    for _ in range(2800):
        op, m, s = ta.draw(rng, 200, 200)
        counts[op] = counts.get(op, 0) + 1
        if op == "rotate":
            levels.add(round(m, 6))
    assert set(counts) == set(ta_mod.OPS) and min(counts.values()) > 140 and max(counts.values()) < 260
    assert max(levels) == 135.0 and min(levels) == 0.0 and len(levels) == 31  # the wide range, 31 bins
    # a strong rotation really rotates (and fills the corners grey)
    rot = TA(ops=["rotate"], num_magnitude_bins=2)
    outs = [rot(img, np.random.default_rng(k), Context()) for k in range(6)]
    assert any(not np.array_equal(o, img) for o in outs)
    with pytest.raises(ValueError):
        TA(ops=["warp"])
    with pytest.raises(ValueError):
        TA(num_magnitude_bins=1)
    with pytest.raises(ValueError):
        ta(np.zeros((3, 8, 8), np.float32), np.random.default_rng(0), Context(layout="CHW"))
