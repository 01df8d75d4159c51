"""Paddle 1.x static weights of every 2020 family, checked against the 2020 programs themselves.

tests/tools/record_static_2020.py ran PaddleClas's release/static architecture code - the programs
the 2020 ``<Name>_pretrained.tar`` files were saved from - under Paddle 3's static mode, gave every
parameter the deterministic tensor of tests/_static_2020.py and recorded each program's parameter
names, shapes and logits (tests/data/static_2020.json.gz; no weights, no PaddleClas code). Here the
same tensors are written in every static layout - per-parameter folders, tars, combined parameter
files, inference-model folders whose program and parameters Paddle itself serialises - and loaded
into hubcls: the logits must be the 2020 program's.
"""
from __future__ import annotations

import os
import tarfile

import numpy as np
import pytest
from _static_2020 import NUM_CLASSES, load_records, make_input, make_tensor

paddle = pytest.importorskip("paddle")
import hubcls  # noqa: E402
from hubcls.errors import WeightsError  # noqa: E402
from hubcls.models import _static as S  # noqa: E402
from hubcls.models import _weights as W  # noqa: E402

RECORDS = load_records()
RTOL = 1e-4  # max |hubcls - 2020 program| / max |2020 program|
BIG = {"AlexNet", "VGG11", "ResNeXt101_32x8d_wsl"}  # > 50M parameters: hundreds of MB of files
SMALL = "MobileNetV1_x0_25"  # 137 static parameters, 64x64 input: the format tests' model


def build(name: str, **kwargs):
    """The hubcls model a record describes, with the recorded 16-way classifier."""
    if name == "SE_HRNet_W18_C":  # PaddleClas's SE-HRNet at width 18 (hubcls registers W64 only)
        from hubcls.models.hrnet import HRNet

        return HRNet(width=18, has_se=True, num_classes=NUM_CLASSES, **kwargs)
    return hubcls.create_model(name, num_classes=NUM_CLASSES, **kwargs)


def build_lazy(name: str):
    """``build`` without initialising parameters (names and shapes only)."""
    with paddle.LazyGuard():
        return build(name)


def tensors(name: str):
    return [(n, make_tensor(n, s)) for n, s in RECORDS[name]["params"]]


def write_folder(directory, named_arrays):
    """``save_persistables``' layout: one LoDTensor file per parameter (a '/' is a sub-folder)."""
    for n, a in named_arrays:
        path = os.path.join(directory, n)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        W.write_lod_tensor(path, a)
    return directory


def run(model, name: str) -> np.ndarray:
    model.eval()
    with paddle.no_grad():
        out = model(paddle.to_tensor(make_input(RECORDS[name]["input_size"]))).numpy().reshape(-1)
    if RECORDS[name]["softmax"]:  # the 2020 program ends in probabilities (GoogLeNet)
        e = np.exp(out - out.max())
        out = e / e.sum()
    return out


def assert_2020_logits(model, name: str) -> None:
    ref = np.asarray(RECORDS[name]["logits"], dtype="float64")
    got = run(model, name)
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    assert err <= RTOL, f"{name}: max |hubcls - 2020 program| / max |2020| = {err:.3g}"


def _params(names, slow=()):
    return [pytest.param(n, marks=[pytest.mark.slow] if n in slow else [], id=n) for n in names]


# ---------------------------------------------------------------------------------------------
def test_every_family_has_a_recorded_2020_program():
    """Each family module's static names are checked against a 2020 program (a new family must be
    added to the recorder)."""
    from _models_common import arch_names

    from hubcls.models._registry import ARCHS

    families = {ARCHS.get(n).__module__ for n in arch_names()}
    recorded = {ARCHS.get(n).__module__ for n in RECORDS if n in ARCHS}
    assert families - recorded == set(), f"families without a recorded static program: {families - recorded}"
    assert len(recorded) == 24  # the static-format family count quoted in docs/models.md


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_static_names_are_the_2020_programs(name):
    """hubcls's static names of every parameter (plus what its static fold consumes) are exactly the
    2020 program's persistable variables, with the same shapes."""
    model = build_lazy(name)
    rec = dict((n, tuple(s)) for n, s in RECORDS[name]["params"])
    names = S.static_names(model)
    sd = model.state_dict()
    assert set(S.all_static_names(model)) == set(rec)
    for key, static in names.items():
        if static in rec:
            assert tuple(sd[key].shape) == rec[static], f"{key} -> {static}"


@pytest.mark.parametrize("name", _params(sorted(RECORDS), slow=BIG))
def test_static_folder_gives_the_2020_program_logits(name, tmp_path):
    """A save_persistables folder of the 2020 program's tensors, loaded by its architecture's name
    (the class count comes from the file): the 2020 program's logits."""
    folder = write_folder(tmp_path / f"{name}_pretrained", tensors(name))
    if name == "SE_HRNet_W18_C":
        model = build(name)
        assert W.load_pretrained(model, folder) == "static"
    else:
        model = hubcls.create_model(name, pretrained=str(folder))
        assert model.num_classes == NUM_CLASSES
    assert_2020_logits(model, name)


