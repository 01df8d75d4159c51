"""Record PaddleClas's YAML configs as parsed mappings (tests/data/paddleclas_configs.json.gz).

The tests check hubcls against the configs users actually have: every release/2.0 config
(``configs/**.y*ml``, the 2020 schema) and the 2.x ImageNet configs (``ppcls/configs/ImageNet/**``)
of architectures hubcls has. Only the parsed key/values are stored (no file of theirs is vendored),
with the commit each came from.

    python tests/tools/make_paddleclas_configs.py /path/to/PaddleClas/.git   # a clone with both refs
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import yaml

REFS = {"release20": ("release/2.0", "configs/"), "v2x": ("develop", "ppcls/configs/ImageNet/")}
OUT = Path(__file__).resolve().parents[1] / "data" / "paddleclas_configs.json.gz"


def git(gitdir, *args) -> str:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], check=True, capture_output=True, text=True).stdout


def main(gitdir: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from hubcls.models import list_models

    ours = set(list_models())
    data = {"_source": "PaddleClas (github PaddlePaddle/PaddleClas) YAML configs, parsed with yaml.safe_load; "
                       "recorded by tests/tools/make_paddleclas_configs.py"}
    for key, (ref, prefix) in REFS.items():
        commit = git(gitdir, "rev-parse", ref).strip()
        files = [f for f in git(gitdir, "ls-tree", "-r", "--name-only", commit, prefix).splitlines()
                 if f.endswith((".yaml", ".yml"))]
        configs = {}
        for f in sorted(files):
            parsed = yaml.safe_load(git(gitdir, "show", f"{commit}:{f}"))
            if key == "v2x":
                arch = ((parsed or {}).get("Arch") or {}).get("name")
                if arch not in ours:
                    continue
            configs[f] = parsed
        data[key] = {"ref": ref, "commit": commit, "configs": configs}
        print(f"{key}: {ref} @ {commit[:10]}: {len(configs)} configs")
    with gzip.open(OUT, "wt", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True, separators=(",", ":"))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".git")
