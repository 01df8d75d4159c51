"""Name -> object registries (backbones, augmenters, losses, optimizers, LR schedules, ...).

A duplicate registration is an error that says where the first one came from; an unknown name lists
close matches. Plugins fill the same registries through entry points (see hubcls.plugins).
"""
from __future__ import annotations

import difflib
import fnmatch
import inspect
from typing import Callable, Dict, Iterator, Optional

from .errors import ConfigError, RegistryError


def _origin(obj) -> str:
    try:
        return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
    except (TypeError, OSError):
        return getattr(obj, "__module__", "<unknown>")


class Registry:
    """A case-insensitive mapping of names to objects.

    ``on_lookup`` is called once before the first lookup; the plugin loader uses it to read entry
    points lazily.
    """

    def __init__(self, kind: str, on_first_lookup: Optional[Callable[["Registry"], None]] = None):
        self.kind = kind
        self._items: Dict[str, object] = {}
        self._names: Dict[str, str] = {}  # lower-case key -> registered spelling
        self._origins: Dict[str, str] = {}
        self._on_first_lookup = on_first_lookup
        self._looked_up = False

    def _ensure_loaded(self):
        if not self._looked_up:
            self._looked_up = True
            if self._on_first_lookup is not None:
                self._on_first_lookup(self)

    def register(self, obj=None, *, name: Optional[str] = None, origin: Optional[str] = None, force: bool = False):
        """Register ``obj`` (usable as ``@registry.register`` or ``@registry.register(name=...)``)."""

        def _do(o):
            key_name = name or o.__name__
            key = key_name.lower()
            # the origin is worked out only when asked for: inspect.getsourcelines re-parses the whole
            # module per class, which made importing the model zoo take seconds
            where = origin
            if key in self._items and not force and self._items[key] is not o:
                raise RegistryError(
                    f"duplicate {self.kind} {key_name!r}: already registered by {self._origin_of(key)}, "
                    f"registered again by {where or _origin(o)}"
                )
            self._items[key] = o
            self._names[key] = key_name
            self._origins[key] = where
            return o

        return _do(obj) if obj is not None else _do

    def get(self, name: str):
        self._ensure_loaded()
        key = str(name).lower()
        if key not in self._items:
            close = difflib.get_close_matches(key, self._items.keys(), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(self._names[c] for c in close)}?" if close else ""
            raise RegistryError(f"unknown {self.kind} {name!r}{hint} ({len(self._items)} registered)")
        return self._items[key]

    def build(self, name: str, params: Optional[dict] = None, *, where: str = "",
              name_path: Optional[str] = None) -> object:
        """Look ``name`` up and call it with ``params`` (a config section); an unknown name or bad
        parameters raise ConfigError naming the config path ``where`` (``name_path``: the path of
        the name itself when it is a key of its own, e.g. ``dataset.name``)."""
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise ConfigError(f"{where}.{name}: parameters must be a mapping, got {params!r}")
        try:
            factory = self.get(name)
        except RegistryError as exc:
            raise ConfigError(f"{name_path or where}: {exc}") from None
        try:
            return factory(**params)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{name}: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"{where}.{name}: bad parameters {sorted(params)}: {exc}") from None

    def _origin_of(self, key: str) -> str:
        if self._origins.get(key) is None:
            self._origins[key] = _origin(self._items[key])
        return self._origins[key]

    def origin(self, name: str) -> str:
        self._ensure_loaded()
        return self._origin_of(str(name).lower())

    def __contains__(self, name) -> bool:
        self._ensure_loaded()
        return str(name).lower() in self._items

    def names(self, pattern: str = "*") -> list:
        self._ensure_loaded()
        pat = pattern.lower()
        return sorted(n for k, n in self._names.items() if fnmatch.fnmatchcase(k, pat))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} items)"
