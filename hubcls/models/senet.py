"""SE-ResNet-vd, SE-ResNeXt (+vd) and SENet154_vd: ResNets with squeeze-and-excitation.

Built on resnext.ResNeXt (release/2.0 / model_zoo parameter names; SE layers are
``bb_<stage>_<i>.scale.squeeze`` / ``.excitation``, reduction 16).
"""
from __future__ import annotations

from typing import Any

from ._pretrained import zoo_cfg
from ._registry import register_model, register_pretrained
from .resnext import WIDTHS_32X4D, WIDTHS_64X4D, ResNeXt, build_resnext

_FC_STATIC_SE = ("fc6_weights", "fc6_offset")  # Paddle 1.x classifier names of the SE nets' tars


@register_model
def SE_ResNet18_vd(**kwargs: Any) -> ResNeXt:
    """SE-ResNet-18-vd (squeeze-excite, reduction 16)."""
    return build_resnext(kwargs, layers=18, stem="vd", vd_shortcut=True, se_reduction=16, out_mult=1,
                         fc_static=_FC_STATIC_SE)


@register_model
def SE_ResNet34_vd(**kwargs: Any) -> ResNeXt:
    """SE-ResNet-34-vd (squeeze-excite, reduction 16)."""
    return build_resnext(kwargs, layers=34, stem="vd", vd_shortcut=True, se_reduction=16, out_mult=1,
                         fc_static=_FC_STATIC_SE)


@register_model
def SE_ResNet50_vd(**kwargs: Any) -> ResNeXt:
    """SE-ResNet-50-vd (squeeze-excite, reduction 16)."""
    return build_resnext(kwargs, layers=50, stem="vd", vd_shortcut=True, se_reduction=16, out_mult=4,
                         fc_static=_FC_STATIC_SE)


@register_model
def SE_ResNeXt50_32x4d(**kwargs: Any) -> ResNeXt:
    """SE-ResNeXt-50 32x4d."""
    return build_resnext(kwargs, layers=50, cardinality=32, widths=WIDTHS_32X4D, out_mult=2, se_reduction=16,
                         naming="se", fc_static=_FC_STATIC_SE, static_dropout=0.5)


@register_model
def SE_ResNeXt101_32x4d(**kwargs: Any) -> ResNeXt:
    """SE-ResNeXt-101 32x4d."""
    return build_resnext(kwargs, layers=101, cardinality=32, widths=WIDTHS_32X4D, out_mult=2, se_reduction=16,
                         naming="se", fc_static=_FC_STATIC_SE, static_dropout=0.5)


@register_model
def SE_ResNeXt50_vd_32x4d(**kwargs: Any) -> ResNeXt:
    """SE-ResNeXt-50 32x4d, vd stem (128) and shortcuts."""
    return build_resnext(kwargs, layers=50, cardinality=32, widths=WIDTHS_32X4D, out_mult=2, stem="vd",
                         stem_width=128, vd_shortcut=True, se_reduction=16, naming="se",
                         fc_static=_FC_STATIC_SE)


@register_model
def SENet154_vd(**kwargs: Any) -> ResNeXt:
    """SENet-154-vd: SE-ResNeXt-152 64x4d, vd stem (128) and shortcuts."""
    return build_resnext(kwargs, layers=152, cardinality=64, widths=WIDTHS_64X4D, out_mult=1, stem="vd",
                         stem_width=128, vd_shortcut=True, se_reduction=16, naming="se",
                         fc_static=_FC_STATIC_SE, static_dropout=0.2)


default_cfgs = [
    zoo_cfg("SE_ResNet18_vd"),
    zoo_cfg("SE_ResNet34_vd"),
    zoo_cfg("SE_ResNet50_vd"),
    zoo_cfg("SE_ResNeXt50_32x4d"),
    zoo_cfg("SE_ResNeXt101_32x4d"),
    zoo_cfg("SE_ResNeXt50_vd_32x4d"),
    zoo_cfg("SENet154_vd"),
]
register_pretrained(*default_cfgs)
