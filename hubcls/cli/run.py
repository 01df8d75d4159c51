"""``hubcls run MODULE --input_path IMAGE [--top_k K]``: PaddleHub's ``hub run`` for classification modules.

MODULE is a module name (PaddleHub's ``resnet50_vd_imagenet_ssld``, any zoo spelling) or a module
package directory (``hubcls hub-module``). The arguments after MODULE are the module's own, parsed
by ``Module.run_cmd`` exactly as PaddleHub's classification modules parse them, and the output is
what ``hub run`` prints: ``print()`` of the result list.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_parser


def _run(args) -> int:
    from ..hub.module import Module
    from ..models._resolve import _looks_like_path

    spec = args.module
    is_dir = _looks_like_path(spec) and Path(spec).is_dir()
    if is_dir:
        module = Module(directory=spec, weights=args.weights)
    else:
        module = Module(name=spec, weights=args.weights)
    # the name `hub run` shows in its usage line
    module.hub_name = module.paddlehub.hub_name if module.paddlehub is not None else Path(spec).name
    print(module.run_cmd(args.module_args))
    return 0


def register(sub):
    p = add_parser(sub, "run", help="run a module on one image and print its answer, as PaddleHub's `hub run` does",
                   examples=["hubcls run resnet50_vd_imagenet_ssld --input_path cat.jpg --top_k 5",
                             "hubcls run modules/efficientnetb0_imagenet --input_path cat.jpg",
                             "hubcls run --weights best_model.pdparams MobileNetV3_small_x0_35 --input_path cat.jpg"])
    p.add_argument("--weights", default=None,
                   help="hubcls only, before MODULE: weights for the module (default: its official weights)")
    p.add_argument("module", help="a module name (PaddleHub's or any zoo spelling) or a module package directory")
    p.add_argument("module_args", nargs=argparse.REMAINDER,
                   help="the module's arguments: --input_path IMAGE [--top_k K] [--batch_size N] [--use_gpu True]")
    p.set_defaults(func=_run)
