"""Pretrained configs: one record per named weight set (a model name users can ask for).

A family file declares its configs next to its architectures (``default_cfgs``) and registers them
with ``register_pretrained``. Everything downstream (weight loading, hub modules, serving, export,
detection) reads these records; nothing repeats them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional, Tuple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DYGRAPH_BASE = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/"


@dataclass(frozen=True)
class PretrainedCfg:
    name: str                                  # PaddleClas spelling, e.g. "ResNet50_vd_ssld"
    arch: str                                  # registered architecture, e.g. "ResNet50_vd"
    url: Optional[str] = None                  # release/2.0 dygraph weights (2.0 key scheme)
    url_legendary: Optional[str] = None        # legendary_models weights (legendary key scheme)
    sha256: Optional[str] = None               # checksum when known (official files: unknown offline)
    file_size: Optional[int] = None
    key_scheme: str = "2.0"                    # scheme of `url`: "2.0" | "legendary"
    url_static: Optional[str] = None           # Paddle 1.x static `.tar` (one file per parameter)
    num_classes: int = 1000
    input_size: int = 224                      # eval crop
    resize_short: Optional[int] = 256          # eval resize of the short side
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    label_list: str = "imagenet1k"             # name of a label file shipped in hubcls/data/labels/
    top1: Optional[float] = None
    top5: Optional[float] = None
    params_m: Optional[float] = None           # params_m_today from the zoo table
    macs_g: Optional[float] = None             # macs_g_today from the zoo table
    in_2020_readme: bool = True
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def has_weights(self) -> bool:
        """Whether any official weight file exists for this name."""
        return bool(self.url or self.url_legendary or self.url_static)

    def weight_urls(self) -> list:
        """Candidate weight URLs, preferred first: release/2.0 dygraph (the file the zoo table's
        accuracy belongs to), then legendary, then the static tar."""
        return [u for u in (self.url, self.url_legendary, self.url_static) if u]

    def to_dict(self) -> dict:
        """JSON-ready dict (what a model package's model.json stores)."""
        from dataclasses import asdict

        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainedCfg":
        """The inverse of :meth:`to_dict`; unknown keys (from newer versions) are ignored."""
        import dataclasses

        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("mean", "std"):
            if k in kw and kw[k] is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    def with_(self, **changes: Any) -> "PretrainedCfg":
        """A copy with ``changes`` applied (the record is frozen)."""
        return replace(self, **changes)


STATIC_BASE = "https://paddle-imagenet-models-name.bj.bcebos.com/"

# The Paddle 1.x static weight tars PaddleClas published (release/static ppcls/utils/pretrained.list;
# its downloader fetched <STATIC_BASE><name>_pretrained.tar), for the names hubcls has.
STATIC_TARS = frozenset("""
    ResNet18 ResNet34 ResNet50 ResNet101 ResNet152 ResNet50_vc ResNet18_vd ResNet34_vd ResNet50_vd
    ResNet50_vd_v2 ResNet101_vd ResNet152_vd ResNet200_vd ResNet50_vd_ssld ResNet50_vd_ssld_v2
    Fix_ResNet50_vd_ssld_v2 ResNet101_vd_ssld MobileNetV3_large_x0_35 MobileNetV3_large_x0_5
    MobileNetV3_large_x0_75 MobileNetV3_large_x1_0 MobileNetV3_large_x1_25 MobileNetV3_small_x0_35
    MobileNetV3_small_x0_5 MobileNetV3_small_x0_75 MobileNetV3_small_x1_0 MobileNetV3_small_x1_25
    MobileNetV3_large_x1_0_ssld MobileNetV3_small_x1_0_ssld MobileNetV2_x0_25 MobileNetV2_x0_5
    MobileNetV2_x0_75 MobileNetV2 MobileNetV2_x1_5 MobileNetV2_x2_0 MobileNetV2_ssld MobileNetV1_x0_25
    MobileNetV1_x0_5 MobileNetV1_x0_75 MobileNetV1 MobileNetV1_ssld ShuffleNetV2_x0_25 ShuffleNetV2_x0_33
    ShuffleNetV2_x0_5 ShuffleNetV2 ShuffleNetV2_x1_5 ShuffleNetV2_x2_0 ShuffleNetV2_swish ResNeXt50_32x4d
    ResNeXt50_64x4d ResNeXt101_32x4d ResNeXt101_64x4d ResNeXt152_32x4d ResNeXt152_64x4d ResNeXt50_vd_32x4d
    ResNeXt50_vd_64x4d ResNeXt101_vd_32x4d ResNeXt101_vd_64x4d ResNeXt152_vd_32x4d ResNeXt152_vd_64x4d
    SE_ResNet18_vd SE_ResNet34_vd SE_ResNet50_vd SE_ResNeXt50_32x4d SE_ResNeXt101_32x4d SE_ResNeXt50_vd_32x4d
    SENet154_vd Res2Net50_26w_4s Res2Net50_vd_26w_4s Res2Net50_14w_8s Res2Net101_vd_26w_4s
    Res2Net200_vd_26w_4s GoogLeNet InceptionV4 Xception41 Xception41_deeplab Xception65 Xception65_deeplab
    Xception71 HRNet_W18_C HRNet_W30_C HRNet_W32_C HRNet_W40_C HRNet_W44_C HRNet_W48_C HRNet_W64_C DPN68
    DPN92 DPN98 DPN107 DPN131 DenseNet121 DenseNet161 DenseNet169 DenseNet201 DenseNet264
    EfficientNetB0_small EfficientNetB0 EfficientNetB1 EfficientNetB2 EfficientNetB3 EfficientNetB4
    EfficientNetB5 EfficientNetB6 EfficientNetB7 ResNeXt101_32x8d_wsl ResNeXt101_32x16d_wsl
    ResNeXt101_32x32d_wsl ResNeXt101_32x48d_wsl Fix_ResNeXt101_32x48d_wsl AlexNet SqueezeNet1_0
    SqueezeNet1_1 VGG11 VGG13 VGG16 VGG19 DarkNet53 GhostNet_x0_5 GhostNet_x1_0 GhostNet_x1_3
""".split())
_STATIC_TAR_STEMS = {"DarkNet53": "DarkNet53_ImageNet1k", "ShuffleNetV2_x1_0": "ShuffleNetV2"}


def static_url(name: str) -> str:
    """Paddle 1.x static weights of the 2020 zoo: a tar of one file per parameter."""
    return f"{STATIC_BASE}{_STATIC_TAR_STEMS.get(name, name)}_pretrained.tar"


def dygraph_url(name: str) -> str:
    """Release/2.0 dygraph weights URL (2.0 key scheme)."""
    return f"{DYGRAPH_BASE}{name}_pretrained.pdparams"


def legendary_url(name: str) -> str:
    """Legendary URL; `X_ssld` uses the base name with `_ssld_pretrained` (PaddleClas save_load)."""
    if name.endswith("_ssld"):
        return f"{DYGRAPH_BASE}legendary_models/{name[:-5]}_ssld_pretrained.pdparams"
    return f"{DYGRAPH_BASE}legendary_models/{name}_pretrained.pdparams"


# ---------------------------------------------------------------------------------------------
# The zoo table (a copy of PaddleClas release/2.0's model-zoo facts, shipped as package data) is
# the one source of top-1, params, MACs, URLs and eval sizes; family files only add what the
# table cannot say (which architecture a weight name uses, key scheme, mean/std overrides).
import csv
import functools
from pathlib import Path

ZOO_TABLE = Path(__file__).with_name("zoo.tsv")


@functools.lru_cache(maxsize=None)
def zoo_table() -> dict:
    """name -> row (dict of str) of hubcls/models/zoo.tsv."""
    with open(ZOO_TABLE, newline="", encoding="utf-8") as f:
        return {row["name"]: row for row in csv.DictReader(f, delimiter="\t")}


def _num(value, cast=float):
    return cast(value) if value not in (None, "") else None


def zoo_cfg(name: str, arch: Optional[str] = None, **overrides: Any) -> PretrainedCfg:
    """PretrainedCfg for a zoo-table model. ``arch`` defaults to the name itself (a weight variant
    such as ``ResNet50_vd_ssld`` passes ``arch="ResNet50_vd"``). The Paddle 1.x static tar URL is
    set for the names PaddleClas published one for (:data:`STATIC_TARS`). Keyword overrides win
    over the table."""
    row = zoo_table()[name]
    fields = dict(
        name=name,
        arch=arch or name,
        url=row["weights_url_2_0"] or None,
        url_legendary=row["weights_url_legendary"] or None,
        input_size=_num(row["input_size"], int) or 224,
        resize_short=_num(row["resize_short"], int) or None,
        top1=_num(row["top1"]),
        top5=_num(row["top5"]),
        params_m=_num(row["params_m_today"]) or _num(row["params_m"]),
        macs_g=_num(row["macs_g_today"]),
        in_2020_readme=row["in_2020_readme"] == "yes",
    )
    if name in STATIC_TARS or _STATIC_TAR_STEMS.get(name) in STATIC_TARS:
        fields["url_static"] = static_url(name)
    if fields["resize_short"] is None:
        # no release/2.0 config: PaddleClas's eval convention is resize_short = crop / 0.875
        fields["resize_short"] = int(round(fields["input_size"] / 0.875))
    fields.update(overrides)
    return PretrainedCfg(**fields)
