"""Record PaddleClas's 2020 static programs as test data for tests/test_models_static.py.

PaddleClas's release/static branch (``ppcls/modeling/architectures/*.py``) is the Paddle 1.x code
the 2020 static weights (``<Name>_pretrained.tar``) were trained and saved with; its ParamAttr names
are the file names inside those tars. This script runs that code unchanged under Paddle 3's
legacy-IR static mode, through a small ``paddle.fluid`` stand-in defined below (fluid's 2020
semantics: act strings with fluid's defaults, ``dropout`` scaling at inference, ``resize_nearest``
with corner alignment, elementwise ``axis`` broadcasting), builds one program per model listed in
MODELS with a 16-way classifier, gives every parameter the deterministic tensor of
tests/_static_2020.py, runs the test clone on a deterministic input and writes, per model, the
parameter names and shapes in program order, the input size and the logits to
tests/data/static_2020.json.gz. No PaddleClas code or weight is stored.

    git -C <PaddleClas clone> archive release/static ppcls/modeling/architectures | tar -x -C /tmp/src
    python tests/tools/record_static_2020.py --src /tmp/src/ppcls/modeling/architectures
"""
from __future__ import annotations

import argparse
import gzip
import importlib
import inspect
import json
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402
from _static_2020 import DATA, NUM_CLASSES, make_input, make_tensor  # noqa: E402

# model name -> (module of release/static, input size). One or more per hubcls family: the
# smallest model, plus each naming variant the family has (vb/vd, SE, small/large, ...).
MODELS = {
    "AlexNet": ("alexnet", 224),
    "DarkNet53": ("darknet", 64),
    "DenseNet121": ("densenet", 64),
    "DPN68": ("dpn", 224),
    "EfficientNetB0": ("efficientnet", 224),
    "EfficientNetB0_small": ("efficientnet", 224),
    "GhostNet_x0_5": ("ghostnet", 64),
    "GoogLeNet": ("googlenet", 224),
    "HRNet_W18_C": ("hrnet", 64),
    "SE_HRNet_W18_C": ("hrnet", 64),
    "InceptionV3": ("inception_v3", 299),
    "InceptionV4": ("inception_v4", 299),
    "MobileNetV1_x0_25": ("mobilenet_v1", 64),
    "MobileNetV2_x0_25": ("mobilenet_v2", 64),
    "MobileNetV3_small_x0_35": ("mobilenet_v3", 64),
    "MobileNetV3_large_x0_35": ("mobilenet_v3", 64),
    "RegNetX_4GF": ("regnet", 64),
    "Res2Net50_26w_4s": ("res2net", 64),
    "Res2Net50_vd_26w_4s": ("res2net_vd", 64),
    "ResNeSt50_fast_1s1x64d": ("resnest", 64),
    "ResNeSt50": ("resnest", 64),
    "ResNet18": ("resnet", 64),
    "ResNet50": ("resnet", 64),
    "ResNet101": ("resnet", 64),
    "ResNet18_vd": ("resnet_vd", 64),
    "ResNet50_vd": ("resnet_vd", 64),
    "ResNet50_vc": ("resnet_vc", 64),
    "ResNeXt50_32x4d": ("resnext", 64),
    "ResNeXt50_vd_32x4d": ("resnext_vd", 64),
    "ResNeXt101_32x8d_wsl": ("resnext101_wsl", 64),
    "SE_ResNet18_vd": ("se_resnet_vd", 64),
    "SE_ResNeXt50_32x4d": ("se_resnext", 64),
    "SE_ResNeXt50_vd_32x4d": ("se_resnext_vd", 64),
    "ShuffleNetV2_x0_25": ("shufflenet_v2", 224),
    "ShuffleNetV2_swish": ("shufflenet_v2_swish", 224),
    "SqueezeNet1_0": ("squeezenet", 224),
    "SqueezeNet1_1": ("squeezenet", 224),
    "VGG11": ("vgg", 224),
    "Xception41": ("xception", 64),
    "Xception41_deeplab": ("xception_deeplab", 64),
}


