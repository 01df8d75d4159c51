"""Name -> object registries (backbones, augmenters, datasets, losses, optimizers, backends, ...).

A duplicate registration is an error that says where the first one came from; an unknown name lists
close matches. Entry-point plugins fill the same registries: a registry made with
``group="hubcls.<something>"`` reads that entry-point group on its first lookup (see hubcls.plugins).
"""
from __future__ import annotations

import difflib
import fnmatch
import inspect
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from .errors import ConfigError, RegistryError


def _origin(obj: Any) -> str:
    try:
        return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
    except (TypeError, OSError):
        return getattr(obj, "__module__", "<unknown>")


def _lower(name: str) -> str:
    return str(name).strip().lower()


class Registry:
    """A mapping of names to objects, compared after ``key`` (default: case-insensitive).

    kind: what the registry holds, for messages ("backbone", "augmenter").
    group: the entry-point group whose plugins fill it (``"hubcls.augmenters"``), read lazily.
    key: the normalisation names are compared after; the registry keeps each name's registered
        spelling for display.
    on_first_lookup: called once before the first lookup (before the plugins are read); the model
        registry imports its family files there.
    """

    def __init__(self, kind: str, on_first_lookup: Optional[Callable[["Registry"], None]] = None, *,
                 group: Optional[str] = None, key: Callable[[str], str] = _lower):
        self.kind = kind
        self.group = group
        self.key = key
        self._items: Dict[str, Any] = {}
        self._names: Dict[str, str] = {}  # key -> registered spelling
        self._origins: Dict[str, Optional[str]] = {}
        self._on_first_lookup = on_first_lookup
        self._looked_up = False

    def load(self) -> None:
        """Run the first-lookup hook and read the entry-point plugins now (idempotent); every lookup
        does it implicitly."""
        if not self._looked_up:
            self._looked_up = True  # set first: the hooks look names up themselves
            try:
                if self._on_first_lookup is not None:
                    self._on_first_lookup(self)
                if self.group is not None:
                    from .plugins import load_entry_points

                    load_entry_points(self.group, self)
            except BaseException:
                # a clash between plugins is an error on every lookup until it is fixed, not once
                self._looked_up = False
                raise

    def register(self, obj: Any = None, *, name: Optional[str] = None, origin: Optional[str] = None,
                 force: bool = False) -> Any:
        """Register ``obj`` (usable as ``@registry.register`` or ``@registry.register(name=...)``).

        origin: where the object comes from, for messages (default: its source file and line,
        worked out only when a message needs it). force: replace an existing entry silently.
        """

        def _do(o: Any) -> Any:
            key_name = name or o.__name__
            key = self.key(key_name)
            # the origin is worked out only when asked for: inspect.getsourcelines re-parses the whole
            # module per class, which made importing the model zoo take seconds
            if key in self._items and not force and self._items[key] is not o:
                raise RegistryError(
                    f"duplicate {self.kind} {key_name!r}: already registered by {self._origin_of(key)}, "
                    f"registered again by {origin or _origin(o)}"
                )
            self._items[key] = o
            self._names[key] = key_name
            self._origins[key] = origin
            return o

        return _do(obj) if obj is not None else _do

    def get(self, name: str) -> Any:
        """The object registered as ``name``; an unknown name raises RegistryError with close matches."""
        self.load()
        key = self.key(name)
        if key not in self._items:
            close = difflib.get_close_matches(key, self._items.keys(), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(self._names[c] for c in close)}?" if close else ""
            raise RegistryError(f"unknown {self.kind} {name!r}{hint} ({len(self._items)} registered)")
        return self._items[key]

    def find(self, name: str) -> Optional[str]:
        """The registered spelling of the entry ``name`` refers to, or None. The plugin loader asks it
        before registering a plugin, so a registry with richer name resolution (the model registry)
        overrides it and a plugin can never shadow what a spelling already reaches."""
        key = self.key(name)
        return self._names[key] if key in self._items else None

    def build(self, name: str, params: Optional[dict] = None, *, where: str = "",
              name_path: Optional[str] = None) -> Any:
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
        """Where ``name`` was registered: ``file:line`` of a built-in, the distribution of a plugin."""
        self.load()
        key = self.key(name)
        if key not in self._items:
            raise RegistryError(f"unknown {self.kind} {name!r}")
        return self._origin_of(key)

    def display_name(self, name: str) -> str:
        """The registered spelling of ``name`` (``resnet50_vd`` -> ``ResNet50_vd``)."""
        self.load()
        key = self.key(name)
        if key not in self._items:
            raise RegistryError(f"unknown {self.kind} {name!r}")
        return self._names[key]

    def __contains__(self, name: object) -> bool:
        self.load()
        return self.key(str(name)) in self._items

    def names(self, pattern: str = "*") -> List[str]:
        """Registered spellings whose key matches the shell wildcard ``pattern``, sorted."""
        self.load()
        pat = self.key(pattern) if pattern != "*" else "*"
        return sorted(n for k, n in self._names.items() if fnmatch.fnmatchcase(k, pat) or
                      fnmatch.fnmatchcase(n.lower(), pattern.lower()))

    def keys(self) -> List[str]:
        """The normalised keys (``key(name)``) of every entry, in registration order."""
        self.load()
        return list(self._items)

    def items(self) -> List[Tuple[str, Any]]:
        """(registered spelling, object) pairs in registration order."""
        self.load()
        return [(self._names[k], o) for k, o in self._items.items()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} items)"
