"""What the generated PaddleHub module packages (``hubcls hub-module NAME``) import.

With PaddleHub installed, ``moduleinfo``/``serving``/``runnable`` are PaddleHub's own decorators, so
``hub install <dir>`` + ``paddlehub.Module(name=...)``, ``hub run`` and ``hub serving`` work. Without it
they are no-ops that keep the same metadata, so ``hubcls.hub.Module(directory=<dir>)``, ``hubcls run``
and importing the package need no PaddleHub.

PaddleHub's @moduleinfo rebuilds the decorated class (new bases: ours + its RunModule) and sets
``name``, ``version``, ``directory``, ... as class attributes; :class:`HubModule` therefore
takes its model from the class attribute ``HUBCLS_MODEL`` and keeps PaddleHub's ``name``.
"""
from __future__ import annotations

from .module import Module

try:  # pragma: no cover - exercised by tests/test_paddlehub_compat.py in PaddleHub's venv
    from paddlehub.module.module import moduleinfo, runnable, serving  # noqa: F401
except Exception:  # noqa: BLE001 - no PaddleHub (or one that fails to import): plain decorators

    def moduleinfo(name: str, version: str, author: str = None, author_email: str = None,
                   summary: str = None, type: str = None, meta=None):  # noqa: A002 - PaddleHub's names
        def _wrap(cls):
            cls.hub_name = name
            cls.version = version
            cls.author, cls.author_email, cls.summary, cls.type = author, author_email, summary, type
            return cls

        return _wrap

    def serving(func):
        return func

    def runnable(func):
        return func


class HubModule(Module):
    """Base class of the generated PaddleHub modules: a :class:`hubcls.hub.Module` for
    ``HUBCLS_MODEL``; ``weights``/``label_list``/``use_gpu``/``load_checkpoint`` pass through. A
    module named as a PaddleHub module answers as that module does (see Module)."""

    HUBCLS_MODEL: str = ""

    def __getattribute__(self, attr):
        # PaddleHub's RunModule wraps every method call of a non-Layer module in static-graph mode
        # (for legacy static modules); hubcls runs dygraph, so plain attribute access it is.
        return object.__getattribute__(self, attr)

    def __init__(self, weights=None, label_list=None, use_gpu: bool = False, **kwargs):
        # PaddleHub passes ``directory`` for some code paths; the model comes from HUBCLS_MODEL
        kwargs.pop("directory", None)
        hub_name = getattr(type(self), "name", None) or getattr(type(self), "hub_name", None)
        from ..models import paddlehub_module

        # under PaddleHub's own module name, the Module takes PaddleHub's conventions for that module
        known = isinstance(hub_name, str) and paddlehub_module(hub_name) is not None
        super().__init__(name=hub_name if known else self.HUBCLS_MODEL, weights=weights, label_list=label_list,
                         use_gpu=use_gpu, **kwargs)
        if isinstance(hub_name, str):
            # PaddleHub code and users read ``module.name`` as the hub name
            self.name = self.hub_name = hub_name