# ---------------------------------------------------------------------------------------------
# paddle.fluid stand-in: fluid 1.x call signatures mapped onto Paddle 3 static ops, with fluid's
# defaults where they differ from Paddle 3's (leaky_relu alpha 0.02, dropout downgrade_in_infer,
# resize_nearest align_corners=True, hard_sigmoid 0.2/0.5).
def _sigmoid(x):
    # paddle.nn.functional.sigmoid builds a PIR value even under OldIrGuard: append the legacy op
    from paddle.base.layer_helper import LayerHelper

    helper = LayerHelper("sigmoid")
    out = helper.create_variable_for_type_inference(x.dtype)
    helper.append_op(type="sigmoid", inputs={"X": x}, outputs={"Out": out})
    return out


def _act(x, act):
    if not act:
        return x
    fn = {
        "relu": F.relu, "relu6": F.relu6, "sigmoid": _sigmoid, "tanh": paddle.tanh,
        "softmax": F.softmax, "swish": lambda v: v * _sigmoid(v),
        "hard_swish": lambda v: v * F.relu6(v + 3.0) / 6.0,
        "hard_sigmoid": lambda v: F.hardsigmoid(v, slope=0.2, offset=0.5),
        "leaky_relu": lambda v: F.leaky_relu(v, 0.02),
        "mish": F.mish,
    }[act]
    return fn(x)


def conv2d(input, num_filters, filter_size, stride=1, padding=0, dilation=1, groups=None, param_attr=None,
           bias_attr=None, use_cudnn=True, act=None, name=None, data_format="NCHW"):
    y = paddle.static.nn.conv2d(input, num_filters, filter_size, stride=stride, padding=padding,
                                dilation=dilation, groups=groups or 1, param_attr=param_attr,
                                bias_attr=bias_attr, name=name, data_format=data_format)
    return _act(y, act)


def batch_norm(input, act=None, is_test=False, momentum=0.9, epsilon=1e-5, param_attr=None, bias_attr=None,
               data_layout="NCHW", in_place=False, name=None, moving_mean_name=None, moving_variance_name=None,
               do_model_average_for_mean_and_var=True, use_global_stats=False):
    y = paddle.static.nn.batch_norm(input, is_test=True, momentum=momentum, epsilon=epsilon,
                                    param_attr=param_attr, bias_attr=bias_attr, data_layout=data_layout,
                                    name=name, moving_mean_name=moving_mean_name,
                                    moving_variance_name=moving_variance_name)
    return _act(y, act)


def fc(input, size, num_flatten_dims=1, param_attr=None, bias_attr=None, act=None, is_test=False, name=None):
    y = paddle.static.nn.fc(input, size, num_flatten_dims=num_flatten_dims, weight_attr=param_attr,
                            bias_attr=bias_attr, name=name)
    return _act(y, act)


def pool2d(input, pool_size=-1, pool_type="max", pool_stride=1, pool_padding=0, global_pooling=False,
           use_cudnn=True, ceil_mode=False, name=None, exclusive=True, data_format="NCHW"):
    if global_pooling:
        return (F.adaptive_max_pool2d if pool_type == "max" else F.adaptive_avg_pool2d)(input, 1)
    if pool_type == "max":
        return F.max_pool2d(input, pool_size, pool_stride, pool_padding, ceil_mode=ceil_mode)
    return F.avg_pool2d(input, pool_size, pool_stride, pool_padding, ceil_mode=ceil_mode, exclusive=exclusive)


def adaptive_pool2d(input, pool_size, pool_type="max", require_index=False, name=None):
    return (F.adaptive_max_pool2d if pool_type == "max" else F.adaptive_avg_pool2d)(input, pool_size)


def _broadcast(x, y, axis):
    if axis == -1 or len(y.shape) == len(x.shape):
        return y
    trailing = len(x.shape) - axis - len(y.shape)
    return paddle.reshape(y, list(y.shape) + [1] * trailing) if trailing > 0 else y


def elementwise_add(x, y, axis=-1, act=None, name=None):
    return _act(x + _broadcast(x, y, axis), act)


