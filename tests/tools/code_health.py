"""Code-health figures for a source tree: public functions with type hints / docstrings (per package),
ruff findings, largest files. Used for the before/after numbers of issue 19 and by tests/test_lint.py.

    python tests/tools/code_health.py [ROOT]          # ROOT: a checkout (default: this one)

Definitions (kept simple so that they can be re-measured on any commit):

* a *public function* is a ``def`` at module level or directly in a class whose own name does not
  start with ``_`` (so ``__init__`` and other dunders are not counted), in any module of ``hubcls/``;
  functions nested in functions are not counted;
* it is *annotated* when every parameter except ``self``/``cls`` and the return value carry an
  annotation (``*args``/``**kwargs`` included);
* it is *documented* when it has a docstring, or when it overrides a documented method of a base
  class (``forward`` of a ``paddle.nn.Layer``, ``apply`` of a ``TransformOp``, ...): the contract
  is written once, on the base.
"""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]


@dataclass
class PublicFunction:
    """One public function: where it is and whether it is annotated / documented."""
    module: str
    qualname: str
    lineno: int
    annotated: bool
    documented: bool
    any_annotation: bool


@dataclass
class Tally:
    """Counts of one package."""
    total: int = 0
    annotated: int = 0
    documented: int = 0
    any_annotation: int = 0
    missing: List[PublicFunction] = field(default_factory=list)

    def add(self, fn: PublicFunction) -> None:
        self.total += 1
        self.annotated += fn.annotated
        self.documented += fn.documented
        self.any_annotation += fn.any_annotation
        if not (fn.annotated and fn.documented):
            self.missing.append(fn)

    def pct(self, what: str) -> float:
        return 100.0 * getattr(self, what) / self.total if self.total else 100.0


def _annotations(fn: ast.FunctionDef, in_class: bool) -> Tuple[bool, bool]:
    """(every parameter and the return annotated, anything annotated)."""
    args = fn.args
    params = list(args.posonlyargs) + list(args.args) + list(args.kwonlyargs)
    if in_class and params and params[0].arg in ("self", "cls") and not any(
            isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list):
        params = params[1:]
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    full = fn.returns is not None and all(p.annotation is not None for p in params)
    return full, fn.returns is not None or any(p.annotation is not None for p in params)


# classes whose documented methods subclasses inherit, outside hubcls: {class name: methods}
_EXTERNAL_BASES = {"Layer": {"forward", "extra_repr"}}


def _base_names(node: ast.ClassDef) -> List[str]:
    out = []
    for b in node.bases:
        if isinstance(b, ast.Name):
            out.append(b.id)
        elif isinstance(b, ast.Attribute):
            out.append(b.attr)
    return out


def class_index(root: Path) -> Dict[str, List[Tuple[List[str], Dict[str, bool]]]]:
    """class name -> [(base names, {method: has docstring})] over every module of root/hubcls."""
    index: Dict[str, List[Tuple[List[str], Dict[str, bool]]]] = {}
    for path in (root / "hubcls").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                methods = {f.name: ast.get_docstring(f) is not None for f in node.body
                           if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
                index.setdefault(node.name, []).append((_base_names(node), methods))
    return index


def _inherits_doc(index, bases: List[str], method: str, seen=None) -> bool:
    seen = set() if seen is None else seen
    for base in bases:
        if base in seen:
            continue
        seen.add(base)
        if method in _EXTERNAL_BASES.get(base, ()):
            return True
        for base_bases, methods in index.get(base, []):
            if methods.get(method) or _inherits_doc(index, base_bases, method, seen):
                return True
    return False


def public_functions(path: Path, module: str, index: Optional[dict] = None) -> Iterator[PublicFunction]:
    """Public functions of one source file (see the module docstring for what counts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    index = index or {}

    def visit(body, prefix: str, bases: Optional[List[str]]):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                full, some = _annotations(node, bases is not None)
                doc = ast.get_docstring(node) is not None or (
                    bases is not None and _inherits_doc(index, bases, node.name))
                yield PublicFunction(module, prefix + node.name, node.lineno, full, doc, some)
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from visit(node.body, prefix + node.name + ".", _base_names(node))
            elif isinstance(node, (ast.If, ast.Try)):  # definitions under `if TYPE_CHECKING:` etc.
                yield from visit(node.body, prefix, bases)

    yield from visit(tree.body, "", None)


def measure(root: Path) -> Dict[str, Tally]:
    """Tally per package of the ``hubcls`` tree under ``root`` (plus ``"all"``)."""
    tallies: Dict[str, Tally] = {"all": Tally()}
    index = class_index(root)
    for path in sorted((root / "hubcls").rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        pkg = "hubcls/__init__" if module == "hubcls" else (
            ".".join(parts[:2]) if (root / "hubcls" / parts[1]).is_dir() else "hubcls (top-level modules)")
        for fn in public_functions(path, module, index):
            tallies.setdefault(pkg, Tally()).add(fn)
            tallies["all"].add(fn)
    return tallies


def largest_files(root: Path, n: int = 8) -> List[Tuple[int, str]]:
    """(lines, path) of the n largest Python files under hubcls/."""
    sizes = [(sum(1 for _ in p.open(encoding="utf-8")), str(p.relative_to(root))) for p in (root / "hubcls").rglob("*.py")]
    return sorted(sizes, reverse=True)[:n]


def ruff_findings(root: Path, select: str) -> Optional[Dict[str, int]]:
    """{rule: count} of ``ruff check --select <select> hubcls`` (None when ruff is not installed)."""
    exe = shutil.which("ruff")
    if exe is None:
        return None
    # --isolated + explicit target: the same rules on any commit, whatever its ruff config
    r = subprocess.run([exe, "check", "--no-cache", "--isolated", "--target-version", "py39", "--select", select,
                        "--output-format", "json", "hubcls"], cwd=root, capture_output=True, text=True)
    counts: Dict[str, int] = {}
    for item in json.loads(r.stdout or "[]"):
        counts[item["code"] or "syntax"] = counts.get(item["code"] or "syntax", 0) + 1
    return counts


def main(argv: List[str]) -> int:
    root = Path(argv[1]).resolve() if len(argv) > 1 else REPO
    tallies = measure(root)
    print(f"public functions in {root}/hubcls (annotated = every parameter and the return):")
    print(f"  {'package':28} {'functions':>9} {'annotated':>10} {'(partly)':>9} {'documented':>11}")
    for pkg, t in sorted(tallies.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        print(f"  {pkg:28} {t.total:9d} {t.pct('annotated'):9.0f}% {t.pct('any_annotation'):8.0f}% "
              f"{t.pct('documented'):10.0f}%")
    for select in ("F", "B"):
        counts = ruff_findings(root, select)
        if counts is not None:
            print(f"ruff --select {select} hubcls: {sum(counts.values())} findings {dict(sorted(counts.items()))}")
    print("largest files (lines):")
    for lines, path in largest_files(root):
        print(f"  {lines:5d} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
