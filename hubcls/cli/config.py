"""``hubcls config convert|show|check``: PaddleClas configs, old and new.

    hubcls config convert configs/ResNet/ResNet50_vd.yaml --output ResNet50_vd_2x.yaml
    hubcls config show -c ResNet50_vd -o Global.epochs=10
    hubcls config check -c my.yaml --strict
"""
from __future__ import annotations

import sys

EXAMPLES = """examples:
  hubcls config convert configs/quick_start/ResNet50_vd.yaml                 # release/2.0 -> 2.x, to stdout
  hubcls config convert old.yaml -o TRAIN.batch_size=64 --output new.yaml  # old-key override, write a file
  hubcls config check -c my.yaml --strict                                   # unknown keys are errors
"""


def _dump(cfg) -> str:
    import yaml

    class _NoAlias(yaml.SafeDumper):
        def ignore_aliases(self, data):
            return True

    clean = {k: v for k, v in cfg.items() if not str(k).startswith("_")}
    return yaml.dump(clean, Dumper=_NoAlias, sort_keys=False, allow_unicode=True)


def _write(text: str, output) -> None:
    if output in (None, "-"):
        sys.stdout.write(text)
        return
    from pathlib import Path

    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}", file=sys.stderr)


def _convert(args) -> int:
    from ..engine import config_legacy as legacy
    from ..engine.config import apply_override, check_config_keys, load_config, read_yaml, validate_config
    from ..errors import ConfigError

    raw, source = read_yaml(args.config)
    if not legacy.is_release20(raw):
        raise ConfigError(f"{source} is already a 2.x config (Global/Arch/...); nothing to convert "
                          "(`hubcls config show -c` prints it with defaults and overrides)")
    for ov in args.override:
        if legacy.is_old_key(ov):
            apply_override(raw, ov)
    new, notes = legacy.convert(raw, world_size=args.world_size)
    for ov in args.override:
        if not legacy.is_old_key(ov):
            apply_override(new, ov)
    # the converted file must load as it is: validate it (defaults merged in a copy only)
    full = load_config(new, validate=False)
    validate_config(full)
    check_config_keys(full, strict=args.strict)
    header = [f"# converted by `hubcls config convert` from {source} (PaddleClas release/2.0 schema)"]
    header += [f"#   {n}" for n in notes]
    text = "\n".join(header) + "\n" + _dump(new)
    _write(text, args.output)
    return 0


def _show(args) -> int:
    from ..engine.config import load_config

    cfg = load_config(args.config, args.override, strict=args.strict)
    text = _dump(cfg)
    if cfg.get("_converted_from"):
        text = "# converted from release/2.0:\n" + "".join(f"#   {n}\n" for n in cfg["_converted_from"]) + text
    _write(text, args.output)
    return 0


def _check(args) -> int:
    import warnings

    from ..engine.config import load_config
    from ..errors import ConfigWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # listed below instead
        cfg = load_config(args.config, args.override, strict=args.strict)
    from ..engine.config_schema import check_keys

    issues = check_keys(cfg)
    unknown = [i for i in issues if i.kind == "unknown"]
    ignored = [i for i in issues if i.kind == "ignored"]
    for n in cfg.get("_converted_from") or []:
        print(f"converted: {n}")
    for i in unknown:
        print(f"unknown: {i.message}")
    for i in ignored:
        print(f"ignored: {i.message}")
    print(f"{cfg.get('_source')}: valid; {len(unknown)} unknown key(s), {len(ignored)} accepted but not used")
    return 1 if unknown else 0


def register(sub):
    import argparse

    p = sub.add_parser("config", help="convert release/2.0 configs, show or check a config",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cs = p.add_subparsers(dest="config_command", metavar="ACTION")

    c = cs.add_parser("convert", help="PaddleClas release/2.0 config -> 2.x YAML (every key mapped or reported)",
                      epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("config", metavar="OLD.yaml", help="a release/2.0 config (ARCHITECTURE/TRAIN/VALID/...)")
    c.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="override in the old key space (TRAIN.batch_size=64, epochs=10) or the new (Global.epochs=10)")
    c.add_argument("--output", "--out", dest="output", metavar="FILE", help="write the converted YAML here (default: stdout)")
    c.add_argument("--world-size", type=int, default=1,
                   help="processes the run will use: release/2.0's batch_size is global, hubcls's per process")
    c.add_argument("--strict", action="store_true", help="unknown keys are errors")
    c.set_defaults(func=_convert)

    for name, fn, helptext in (("show", _show, "print the effective config (defaults, overrides, conversion applied)"),
                               ("check", _check, "validate a config; list unknown and accepted-but-unused keys")):
        s = cs.add_parser(name, help=helptext)
        s.add_argument("-c", "--config", required=True, help="YAML config: a path or a shipped name")
        s.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
        s.add_argument("--strict", action="store_true", help="unknown keys are errors")
        if name == "show":
            s.add_argument("--output", "--out", dest="output", metavar="FILE", help="write the YAML here (default: stdout)")
        s.set_defaults(func=fn)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
