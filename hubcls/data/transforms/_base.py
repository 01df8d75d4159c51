"""The augmenter registry, the op base class, the per-sample context and the config readers every op
shares."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import numpy as np

from ...errors import ConfigError
from ...registry import Registry
from ..rng import seed_globals

#: Per-sample transform ops by PaddleClas name (built-ins register on import; plugins on first lookup).
AUGMENTERS = Registry("augmenter", group="hubcls.augmenters")


class SampleError(ValueError):
    """A sample cannot go through the pipeline (e.g. smaller than a fixed crop): a bad sample."""


@dataclass
class Context:
    """What an op may know besides the image: position in training and the input layout."""
    epoch: int = 0
    index: int = 0
    layout: str = "HWC"        # layout of the op's input
    dtype: str = "uint8"       # dtype of the op's input


class TransformOp:
    """Base of every pipeline op. ``kind`` tells the compiler what it may do with the op."""

    kind = "image"             # "decode" | "geometric" | "normalize" | "layout" | "image"
    changes_size = False       # geometric ops that resample

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        """Transform one image, drawing randomness only from ``rng``; subclasses implement it."""
        raise NotImplementedError

    def __call__(self, img: np.ndarray, rng: Optional[np.random.Generator] = None,
                 ctx: Optional[Context] = None) -> np.ndarray:
        return self.apply(img, rng if rng is not None else np.random.default_rng(), ctx or Context())

    def out_size(self, in_size: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
        """(w, h) of the output given the input's (w, h) (None = unknown/variable)."""
        return in_size

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class ForeignOp(TransformOp):
    """Wraps a plain callable ``op(img) -> img`` (PaddleClas-style plugin augmenter)."""

    def __init__(self, name: str, obj: Callable[[Any], Any]):
        self.name = name
        self._obj = obj

    def apply(self, img: np.ndarray, rng: np.random.Generator, ctx: Context) -> np.ndarray:
        seed_globals(rng)
        out = self._obj(img)
        return np.asarray(out)

    def __repr__(self) -> str:
        return f"{self.name}<{self._obj!r}>"


def build_op(registry: Registry, entry: Any, where: str, **defaults: Any) -> Any:
    """One ``{OpName: {params}}`` config entry -> the op object from ``registry``, with errors that
    name the config path (``where``). ``defaults`` fill parameters the entry does not set."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ConfigError(f"{where}: each op must be a one-key mapping {{OpName: {{params}}}}, got {entry!r}")
    (name, params), = entry.items()
    if params is None:
        params = {}
    if isinstance(params, dict):
        params = {**defaults, **params}
    return registry.build(name, params, where=where)


def as_pair(size: Any, name: str) -> Tuple[int, int]:
    """PaddleClas size: int -> (s, s); [a, b] is passed to cv2.resize as (w, h)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ConfigError(f"{name}.size must be an int or [w, h], got {size!r}")


def eval_number(v: Any, name: str) -> float:
    """A config number; PaddleClas configs also write fractions such as ``scale: 1.0/255.0`` (a YAML
    string PaddleClas eval()s; here it is parsed, never evaluated)."""
    if isinstance(v, str):
        try:
            num, _, den = v.partition("/")
            return float(num) / float(den) if den else float(num)
        except ValueError:
            raise ConfigError(f"{name}: cannot read {v!r} as a number") from None
    return float(v)
