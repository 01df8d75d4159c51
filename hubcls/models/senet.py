"""SE-ResNet-vd, SE-ResNeXt (+vd) and SENet154_vd: ResNets with squeeze-and-excitation.

Built on resnext.ZooResNet (release/2.0 / model_zoo parameter names; SE layers are
``bb_<stage>_<i>.scale.squeeze`` / ``.excitation``, reduction 16).
"""
from __future__ import annotations

from .resnext import register_zoo

for _layers in (18, 34, 50):
    register_zoo(f"SE_ResNet{_layers}_vd", f"SE_ResNet{_layers}_vd: ResNet-vd-{_layers} with SE (reduction 16)",
                 layers=_layers, stem="vd", vd_shortcut=True, se_reduction=16,
                 out_mult=4 if _layers >= 50 else 1, fc_static=("fc6_weights", "fc6_offset"))

for _layers in (50, 101):
    register_zoo(f"SE_ResNeXt{_layers}_32x4d", f"SE_ResNeXt{_layers}_32x4d: ResNeXt-{_layers} 32x4d with SE",
                 layers=_layers, cardinality=32, widths=(128, 256, 512, 1024), out_mult=2, stem="vb",
                 se_reduction=16, naming="se", fc_static=("fc6_weights", "fc6_offset"))

register_zoo("SE_ResNeXt50_vd_32x4d", "SE_ResNeXt50_vd_32x4d: SE-ResNeXt-50 32x4d, vd stem (128) and shortcuts",
             layers=50, cardinality=32, widths=(128, 256, 512, 1024), out_mult=2, stem="vd", stem_width=128,
             vd_shortcut=True, se_reduction=16, naming="se", fc_static=("fc6_weights", "fc6_offset"))

register_zoo("SENet154_vd", "SENet154_vd: SE-ResNeXt-152 64x4d, vd stem (128) and shortcuts",
             layers=152, cardinality=64, widths=(256, 512, 1024, 2048), out_mult=1, stem="vd", stem_width=128,
             vd_shortcut=True, se_reduction=16, naming="se", fc_static=("fc6_weights", "fc6_offset"))
