"""Lint: ruff (F, B, I) and clang-format over the tree, and type hints + docstrings on the public
functions of ``hubcls/__init__``, ``hubcls.models`` and ``hubcls.data``.

The whole-tree checks (marked ``lint``) run always: the repository-wide sweep (``ruff check --fix .``
+ ``clang-format -i`` over csrc/) has landed, so any finding is new.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "tools"))
import code_health  # noqa: E402

# Public functions still without hints/docstrings, in modules whose owners are rewriting them in
# this wave (the model package / resolver, the restricted unpickler and weight files, the decoder and
# loader). Each is removed from here when its module is done; nothing else may be added.
PENDING: set = set()


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return exe


def _ruff(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("ruff"), "check", "--no-cache", "--output-format", "concise", *paths],
                          cwd=REPO, capture_output=True, text=True)


def test_ruff_finds_what_it_should(tmp_path):
    """The configuration really selects F, B and I (a lint test that cannot fail is worthless)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport os\n\n\ndef f(x=[]):\n    return undefined_name\n")
    r = subprocess.run([_tool("ruff"), "check", "--no-cache", "--output-format", "concise",
                        "--config", str(REPO / "pyproject.toml"), str(bad)], capture_output=True, text=True)
    codes = {line.split()[1] for line in r.stdout.splitlines() if line.startswith(str(bad))}
    assert {"F401", "F821", "B006", "I001"} <= codes, r.stdout


def _csrc_files():
    exts = {".cpp", ".h", ".cu", ".cuh", ".cc", ".hpp"}
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "csrc").rglob("*") if p.suffix in exts)


@pytest.mark.lint
def test_ruff_whole_tree():
    r = _ruff(".")
    assert r.returncode == 0, r.stdout[-6000:]


@pytest.mark.lint
def test_clang_format_csrc():
    r = subprocess.run([_tool("clang-format"), "--dry-run", "--Werror", "--style=file", *_csrc_files()],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-6000:]


def test_clang_format_style_file_parses():
    """The style file is valid for the pinned clang-format (a broken one would fail every hook)."""
    r = subprocess.run([_tool("clang-format"), "--style=file", "--dump-config"], cwd=REPO / "csrc",
                       capture_output=True, text=True)
    assert r.returncode == 0 and "ColumnLimit:     120" in r.stdout, r.stderr


@functools.lru_cache(maxsize=None)
def _tallies():
    return code_health.measure(REPO)


@pytest.mark.parametrize("package", ["hubcls/__init__", "hubcls (top-level modules)", "hubcls.models", "hubcls.data"])
def test_public_functions_have_type_hints_and_docstrings(package):
    tally = _tallies().get(package, code_health.Tally())
    missing = [f"{f.module}:{f.lineno} {f.qualname}" + ("" if f.annotated else " (no type hints)")
               + ("" if f.documented else " (no docstring)")
               for f in tally.missing if f.module not in PENDING]
    assert not missing, "public functions without type hints or docstring:\n" + "\n".join(missing)
