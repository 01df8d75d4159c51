"""Which ``Arch.*`` keys a model takes: unknown ones are a ConfigError naming the key, the closest
allowed key and the full list, before anything is built (never a raw TypeError from a constructor)."""
from __future__ import annotations

from typing import Optional

from ..errors import ConfigError


def _callable_kwargs(fn, depth: int = 0, fixed_out: Optional[set] = None) -> Optional[set]:
    """Keyword arguments ``fn`` accepts, following ``**kwargs`` into the hubcls.models classes and
    functions it forwards them to (closure cells and globals it names). None: cannot tell. The
    arguments ``fn`` sets itself (fixed by the architecture name) are added to ``fixed_out``."""
    import inspect
    import types

    if depth > 4:
        return None
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    params = sig.parameters.values()
    names = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"}
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return names
    code = getattr(target, "__code__", None)
    if code is None:
        return None

    def ours(v):
        return (inspect.isclass(v) or isinstance(v, types.FunctionType)) and \
            str(getattr(v, "__module__", "")).startswith("hubcls.models")

    targets, fixed = [], _fixed_keywords(target, names)
    for cell in getattr(target, "__closure__", None) or ():
        try:
            v = cell.cell_contents
        except ValueError:
            continue
        if ours(v):
            targets.append(v)
        elif isinstance(v, dict):  # register_zoo_member's arch_kwargs: set by the name
            fixed |= {k for k in v if isinstance(k, str)}
    glb = getattr(target, "__globals__", {})
    targets += [glb[n] for n in code.co_names if n in glb and ours(glb[n])]
    if not targets:
        return None
    for t in targets:
        sub = _callable_kwargs(t, depth + 1, fixed_out)
        if sub is None:
            return None
        names |= sub
    if fixed_out is not None:
        fixed_out |= fixed & names
    return names - fixed


def _fixed_keywords(fn, own: set) -> set:
    """Keyword arguments ``fn`` passes itself in its calls (``ResNet(layers=50, **kwargs)``): the
    architecture name fixes them, so a config cannot set them."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            out |= {kw.arg for kw in node.keywords if kw.arg and kw.arg not in own}
    return out


def model_kwargs(name: str, fixed: Optional[set] = None) -> Optional[set]:
    """The ``Arch.*`` model arguments architecture ``name`` takes (None when it cannot be told, e.g.
    a plugin builder taking ``**kwargs`` it does not forward to a class)."""
    from ..models._registry import get_arch, resolve

    try:
        builder = get_arch(resolve(name).arch)
    except Exception:  # noqa: BLE001 - unknown names are reported by create_model itself
        return None
    kw = _callable_kwargs(builder, fixed_out=fixed)
    # class_num: PaddleClas's alias of num_classes (Arch.class_num is the config key);
    # kwargs/args: helper functions that take a dict of options by that name, not config keys
    return None if kw is None else kw - {"class_num", "kwargs", "args"}


def _model_kwarg_error(name: str, kwargs: dict, exc: TypeError) -> ConfigError:
    """A TypeError from building the model -> a ConfigError naming the Arch key and the allowed ones."""
    import difflib
    import re

    allowed = model_kwargs(name)
    allowed_txt = ", ".join(sorted(allowed - {"num_classes"})) if allowed else "none"
    m = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    if m:
        key = m.group(1)
        close = difflib.get_close_matches(key, sorted(allowed or ()), n=1)
        hint = f" (did you mean Arch.{close[0]}?)" if close else ""
        return ConfigError(f"Arch.{key}: {name} does not take {key!r}{hint}; its arguments are: {allowed_txt}")
    m = re.search(r"multiple values for keyword argument '(\w+)'", str(exc))
    if m:
        return ConfigError(f"Arch.{m.group(1)}: fixed by the architecture name {name}; remove it from Arch")
    return ConfigError(f"Arch ({name}): cannot build the model with {sorted(kwargs)}: {exc}")


def check_arch_kwargs(cfg: dict) -> None:
    """Refuse Arch keys the architecture does not take, before anything is built or loaded."""
    arch = cfg.get("Arch") or {}
    name = arch.get("name")
    if not name:
        return
    fixed: set = set()
    allowed = model_kwargs(str(name), fixed)
    if allowed is None:
        return
    from .config_schema import ARCH_IGNORED, ARCH_KEYS

    for key in arch:
        if key in ARCH_KEYS or key in ARCH_IGNORED or key in allowed or str(key).startswith("_"):
            continue
        if key in fixed:
            raise ConfigError(f"Arch.{key}: fixed by the architecture name {name}; remove it from Arch "
                              f"(or pick the architecture with the {key} you want)")
        raise _model_kwarg_error(str(name), {key: arch[key]}, TypeError(f"unexpected keyword argument '{key}'"))
