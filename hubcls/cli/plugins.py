"""``hubcls plugins``: installed entry-point plugins (backbones, augmenters, ...), where from, and status."""
from __future__ import annotations

import json
import warnings


def _run(args) -> int:
    from ..plugins import GROUPS, PLUGIN_API_VERSION, PluginWarning, plugin_report

    with warnings.catch_warnings():
        # failures are shown in the table; no need to print each warning too
        warnings.simplefilter("ignore", PluginWarning)
        records = plugin_report(load=not args.no_load)
    if args.json:
        print(json.dumps([r.__dict__ for r in records], indent=2))
        return 0
    print(f"plugin API version {PLUGIN_API_VERSION}")
    if not records:
        print(f"no plugins installed (entry-point groups {', '.join(GROUPS)})")
        return 0
    rows = [("GROUP", "NAME", "DISTRIBUTION", "STATUS", "OBJECT", "LOCATION")]
    for r in records:
        rows.append((r.group, r.name, f"{r.dist} {r.dist_version}".strip(), r.status, r.value, r.location))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    failed = [r for r in records if r.error]
    for r in failed:
        print(f"\n{r.group} {r.name} ({r.dist}): {r.status}: {r.error}")
    return 0


def register(sub):
    from ._common import add_parser

    p = add_parser(sub, "plugins", help="list installed plugins (backbones, augmenters) and where they come from",
                   examples=["hubcls plugins", "hubcls plugins --no-load        # entry points only, nothing imported",
                             "hubcls plugins --json"])
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument("--no-load", action="store_true", help="only list entry points, do not import them")
    p.set_defaults(func=_run)
