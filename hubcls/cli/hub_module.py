"""``hubcls hub-module NAME... -o DIR``: write PaddleHub module packages (module.py + model card)."""
from __future__ import annotations

import sys
from pathlib import Path

from ._common import add_parser


def _run(args) -> int:
    from ..errors import ConfigError
    from ..hub.make_modules import module_for, module_names, write

    if args.list:
        for hub, model in module_names().items():
            print(f"{hub}\t{model}")
        return 0
    if args.all:
        names = list(module_names())
    elif args.name:
        names = list(dict.fromkeys(module_for(n) for n in args.name))
    else:
        raise ConfigError("name a model (e.g. hubcls hub-module resnet50_vd_imagenet_ssld -o modules/), or --all")
    out = Path(args.output)
    dirs = write(out, names)
    for d in dirs if len(dirs) <= 5 else []:
        print(f"wrote {d}/  (hub install {d})")
    if len(dirs) > 5:
        print(f"wrote {len(dirs)} modules under {out}/")
    print("they need hubcls installed where PaddleHub runs (pip install hubcls)", file=sys.stderr)
    return 0


def register(sub):
    p = add_parser(sub, "hub-module", help="write PaddleHub module packages (module.py + model card README)",
                   examples=["hubcls hub-module resnet50_vd_imagenet_ssld -o modules/   # then: hub install "
                             "modules/resnet50_vd_imagenet_ssld",
                             "hubcls hub-module MobileNetV3_small_x1_0_ssld -o .       # any spelling of a model",
                             "hubcls hub-module --all -o modules/                      # every module",
                             "hubcls hub-module --list                                 # module name -> model"])
    p.add_argument("name", nargs="*", help="module or model names (any spelling)")
    p.add_argument("-o", "--output", "--out", default="modules", help="where the module folders go (default: modules)")
    p.add_argument("--all", action="store_true", help="every module: hubcls's names and PaddleHub's")
    p.add_argument("--list", action="store_true", help="print every module name and its model, then exit")
    p.set_defaults(func=_run)