# ---------------------------------------------------------------------------------------------
# the other layouts, on one small model
def test_tar_of_a_folder_and_names_with_slashes(tmp_path):
    folder = write_folder(tmp_path / f"{SMALL}_pretrained", tensors(SMALL))
    tar = tmp_path / f"{SMALL}_pretrained.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(folder, arcname=folder.name)
    assert_2020_logits(hubcls.create_model(SMALL, pretrained=str(tar)), SMALL)
    # a folder handed over one level up (the parent of the extracted tar) works too
    parent = tmp_path / "up"
    parent.mkdir()
    folder.rename(parent / folder.name)
    assert_2020_logits(hubcls.create_model(SMALL, pretrained=str(parent)), SMALL)
    # the DeepLab Xception's names are paths (xception_41/entry_flow/conv1/weights): sub-folders
    name = "Xception41_deeplab"
    folder = write_folder(tmp_path / name, tensors(name))
    assert (folder / "xception_41" / "entry_flow" / "conv1" / "weights").is_file()
    gz = tmp_path / f"{name}_pretrained.tar.gz"
    with tarfile.open(gz, "w:gz") as tf:
        tf.add(folder, arcname=f"{name}_pretrained")
    assert_2020_logits(hubcls.create_model(name, pretrained=str(gz)), name)


def _paddle_program(named_arrays, directory, *, model_file, params_file):
    """Save a real Paddle static program declaring these parameters (every one reaches the output)
    with Paddle's own writers: the program (ProgramDesc) as ``model_file`` and the parameters as
    one combined file ``params_file`` (save_combine) or, when it is None, one file each (save_vars)."""
    from paddle import pir_utils

    paddle.enable_static()
    try:
        with pir_utils.OldIrGuard(), paddle.utils.unique_name.guard():
            main, startup = paddle.static.Program(), paddle.static.Program()
            with paddle.static.program_guard(main, startup):
                x = paddle.static.data("image", [None, 1], "float32")
                params = [paddle.static.create_parameter(list(a.shape), "float32", name=n) for n, a in named_arrays]
                out = x + paddle.add_n([paddle.mean(p) for p in params])
            scope = paddle.static.Scope()
            with paddle.static.scope_guard(scope):
                exe = paddle.static.Executor(paddle.CPUPlace())
                exe.run(startup)
                for n, a in named_arrays:
                    scope.find_var(n).get_tensor().set(a, paddle.CPUPlace())
                prefix = os.path.join(directory, "inference")
                paddle.static.save_inference_model(prefix, [x], [out], exe, program=main)
                os.replace(prefix + ".pdmodel", os.path.join(directory, model_file))
                if params_file is None:
                    os.remove(prefix + ".pdiparams")
                    paddle.static.save_vars(exe, str(directory), main, vars=params)
                else:
                    os.replace(prefix + ".pdiparams", os.path.join(directory, params_file))
    finally:
        paddle.disable_static()
    return directory


@pytest.mark.parametrize("model_file,params_file", [
    ("__model__", "__params__"),   # fluid.io.save_inference_model(..., params_filename="__params__")
    ("model", "params"),           # PaddleClas 1.x tools/export_model.py
    ("__model__", None),           # save_inference_model without params_filename: one file each
    ("inference.pdmodel", "inference.pdiparams"),  # Paddle 2.x static export of a 1.x program
])
def test_inference_model_folders_written_by_paddle(model_file, params_file, tmp_path):
    """Inference-model folders whose program and parameter files Paddle's own writers produced: the
    program is parsed (never run) for the parameter names, the combined file read in Paddle's order."""
    named = tensors(SMALL)
    d = _paddle_program(named, tmp_path, model_file=model_file, params_file=params_file)
    program = S.parse_program((d / model_file).read_bytes())
    assert {v.name for v in program} == {n for n, _ in named}
    assert {v.name: v.shape for v in program} == {n: a.shape for n, a in named}
    if not model_file.endswith(".pdmodel"):
        # (a folder holding inference.pdmodel is an export directory to the model resolver, whose
        # program runs through the Predictor; its parameter file named directly loads as weights)
        assert_2020_logits(hubcls.create_model(SMALL, pretrained=str(d)), SMALL)
    if params_file is not None:  # the parameter file named directly finds its program beside it
        assert_2020_logits(hubcls.create_model(SMALL, pretrained=str(d / params_file)), SMALL)
    tar = tmp_path / "exported.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(d, arcname="inference_model")
    assert_2020_logits(hubcls.create_model(SMALL, pretrained=str(tar)), SMALL)


def test_combined_file_without_its_program(tmp_path):
    """A lone ``__params__``: its tensors are named from the model (static names in Paddle's sorted
    save order), shapes checked; folded names (RegNet's conv biases) count too."""
    for name in (SMALL, "RegNetX_4GF"):
        named = sorted(tensors(name))
        d = tmp_path / name
        d.mkdir()
        S.write_combined(d / "__params__", [a for _, a in named])
        assert_2020_logits(hubcls.create_model(name, pretrained=str(d / "__params__")), name)
        assert_2020_logits(hubcls.create_model(name, pretrained=str(d)), name)
    # saved from another architecture: a count mismatch says what to do about it; same count,
    # other shapes (another width) is a shape mismatch
    with pytest.raises(WeightsError, match=r"137 tensors.*__model__"):
        hubcls.create_model("ResNet18", pretrained=str(tmp_path / SMALL / "__params__"))
    with pytest.raises(WeightsError, match="shape mismatch"):
        hubcls.create_model("MobileNetV1_x0_5", pretrained=str(tmp_path / SMALL / "__params__"))