def elementwise_mul(x, y, axis=-1, act=None, name=None):
    return _act(x * _broadcast(x, y, axis), act)


def dropout(x, dropout_prob, is_test=False, seed=None, name=None, dropout_implementation="downgrade_in_infer"):
    mode = "downscale_in_infer" if dropout_implementation == "downgrade_in_infer" else "upscale_in_train"
    return F.dropout(x, dropout_prob, training=False, mode=mode)


def resize_nearest(input, out_shape=None, scale=None, name=None, actual_shape=None, align_corners=True,
                   data_format="NCHW"):
    # fluid's nearest_interp with align_corners=True maps output k to input int(k*(in-1)/(out-1)+0.5),
    # a mode paddle.nn.functional.interpolate no longer exposes: append the op itself
    from paddle.base.layer_helper import LayerHelper

    helper = LayerHelper("nearest_interp_v2")
    out = helper.create_variable_for_type_inference(input.dtype)
    helper.append_op(type="nearest_interp_v2", inputs={"X": input}, outputs={"Out": out},
                     attrs={"interp_method": "nearest", "align_corners": align_corners, "align_mode": 1,
                            "scale": [float(scale), float(scale)], "out_d": -1, "out_h": -1, "out_w": -1,
                            "data_layout": data_format})
    return out


def _flatten(x, axis=1, name=None):
    return paddle.flatten(x, start_axis=axis) if axis == 1 else paddle.reshape(x, [0, -1])


def _split(input, num_or_sections, dim=-1, name=None):
    return paddle.split(input, num_or_sections, axis=dim)


def _initializer(*args, **kwargs):
    return paddle.nn.initializer.Constant(0.0)  # every value is overwritten before running


def _make_fluid():
    layers = types.SimpleNamespace(
        conv2d=conv2d, batch_norm=batch_norm, fc=fc, pool2d=pool2d, adaptive_pool2d=adaptive_pool2d,
        elementwise_add=elementwise_add, elementwise_mul=elementwise_mul, dropout=dropout,
        resize_nearest=resize_nearest, flatten=_flatten, split=_split,
        concat=lambda input, axis=0, name=None: paddle.concat(input, axis=axis),
        relu=lambda x, name=None: F.relu(x), sigmoid=lambda x, name=None: _sigmoid(x),
        tanh=lambda x, name=None: paddle.tanh(x),
        relu6=lambda x, threshold=6.0, name=None: paddle.clip(x, 0.0, threshold),
        swish=lambda x, beta=1.0, name=None: x * _sigmoid(beta * x),
        hard_swish=lambda x, threshold=6.0, scale=6.0, offset=3.0, name=None:
            x * paddle.clip(x + offset, 0.0, threshold) / scale,
        hard_sigmoid=lambda x, slope=0.2, offset=0.5, name=None: F.hardsigmoid(x, slope=slope, offset=offset),
        leaky_relu=lambda x, alpha=0.02, name=None: F.leaky_relu(x, alpha),
        softmax=lambda input, use_cudnn=False, name=None, axis=-1: F.softmax(input, axis=axis),
        reshape=lambda x, shape, actual_shape=None, act=None, inplace=False, name=None:
            _act(paddle.reshape(x, shape), act),
        transpose=lambda x, perm, name=None: paddle.transpose(x, perm),
        reduce_mean=lambda input, dim=None, keep_dim=False, name=None: paddle.mean(input, axis=dim, keepdim=keep_dim),
        clip=lambda x, min, max, name=None: paddle.clip(x, min, max),
        sum=lambda x: paddle.add_n(x) if isinstance(x, (list, tuple)) else x,
    )
    init = types.SimpleNamespace(**{n: _initializer for n in (
        "Uniform", "UniformInitializer", "Constant", "ConstantInitializer", "Normal", "NormalInitializer",
        "TruncatedNormal", "MSRA", "Xavier", "Bilinear")})
    param_attr = types.SimpleNamespace(ParamAttr=paddle.ParamAttr)
    regularizer = types.SimpleNamespace(L2DecayRegularizer=lambda regularization_coeff=0.0: None,
                                        L2Decay=lambda regularization_coeff=0.0: None)
    fluid = types.ModuleType("paddle.fluid")
    fluid.layers, fluid.initializer, fluid.param_attr = layers, init, param_attr
    fluid.regularizer, fluid.ParamAttr = regularizer, paddle.ParamAttr
    fluid.layer_helper = types.SimpleNamespace(LayerHelper=None)
    mods = {"paddle.fluid": fluid, "paddle.fluid.layers": layers, "paddle.fluid.initializer": init,
            "paddle.fluid.param_attr": param_attr, "paddle.fluid.regularizer": regularizer}
    for name, obj in mods.items():
        if not isinstance(obj, types.ModuleType):
            m = types.ModuleType(name)
            m.__dict__.update(vars(obj))
            mods[name] = m
    fluid.layers, fluid.initializer = mods["paddle.fluid.layers"], mods["paddle.fluid.initializer"]
    fluid.param_attr, fluid.regularizer = mods["paddle.fluid.param_attr"], mods["paddle.fluid.regularizer"]
    sys.modules.update(mods)
    paddle.fluid = fluid


