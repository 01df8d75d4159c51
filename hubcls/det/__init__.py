"""hubcls.det: zoo models as PaddleDetection backbones (PSS-DET settings).

``register_with_ppdet()`` applies the Paddle 3 compatibility layer for pip ``paddledet`` 2.6
(:mod:`hubcls.det.ppdet_compat`) and registers :class:`HubclsResNet` and :class:`HubclsBackbone` in
PaddleDetection's workspace, so its YAML configs can say ``backbone: HubclsResNet`` (or
``HubclsSENet``) where they said ``ResNet`` (``SENet``), keeping the section's arguments. Importing
hubcls.det does not import PaddleDetection.
"""
from __future__ import annotations

from pathlib import Path

from .backbone import DeformableConvV2, HubclsBackbone, HubclsResNet, HubclsSENet  # noqa: F401

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "det"
_registered = False


def register_with_ppdet() -> None:
    """Register the hubcls backbones with PaddleDetection (idempotent)."""
    global _registered
    if _registered:
        return
    try:
        from ppdet.core.workspace import global_config, register, serializable
    except ImportError as exc:
        raise ImportError(
            "PaddleDetection is not installed. Install it with: pip install --no-deps paddledet==2.6.0 "
            "typeguard shapely scipy terminaltables pycocotools pandas (see docs/detection.md)") from exc
    from . import ppdet_compat

    ppdet_compat.apply()
    for cls in (HubclsBackbone, HubclsResNet, HubclsSENet):
        if cls.__name__ not in global_config:
            register(serializable(cls))
    _registered = True
