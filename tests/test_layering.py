"""The import graph of hubcls: no cycles, imports point down the layers, postprocessing defined once.

The rule (DESIGN.md): errors <- ops <- data <- models <- deploy <- hub / engine / det <- cli; a module
may import its own layer and the layers below it, never one above.

How the graph is built (from the source, nothing is imported):

* every ``import`` / ``from ... import`` statement anywhere in a module - at module level or inside a
  function or method - is an edge: a deferred import still makes one module need the other;
* an import under ``if TYPE_CHECKING:`` is not an edge: it never runs;
* ``from pkg import name`` is an edge to the module ``pkg.name`` when that is a module, else to
  ``pkg`` (its ``__init__``); relative imports are resolved against the importing module.

Modules outside the layers (``hubcls/__init__``, ``__main__``, ``_paddle``, ``_download``,
``registry``, ``plugins``, ``_lazy``) are the package's infrastructure: they may import only
``errors`` and each other (never a layer), and the layers may use them.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PKG = Path(__file__).resolve().parents[1] / "hubcls"
LAYERS = {"errors": 0, "ops": 1, "data": 2, "models": 3, "deploy": 4, "hub": 5, "engine": 5, "det": 5, "cli": 6}
INFRA_MAY_IMPORT = {"hubcls.errors"}
TOP = {"hubcls", "hubcls.__main__"}  # the package itself: re-exports and the console entry


def _modules() -> Dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import node, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def graph() -> Dict[str, Set[str]]:
    mods = _modules()
    edges: Dict[str, Set[str]] = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        out = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
                continue
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in mods else target)
        edges[mod] = {t for t in out if t in mods and t != mod}
    return edges


def _layer(mod: str):
    parts = mod.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_graph_sees_deferred_imports():
    """A test that cannot fail is worthless: the graph has the edges the rule is about."""
    edges = graph()
    assert "hubcls.deploy.pipeline" in edges["hubcls.hub.module"]  # module level
    assert "hubcls.models._builder" in edges["hubcls.models._resolve"]
    # inside a function (Module.serving_method imports from_base64 lazily ... and at module level)
    assert "hubcls.engine.infer" in edges["hubcls.cli.infer"]  # inside _run
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = _cycles(graph())
    assert not cycles, "import cycles (module-level and function-level imports both count):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_imports_point_down_the_layers():
    bad = []
    for mod, outs in graph().items():
        src = _layer(mod)
        for dst in outs:
            tgt = _layer(dst)
            if mod in TOP:
                continue
            if src is None:  # infrastructure
                if tgt is not None and dst not in INFRA_MAY_IMPORT:
                    bad.append(f"{mod} (infrastructure) -> {dst}")
            elif tgt is not None and tgt > src:
                bad.append(f"{mod} (layer {src}) -> {dst} (layer {tgt})")
    assert not bad, "imports pointing up (errors <- ops <- data <- models <- deploy <- hub/engine/det <- cli):\n" + \
        "\n".join(sorted(bad))


def test_softmax_and_topk_are_defined_once():
    """Every answer's probabilities and ranking come from hubcls/deploy/postprocess.py: no other module
    defines them, and no module on a prediction path computes an exp or an argsort of its own."""
    import re

    names = {"softmax", "topk", "topk_dicts", "unique_labels", "_topk"}
    found = []
    for path in PKG.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module-level functions
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
                found.append(f"{path.relative_to(PKG.parent)}:{node.lineno} {node.name}")
    assert all(f.startswith("hubcls/deploy/postprocess.py") for f in found), found
    assert {f.rsplit(" ", 1)[1] for f in found} == {"softmax", "topk", "topk_dicts", "unique_labels"}
    prediction_paths = [*PKG.joinpath("hub").rglob("*.py"), *PKG.joinpath("deploy").rglob("*.py"),
                        PKG / "engine" / "infer.py", PKG / "cli" / "infer.py", PKG / "cli" / "serve.py"]
    own = re.compile(r"\b(np|numpy|paddle)\.exp\(|\.argsort\(|np\.argsort\(|F\.softmax\(|nn\.functional\.softmax\(")
    bad = [f"{p.relative_to(PKG.parent)}:{i}" for p in prediction_paths if p.name != "postprocess.py"
           for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if own.search(line)]
    assert not bad, f"softmax / ranking computed outside deploy/postprocess.py: {bad}"
