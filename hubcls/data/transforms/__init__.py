"""Config-driven transform pipelines with PaddleClas's op names and parameters.

Layout (one module per kind of op, as torchvision's ``transforms/v2``):

    _base.py       the AUGMENTERS registry, TransformOp, Context, SampleError, config readers
    _convert.py    DecodeImage, NormalizeImage, ToCHWImage
    _geometric.py  ResizeImage, CropImage, RandCropImage, RandFlipImage (+ GeomState for fusion)
    _pixel.py      AutoAugment, RandAugment, ColorJitter, PCALighting
    _erase.py      Cutout, RandomErasing, HideAndSeek, GridMask
    _mix.py        batch ops: MixupOperator, CutmixOperator, OpSampler (BATCH_OPS registry)
    _pipeline.py   the compiler: build_transforms -> Pipeline, eval_transforms_for

``build_transforms([{"DecodeImage": {...}}, {"RandCropImage": {"size": 224}}, ...])`` returns a
:class:`Pipeline`. The pipeline *compiles* the op list: every maximal run of consecutive geometric
ops (ResizeImage, CropImage, RandCropImage, RandFlipImage with flip_code 1; at most one resampling
op per run) followed by NormalizeImage and ToCHWImage becomes ONE call of
``hubcls.ops.resize_crop_normalize`` over the whole batch: each geometric op only maps a crop box
and a flip flag back onto the source image, and the kernel resamples that box straight into the
normalised output. Everything else runs op by op, per sample. When such a run comes right after
decoding, JPEGs are not decoded up front: the crop is drawn from the file header's size and the
run's kernel call decodes only what each crop needs (hubcls.data.fused_decode).

Randomness: an op never touches global RNG state. Each sample carries its own
``numpy.random.Generator`` (seeded from (seed, epoch, index), see hubcls.data.rng); ops draw from
it in pipeline order, identically in the fused and the op-by-op path, so both give the same
result and the number of loader workers does not matter.

Layout: ops know the layout (HWC / CHW) and dtype their input will have, from the compiled
pipeline, and handle both — PaddleClas's HideAndSeek/GridMask assume CHW while its configs feed
them HWC; here they erase the spatial dims whatever the layout.

Augmenter protocol (built-ins and plugins registered in ``AUGMENTERS``): a class constructed
with the op's config keyword arguments. A subclass of :class:`TransformOp` implements
``apply(img, rng, ctx)``; any other callable ``op(img) -> img`` (PaddleClas style, HWC uint8 RGB)
is wrapped, with Python's and NumPy's global generators seeded from the sample's generator first,
so it stays reproducible.
"""
from __future__ import annotations

from ._base import AUGMENTERS, Context, ForeignOp, SampleError, TransformOp, build_op
from ._convert import DecodeImage, NormalizeImage, ToCHWImage
from ._erase import Cutout, GridMask, HideAndSeek, RandomErasing
from ._geometric import (
    CropImage,
    GeometricOp,
    GeomState,
    RandCropImage,
    RandFlipImage,
    ResizeImage,
)
from ._mix import (
    BATCH_OPS,
    BatchOp,
    BatchPipeline,
    CutmixOperator,
    MixupOperator,
    OpSampler,
    build_batch_transforms,
)
from ._pipeline import Pipeline, build_transforms, eval_ops_config, eval_transforms_for
from ._pixel import AutoAugment, ColorJitter, PCALighting, RandAugment

__all__ = [
    "AUGMENTERS", "BATCH_OPS", "Context", "SampleError", "TransformOp", "ForeignOp", "GeometricOp", "GeomState",
    "build_op", "DecodeImage", "NormalizeImage", "ToCHWImage", "ResizeImage", "CropImage", "RandCropImage",
    "RandFlipImage", "AutoAugment", "RandAugment", "ColorJitter", "PCALighting", "Cutout", "RandomErasing",
    "HideAndSeek", "GridMask",
    "BatchOp", "MixupOperator", "CutmixOperator", "OpSampler", "BatchPipeline", "build_batch_transforms",
    "Pipeline", "build_transforms", "eval_ops_config", "eval_transforms_for",
]