def _load_package(src: Path):
    pkg = types.ModuleType("ppcls_static")
    pkg.__path__ = [str(src)]  # the package's __init__ (importing every family) is not run
    sys.modules["ppcls_static"] = pkg
    return pkg


# ---------------------------------------------------------------------------------------------
def record(name: str, module: str, size: int) -> dict:
    from paddle import pir_utils

    builder = getattr(importlib.import_module(f"ppcls_static.{module}"), name)
    with pir_utils.OldIrGuard(), paddle.utils.unique_name.guard():
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(main, startup):
            image = paddle.static.data("image", [1, 3, size, size], "float32")
            net = builder(**({"is_test": True} if "is_test" in inspect.signature(builder).parameters else {}))
            kw = {"class_dim": NUM_CLASSES}
            if "is_test" in inspect.signature(net.net).parameters:
                kw["is_test"] = True
            out = net.net(input=image, **kw)
            if isinstance(out, (list, tuple)):  # GoogLeNet: (main, aux1, aux2)
                out = out[0]
            softmax = out.op.type == "softmax"  # GoogLeNet's program ends in probabilities
        test = main.clone(for_test=True)
        params = [(v.name, [int(d) for d in v.shape]) for v in main.list_vars()
                  if v.persistable and v.name not in ("feed", "fetch")]
        scope = paddle.static.Scope()
        with paddle.static.scope_guard(scope):
            exe = paddle.static.Executor(paddle.CPUPlace())
            exe.run(startup)
            for pname, shape in params:
                scope.find_var(pname).get_tensor().set(make_tensor(pname, shape), paddle.CPUPlace())
            (logits,) = exe.run(test, feed={"image": make_input(size)}, fetch_list=[out])
    return {"source": f"{module}.py", "input_size": size, "params": params, "softmax": softmax,
            "logits": [round(float(v), 6) for v in np.asarray(logits).reshape(-1)]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", required=True, type=Path, help="release/static ppcls/modeling/architectures")
    ap.add_argument("--out", type=Path, default=DATA)
    ap.add_argument("--only", nargs="*", help="record these models only (merged into --out)")
    args = ap.parse_args(argv)
    paddle.enable_static()
    _make_fluid()
    _load_package(args.src)
    records, failed = {}, 0
    if args.only and args.out.exists():
        with gzip.open(args.out, "rt", encoding="utf-8") as f:
            records = json.load(f)
    for name, (module, size) in MODELS.items():
        if args.only and name not in args.only:
            continue
        try:
            rec = record(name, module, size)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other models
            print(f"{name:28s} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0]}", flush=True)
            failed += 1
            continue
        records[name] = rec
        print(f"{name:28s} {len(rec['params']):5d} params  logits[:3]={rec['logits'][:3]}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out, "wt", encoding="utf-8") as f:
        json.dump(records, f, sort_keys=True, separators=(",", ":"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
