"""Python face of the C++/CUDA core (hubcls._C).

Each op validates its inputs here, dispatches to the CPU or CUDA kernel, and has a NumPy/PIL
reference implementation in ``hubcls.ops.reference`` that the tests compare it with. Nothing here
imports Paddle: the core works with NumPy arrays and DLPack tensors from any framework.
"""
from __future__ import annotations

try:
    from .. import _C
except ImportError as exc:  # the usual cause: Python found the source tree (cwd) before the install
    from pathlib import Path as _Path

    _pkg = _Path(__file__).resolve().parents[1]
    _hint = (f"Python imported hubcls from the source checkout {_pkg}, which holds no compiled core: run "
             f"from another directory, or install it in place with `pip install -e .`"
             if (_pkg.parent / "pyproject.toml").is_file() else "reinstall hubcls (pip install --force-reinstall hubcls)")
    raise ImportError(f"hubcls's compiled C++ core (hubcls._C) cannot be imported ({exc}). {_hint}") from exc
from . import augment, policies
from .cpu import cpu_isa, set_cpu_isa, supported_cpu_isas, using_cpu_isa
from .erase import cutout, fill_rects, gridmask, hide_and_seek, random_erasing
from .geometry import random_resized_crop_box, resize_short_center_crop_box, resize_short_size
from .jpeg import jpeg_decode_resize, jpeg_decoder_available, jpeg_library
from .mix import cutmix, cutmix_box, mixup
from .policies import (
    draw_cutout_boxes,
    draw_gridmask_masks,
    draw_hide_and_seek,
    draw_random_erasing_params,
    gridmask_prob,
)
from .resize import IMAGENET_MEAN, IMAGENET_STD, resize_crop_normalize, unpack_images

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "augment", "core_build_info", "cpu_isa", "cutmix", "cutmix_box", "cutout",
    "draw_cutout_boxes", "draw_gridmask_masks", "draw_hide_and_seek", "draw_random_erasing_params", "fill_rects",
    "gridmask", "gridmask_prob", "hide_and_seek", "jpeg_decode_resize", "jpeg_decoder_available", "jpeg_library",
    "mixup", "policies", "random_erasing", "random_resized_crop_box", "resize_crop_normalize",
    "resize_short_center_crop_box", "resize_short_size", "set_cpu_isa", "supported_cpu_isas", "unpack_images",
    "using_cpu_isa",
]


def core_build_info() -> dict:
    """Build configuration of the compiled core (same dict as ``hubcls._C.build_info()``)."""
    return dict(_C.build_info())
