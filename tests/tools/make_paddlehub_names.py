"""Record PaddleHub's image-classification module names as data (hubcls/models/paddlehub_modules.tsv).

One row per folder of PaddleHub's ``modules/image/classification/`` (nested folders such as
``SpinalNet_Gemstones/<module>`` included): the module name, the hubcls model it is (empty when
hubcls has no such architecture or weights, with the reason), how PaddleHub's module answers a
``hub serving`` request and which call its README documents. Only these facts are stored, no file
of PaddleHub's.

* ``serving``: ``data`` when the module is built on PaddleHub's ``ImageClassifierModule`` (its
  ``serving_method`` answers ``{"data": [...]}``, the README client reads
  ``r.json()["results"]["data"]``); ``list`` otherwise (a plain list of ``{label: prob}`` dicts).
* ``api``: ``predict`` (ImageClassifierModule: ``predict(images=[...])``), ``classification``
  (``classification(images=, paths=)``), ``classification_v1`` (Paddle 1.x modules whose code
  is not in the repository: ``classification(data={"image": [...]})``).

    python tests/tools/make_paddlehub_names.py /path/to/PaddleHub/.git [--ref HEAD]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "hubcls" / "models" / "paddlehub_modules.tsv"
ROOT = "modules/image/classification/"
HEADER = ("hub_name", "model", "serving", "api", "note")


def git(gitdir, *args) -> str:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], check=True, capture_output=True,
                          text=True).stdout


def module_dirs(gitdir, commit):
    """Folders under ROOT that hold a module: a module.py, or a README naming `hub install <name>`."""
    files = git(gitdir, "ls-tree", "-r", "--name-only", commit, ROOT).splitlines()
    dirs = {}
    for f in files:
        rel = f[len(ROOT):]
        parts = rel.split("/")
        for depth in (1, 2):
            if len(parts) > depth:
                d = "/".join(parts[:depth])
                dirs.setdefault(d, set()).add(parts[depth])
    out = {}
    for d, names in dirs.items():
        leaf = d.rsplit("/", 1)[-1]
        if "module.py" in names:
            out[leaf] = d
        elif "README.md" in names:
            readme = git(gitdir, "show", f"{commit}:{ROOT}{d}/README.md")
            if f"hub install {leaf}" in readme:
                out[leaf] = d
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def facts(gitdir, commit, d):
    def show(name):
        try:
            return git(gitdir, "show", f"{commit}:{ROOT}{d}/{name}")
        except subprocess.CalledProcessError:
            return ""

    module_py, readme = show("module.py"), show("README.md") + show("README_en.md")
    if "ImageClassifierModule" in module_py:
        return "data", "predict"
    if "def classification" in module_py or "classification(images=" in readme:
        return "list", "classification"
    if "classification(data=" in readme:
        return "list", "classification_v1"
    return "list", "other"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("gitdir", help="a PaddleHub clone's .git directory")
    p.add_argument("--ref", default="HEAD")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from hubcls.models._registry import _lookup_by_rules, pretrained_cfgs

    commit = git(args.gitdir, "rev-parse", args.ref).strip()
    pretrained_cfgs()  # load the families
    rows = []
    for name, d in module_dirs(args.gitdir, commit).items():
        serving, api = facts(args.gitdir, commit, d)
        cfg = _lookup_by_rules(name)
        if cfg is not None and cfg.has_weights:
            model, note = cfg.name, ""
        elif cfg is not None:
            model, note = "", f"{cfg.name} has no official weights in hubcls"
        else:
            imagenet = "imagenet" in name or name.endswith("_wsl")
            model, note = "", "architecture not in the hubcls zoo" if imagenet else "not an ImageNet-1k model"
        rows.append((name, model, serving, api, note))
    lines = [f"# PaddleHub's image-classification modules (github PaddlePaddle/PaddleHub @ {commit[:10]}, "
             f"{ROOT}); recorded by tests/tools/make_paddlehub_names.py", "\t".join(HEADER)]
    lines += ["\t".join(r) for r in rows]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    have = sum(1 for r in rows if r[1])
    print(f"wrote {OUT}: {len(rows)} PaddleHub modules, {have} of them hubcls models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
