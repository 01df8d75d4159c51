"""The ``hubcls`` command line.

Every sub-command is a module in this package that defines ``register(subparsers)``; the module
adds its parser and sets ``func`` (called with the parsed args, returns an exit code). Modules
discovered here must import nothing heavy (Paddle, cv2) at import time, so ``hubcls --help`` and
``hubcls --version`` stay instant; import inside ``func``.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .. import __version__
from ..errors import HubclsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubcls",
        description="hubcls: PaddleClas's model zoo, training, distillation, hub modules and serving.",
    )
    parser.add_argument("--version", action="version", version=f"hubcls {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show Paddle's own log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _plain_config_warnings():
    """Config warnings as one plain line each ("warning: Global.epoch: unknown key (did you mean
    Global.epochs?) ..."), not Python's file:line warning format."""
    import warnings

    from ..errors import ConfigWarning

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ConfigWarning):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _show_backend_choice() -> None:
    """"auto"'s backend choice and the accuracy-gate figures behind it go to stderr, one line each,
    so a user sees whether and why bf16/INT8 is used (hubcls.deploy logs them at INFO)."""
    import logging

    lg = logging.getLogger("hubcls.deploy")
    if not lg.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("hubcls: %(message)s"))
        lg.addHandler(h)
        lg.setLevel(logging.INFO)
        lg.propagate = False


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:  # read by hubcls.deploy._quiet (Paddle / Paddle Inference / paddle2onnx output)
        import os

        os.environ["HUBCLS_VERBOSE"] = "1"
        os.environ["GLOG_minloglevel"] = "0"
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    _plain_config_warnings()
    _show_backend_choice()
    try:
        return int(args.func(args) or 0)
    except HubclsError as exc:
        print(f"hubcls {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
