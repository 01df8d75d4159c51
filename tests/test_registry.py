"""Registries: the generic Registry API and the model registry's one registration idiom.

The idiom tests read the family files as text: every registered name must be findable with grep in
its family file (``def <Name>(`` under ``@register_model`` for architectures, ``"<Name>"`` for weight
sets), which is what CONTRIBUTING.md promises a reader.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hubcls.errors import ConfigError, RegistryError
from hubcls.registry import Registry

MODELS_DIR = Path(__file__).resolve().parents[1] / "hubcls" / "models"


# ------------------------------------------------------------------ generic Registry
def test_registry_key_display_name_and_lookup():
    reg = Registry("widget", key=lambda n: str(n).lower().replace("-", "_"))

    @reg.register(name="Big-Widget")
    class BigWidget:
        def __init__(self, size=1):
            self.size = size

    assert reg.get("big_widget") is BigWidget and "BIG-WIDGET" in reg
    assert reg.display_name("big_widget") == "Big-Widget"
    assert reg.find("big_WIDGET") == "Big-Widget" and reg.find("small") is None
    assert reg.names() == ["Big-Widget"] and reg.keys() == ["big_widget"]
    assert reg.items() == [("Big-Widget", BigWidget)]
    assert reg.origin("big-widget").endswith(f"test_registry.py:{inspect.getsourcelines(BigWidget)[1]}")
    with pytest.raises(RegistryError, match=r"duplicate widget 'big_widget': already registered by .*test_registry"):
        reg.register(lambda: None, name="big_widget")
    with pytest.raises(RegistryError, match=r"unknown widget 'big_widgit'; did you mean Big-Widget\?"):
        reg.get("big_widgit")


def test_registry_build_names_the_config_path():
    reg = Registry("op")

    @reg.register(name="Resize")
    class Resize:
        def __init__(self, size):
            if size <= 0:
                raise ConfigError(f"size must be > 0, got {size}")
            self.size = size

    assert reg.build("resize", {"size": 3}, where="ops[0]").size == 3
    with pytest.raises(ConfigError, match=r"^ops\[0\]: unknown op 'Rezise'; did you mean Resize\?"):
        reg.build("Rezise", {}, where="ops[0]")
    with pytest.raises(ConfigError, match=r"^cfg\.name: unknown op"):
        reg.build("nope", {}, where="cfg", name_path="cfg.name")
    with pytest.raises(ConfigError, match=r"^ops\[1\]\.Resize: bad parameters \['sise'\]"):
        reg.build("Resize", {"sise": 3}, where="ops[1]")
    with pytest.raises(ConfigError, match=r"^ops\[2\]\.Resize: size must be > 0, got 0"):
        reg.build("Resize", {"size": 0}, where="ops[2]")
    with pytest.raises(ConfigError, match=r"parameters must be a mapping"):
        reg.build("Resize", [3], where="ops[3]")


# ------------------------------------------------------------------ the model registry's idiom
def _family_files():
    return sorted(p for p in MODELS_DIR.glob("*.py") if not p.name.startswith("_"))


def test_every_architecture_is_a_register_model_function_in_its_family_file():
    from hubcls.models import ARCHS

    for name, builder in ARCHS.items():
        if not builder.__module__.startswith("hubcls.models."):
            continue  # an installed plugin
        assert builder.__name__ == name, f"{name}: registered under another name than its function's"
        src = Path(inspect.getsourcefile(builder)).read_text()
        assert re.search(rf"^@register_model\ndef {re.escape(name)}\(", src, re.M), (
            f"{name}: not registered with `@register_model` + `def {name}(` in {builder.__module__}")
        assert builder.__doc__, f"{name}: builder has no docstring"


def test_every_weight_set_is_named_in_the_family_file_of_its_architecture():
    from hubcls.models import get_arch, pretrained_cfgs

    for cfg in pretrained_cfgs().values():
        builder = get_arch(cfg.arch)
        if not builder.__module__.startswith("hubcls.models."):
            continue
        src = Path(inspect.getsourcefile(builder)).read_text()
        assert f'"{cfg.name}"' in src, f"weights {cfg.name}: not named in {builder.__module__}"


def test_one_registration_idiom_and_no_private_registry_writes():
    for path in _family_files():
        src = path.read_text()
        assert "globals()[" not in src, f"{path.name}: registers through globals()"
        assert not re.search(r"^(for|while) .*:\n(\s+.*\n)*?\s+register_(model|pretrained)\(", src, re.M), (
            f"{path.name}: registers names in a loop (write each name out)")
        assert not re.search(r"^def _(make|register)\b", src, re.M), f"{path.name}: a registration helper"
    for path in (MODELS_DIR.parent).rglob("*.py"):
        if path.name == "registry.py" and path.parent.name == "hubcls":
            continue
        assert not re.search(r"\b[A-Z_]+\._(names|items|origins)\[", path.read_text()), (
            f"{path}: writes or reads a registry's private tables")


def test_zoo_table_rows_are_all_registered():
    from hubcls.models import pretrained_cfgs, zoo_table
    from hubcls.models._registry import canonical_name

    registered = {canonical_name(n) for n in pretrained_cfgs()}
    missing = [n for n in zoo_table() if canonical_name(n) not in registered]
    assert not missing, f"zoo.tsv rows without a registered weight set: {missing}"


def test_no_two_builtin_names_collapse_to_one_spelling():
    """resolve() drops underscores as a last resort; two built-ins that differ only there would make
    a spelling ambiguous."""
    from hubcls.models import ARCHS, pretrained_cfgs
    from hubcls.models._registry import canonical_name

    seen = {}
    for name in set(ARCHS.names()) | {c.name for c in pretrained_cfgs().values()}:
        squashed = canonical_name(name).replace("_", "")
        assert squashed not in seen or canonical_name(seen[squashed]) == canonical_name(name), (name, seen[squashed])
        seen[squashed] = name


def test_class_naming_rule():
    """A family's class is named after the family; it takes the suffix ``Model`` only where that name
    is itself a model name (AlexNet, GoogLeNet, InceptionV3, ...) - see CONTRIBUTING.md."""
    from hubcls.models import ARCHS, pretrained_cfgs

    names = {n.lower() for n in ARCHS.names()} | {c.name.lower() for c in pretrained_cfgs().values()}
    for name, builder in ARCHS.items():
        if not builder.__module__.startswith("hubcls.models."):
            continue
        cls = inspect.signature(builder).return_annotation
        assert isinstance(cls, str) and cls[:1].isupper(), f"{name}: builder does not annotate its class"
        assert cls.lower() not in names, f"{name}: class {cls} has the name of a model"
        if cls.endswith("Model"):
            assert cls[:-5].lower() in names, f"{cls}: suffix Model without a name clash"
        assert not re.search(r"NetNet$|^Zoo", cls), cls


def test_docs_list_every_family_file():
    docs = (MODELS_DIR.parents[1] / "docs" / "models.md").read_text()
    missing = [p.name for p in _family_files() if f"`{p.name}`" not in docs]
    assert not missing, f"docs/models.md's family table lacks {missing}"
