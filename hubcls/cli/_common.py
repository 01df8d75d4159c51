"""Argument conventions shared by the sub-commands: one meaning per flag everywhere.

* ``-c/--config``  a PaddleClas-style YAML config (path or shipped name)
* ``-o KEY=VALUE`` a config override (repeatable), as in PaddleClas's tools
* ``-m/--model``   a model in any form the resolver accepts (zoo name, package, run / export /
                   PaddleHub module directory)
* ``--weights``    weights for a named model (file, package or run directory, "official", "random")
* ``--label-list`` class names (a label file) for a head without its own
* ``--output``     where a command writes (``--out`` too)
* ``--backend``    the inference backend (auto, dygraph, inference, onnxruntime, int8)
"""
from __future__ import annotations

import argparse
import os
import sys

MODEL_HELP = ("the model: a zoo name in any spelling (ResNet50_vd_ssld, resnet50_vd_imagenet_ssld), a model package, "
              "a training run directory, an export directory or a PaddleHub module directory")


def add_parser(sub, name: str, *, help: str, examples, description: str = None, aliases=()):  # noqa: A002
    """A sub-command parser whose --help ends with examples (one per line)."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    return sub.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".",
                          epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, aliases=list(aliases))


def add_override_arg(p, help_extra: str = ""):  # noqa: A002
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. -o Global.epochs=10 (values typed by YAML)" + help_extra)


def add_model_args(p, *, required_help: str = "", weights: bool = True, label_list: bool = True):
    p.add_argument("-m", "--model", help=MODEL_HELP + required_help)
    if weights:
        p.add_argument("--weights", help="weights for the model: a .pdparams/.safetensors file, a package or run "
                                         "directory, 'official' or 'random' (default: the model's own)")
    if label_list:
        p.add_argument("--label-list", metavar="FILE",
                       help="class names, one per line (PaddleClas '<id> <name>' lines too); default: the model's own")


class _SetEnv(argparse.Action):
    """An option that sets the environment variable every default call site reads (like HUBCLS_BACKEND)."""

    def __init__(self, *args, env: str, **kw):
        self.env = env
        super().__init__(*args, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ[self.env] = str(values)
        setattr(namespace, self.dest, values)


def add_backend_arg(p):
    p.add_argument("--backend", default=None,
                   help="inference backend: auto (default; HUBCLS_BACKEND overrides), dygraph, inference, onnxruntime, "
                        "openvino, int8")
    p.add_argument("--precision", default=None, action=_SetEnv, env="HUBCLS_PRECISION",
                   choices=("auto", "fp32", "bf16", "fp16", "int8", "trt_fp32"),
                   help="auto (default with --backend auto: bf16/int8 only where the accuracy gate passes), fp32 "
                        "(exact), bf16 (CPUs with AVX512-BF16/AMX), ...")
    p.add_argument("--calib", metavar="IMAGES_DIR", default=None, action=_SetEnv, env="HUBCLS_CALIB_IMAGES",
                   help="your images for the accuracy gate that lets auto use bf16/int8 (default: a shipped set)")


def warn(command: str, message: str) -> None:
    print(f"hubcls {command}: warning: {message}", file=sys.stderr)


def split_output_override(args, command: str) -> None:
    """``-o`` is a config override (KEY=VALUE) in every command. The older meanings in ``export`` and
    ``data preview`` - ``-o PATH`` for the output and ``-O KEY=VALUE`` for overrides - still work for
    one release, with a warning: a value without "=" cannot be an override."""
    from ..errors import ConfigError

    overrides, paths = [], []
    for v in args.override or []:
        (overrides if "=" in v else paths).append(v)
    for v in getattr(args, "old_override", None) or []:
        warn(command, "-O KEY=VALUE is deprecated; use -o KEY=VALUE (one meaning per flag across commands)")
        overrides.append(v)
    if paths:
        if len(paths) > 1 or args.output:
            raise ConfigError(f"-o takes KEY=VALUE config overrides; give the output as --output PATH "
                              f"(got -o {' -o '.join(paths)})")
        warn(command, f"-o PATH is deprecated; use --output {paths[0]} (-o is a config override, as in train/eval)")
        args.output = paths[0]
    args.override = overrides