def test_static_numerics_travel_with_a_saved_package(tmp_path):
    """HRNet from static weights computes as the 2020 program did (fluid's nearest upsampling);
    the switch is an architecture argument, so a package saved from it reloads the same model."""
    name = "HRNet_W18_C"
    model = hubcls.create_model(name, pretrained=str(write_folder(tmp_path / "w", tensors(name))))
    assert model.upsample_align_corners and model.arch_kwargs["upsample_align_corners"] is True
    model.save_pretrained(str(tmp_path / "pkg"))
    again = hubcls.create_model(str(tmp_path / "pkg"))
    assert again.upsample_align_corners
    assert_2020_logits(again, name)


def test_upsample_nearest_align_corners_rule():
    """fluid's resize_nearest(align_corners=True): output k reads input int(k*(in-1)/(out-1)+0.5);
    for scale 2 that equals k // 2, for scale 4 it does not."""
    from hubcls.models.hrnet import upsample_nearest

    x = paddle.arange(4, dtype="float32").reshape([1, 1, 1, 4]).tile([1, 1, 4, 1])
    plain = upsample_nearest(x, 4).numpy()[0, 0, 0]
    fluid = upsample_nearest(x, 4, align_corners=True).numpy()[0, 0, 0]
    np.testing.assert_array_equal(plain, np.repeat(np.arange(4), 4))
    np.testing.assert_array_equal(fluid, [int(k * 3 / 15 + 0.5) for k in range(16)])
    np.testing.assert_array_equal(upsample_nearest(x, 2, align_corners=True).numpy(), upsample_nearest(x, 2).numpy())


# ---------------------------------------------------------------------------------------------
# hostile or broken files are WeightsErrors, never crashes or huge allocations
def test_broken_static_files(tmp_path):
    named = tensors(SMALL)
    d = _paddle_program(named, tmp_path / "ok", model_file="__model__", params_file="__params__")
    data = (d / "__params__").read_bytes()
    bad = tmp_path / "truncated"
    bad.mkdir()
    (bad / "__model__").write_bytes((d / "__model__").read_bytes())
    (bad / "__params__").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated|LoDTensor"):
        W.read_state(bad)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "__model__").write_bytes(b"\xff" * 64)
    (garbage / "__params__").write_bytes(data)
    with pytest.raises(WeightsError, match="not a Paddle program"):
        W.read_state(garbage)
    # a tensor header claiming 2**60 float32 elements: refused before any allocation
    import struct

    desc = b"\x08\x05" + b"\x10" + bytes([0x80] * 8 + [0x10])  # data_type FP32, dims [2**60]
    huge = struct.pack("<IQI", 0, 0, 0) + struct.pack("<i", len(desc)) + desc + b"\0" * 64
    with pytest.raises(WeightsError, match="truncated data"):
        S.read_lod_tensor(huge)


def test_tar_members_outside_the_folder_are_not_read(tmp_path):
    """Tars are read in memory, never extracted; members with absolute or '..' paths and links are
    ignored."""
    folder = write_folder(tmp_path / f"{SMALL}_pretrained", tensors(SMALL))
    tar = tmp_path / "evil.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(folder, arcname=folder.name)
        info = tarfile.TarInfo("../../outside_weights")
        payload = S._record_bytes(np.ones(3, "float32"))
        info.size = len(payload)
        import io

        tf.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo(f"{folder.name}/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    state = W.read_state(tar)
    assert not any(".." in k or "link" in k or "passwd" in k for k in state)
    assert not (tmp_path.parent / "outside_weights").exists()
    assert_2020_logits(hubcls.create_model(SMALL, pretrained=str(tar)), SMALL)


# ---------------------------------------------------------------------------------------------
def test_hub_module_takes_static_weights(tmp_path):
    """hub.Module(name=..., weights=<static tar>) goes through the one resolver: the same model as
    the .pdparams holding the same tensors."""
    from _hub_helpers import MODEL, photo, write_weights

    import hubcls.hub as hub

    pd = write_weights(tmp_path / "w.pdparams")
    ref = hubcls.create_model(MODEL, pretrained=str(pd))
    names = S.static_names(ref)
    folder = write_folder(tmp_path / f"{MODEL}_pretrained",
                          [(names[k], v.numpy()) for k, v in ref.state_dict().items()])
    tar = tmp_path / f"{MODEL}_pretrained.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(folder, arcname=folder.name)
    a = hub.Module(name=MODEL, weights=str(pd)).predict([photo(0), photo(1)], top_k=3)
    b = hub.Module(name=MODEL, weights=str(tar)).predict([photo(0), photo(1)], top_k=3)
    assert a == b
