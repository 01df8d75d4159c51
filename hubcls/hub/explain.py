"""Grad-CAM explanations: where in the image the evidence for a class is (``Module.explain``,
``hubcls explain IMAGE -m MODEL``).

Grad-CAM (Selvaraju et al., 2017): for class c and a stage's feature map A (C x h x w), the weight
of channel k is the spatial mean of d score_c / d A_k, and the map is ReLU(sum_k w_k A_k), scaled
to [0, 1]. The stage is one of the backbone's ``feature_info`` stages (the contract every zoo
family implements for ``features_only``): its layer is hooked during the ordinary forward, so every
zoo backbone works without a second forward path. The default is the last stage whose map has at
least ``MIN_MAP_SIDE`` cells a side at the model's input size: the last stage (7x7) for the 224-pixel
zoo models, the one before it (4x4) for the 64-pixel quick-start model, whose last map is 2x2 and
measured no better than chance at finding the object (benchmarks/gradcam_localisation.py,
docs/serving.md). ``stage=-1`` forces the last.

The map covers the network's input, i.e. the eval preprocessing's crop; it is mapped back onto the
original image through the preprocessing's resize and crop (``ResizeImage`` / ``CropImage``), so
the overlay lines up with the photo the user gave. Regions the crop cut off get 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError, HubclsError

NON_GEOMETRIC_OPS = {"DecodeImage", "NormalizeImage", "ToCHWImage"}
MIN_MAP_SIDE = 4  # a 2x2 map cannot say where in the image something is


@dataclass
class Explanation:
    """One image's Grad-CAM for one class."""

    label: str                      # the class explained
    class_index: int
    probability: float
    heatmap: np.ndarray             # float32 HxW in [0, 1], on the original image
    image: np.ndarray = field(repr=False)   # the uint8 RGB image it belongs to
    stage: str = ""                 # the hooked layer (feature_info module path)
    path: Optional[str] = None      # the PNG overlay, once written

    def overlay(self, alpha: float = 0.45) -> np.ndarray:
        """uint8 RGB: the image with the heatmap (OpenCV's JET colours) blended over it."""
        return overlay(self.image, self.heatmap, alpha)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``image`` (uint8 RGB HxWx3) with ``heatmap`` (HxW in [0, 1]) in JET colours blended over it."""
    import cv2

    colored = cv2.applyColorMap(np.clip(heatmap * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    return np.clip(image.astype(np.float32) * (1 - alpha) + colored.astype(np.float32) * alpha, 0, 255).astype(np.uint8)


def crop_box(ops: Sequence[dict], height: int, width: int) -> Tuple[float, float, float, float]:
    """Where the network's input comes from in an HxW original: (x0, y0, x1, y1) in original pixels,
    following the eval ops' ResizeImage / CropImage (PaddleClas semantics: resize_short keeps the
    aspect ratio, size=[w, h] or an int resizes both sides; CropImage takes the centre)."""
    x0, y0, x1, y1 = 0.0, 0.0, float(width), float(height)  # the current image, in original coordinates
    h, w = float(height), float(width)                       # the current image's size
    for op in ops or []:
        if not isinstance(op, dict) or not op:
            continue
        (name, params), = op.items()
        params = params or {}
        if name == "ResizeImage":
            if params.get("resize_short"):
                s = float(params["resize_short"]) / min(h, w)
                nw, nh = round(w * s), round(h * s)
            else:
                size = params.get("size")
                nw, nh = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
            h, w = float(nh), float(nw)
        elif name == "CropImage":
            size = params.get("size")
            cw, ch = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
            ox, oy = (w - cw) / 2.0, (h - ch) / 2.0
            sx, sy = (x1 - x0) / w, (y1 - y0) / h
            x0, y0, x1, y1 = x0 + ox * sx, y0 + oy * sy, x0 + (ox + cw) * sx, y0 + (oy + ch) * sy
            h, w = float(ch), float(cw)
        elif name not in NON_GEOMETRIC_OPS:
            raise ConfigError(f"Grad-CAM cannot map op {name} back onto the image (it maps ResizeImage and "
                              f"CropImage); explain with the model's eval preprocessing")
    return x0, y0, x1, y1


def to_image(cam: np.ndarray, box: Tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """A map over the network input (h x w) -> float32 HxW on the original, 0 outside ``box``."""
    import cv2

    x0, y0, x1, y1 = box
    out = np.zeros((height, width), np.float32)
    ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    ix1, iy1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    # sample the map at the original pixels' centres (bilinear), inside the box
    xs = (np.arange(ix0, ix1, dtype=np.float32) + 0.5 - x0) / (x1 - x0) * cam.shape[1] - 0.5
    ys = (np.arange(iy0, iy1, dtype=np.float32) + 0.5 - y0) / (y1 - y0) * cam.shape[0] - 0.5
    mx, my = np.meshgrid(xs, ys)
    out[iy0:iy1, ix0:ix1] = cv2.remap(cam.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def default_stage(model, input_size: Sequence[int]) -> int:
    """The deepest stage whose map is at least MIN_MAP_SIDE cells a side for ``input_size`` (3, H, W)."""
    info = list(getattr(model, "feature_info", None) or [])
    side = min(int(input_size[-2]), int(input_size[-1]))
    for i in range(len(info) - 1, -1, -1):
        if side / float(info[i].get("reduction") or 1) >= MIN_MAP_SIDE:
            return i - len(info)
    return -len(info) if info else -1


def stage_layer(model, stage: int = -1):
    """(layer, module path) of the backbone's stage ``stage`` (an index into ``feature_info``)."""
    info = list(getattr(model, "feature_info", None) or [])
    if not info:
        raise HubclsError(f"{type(model).__name__} does not describe its stages (feature_info): no Grad-CAM for it")
    if not -len(info) <= stage < len(info):
        raise ConfigError(f"stage {stage} out of range: {type(model).__name__} has {len(info)} stages "
                          f"(0..{len(info) - 1}, or -1 for the last)")
    path = info[stage]["module"]
    layers = dict(model.named_sublayers())
    if path not in layers:
        raise HubclsError(f"{type(model).__name__}.feature_info names {path!r}, which is not a sublayer")
    return layers[path], path


def grad_cam(model, batch: np.ndarray, class_indices: Sequence[int], stage: int = -1) -> Tuple[np.ndarray, np.ndarray, str]:
    """(cams (N, h, w) in [0, 1] over the network input, logits (N, classes), stage path) for a float32
    NCHW ``batch``; ``class_indices[i]`` is the class explained for image i."""
    from .._paddle import import_paddle
    from ..deploy._program import paddle_thread_ready

    paddle = import_paddle()
    paddle_thread_ready(paddle)
    layer, path = stage_layer(model, stage)
    captured = []
    hook = layer.register_forward_post_hook(lambda _layer, inputs, output: captured.append((inputs, output)))
    model.eval()
    try:
        with paddle.set_grad_enabled(True):
            x = paddle.to_tensor(np.ascontiguousarray(batch, dtype=np.float32))
            x.stop_gradient = False  # a graph even when every parameter is frozen
            logits = model(x)
            if not captured:
                raise HubclsError(f"stage {path} did not run in {type(model).__name__}'s forward")
            inputs, feats = captured[-1]
            if isinstance(feats, (list, tuple)):
                feats = feats[-1]
            idx = paddle.to_tensor(np.asarray(class_indices, dtype="int64").reshape(-1, 1))
            score = paddle.take_along_axis(logits, idx, axis=1).sum()
            (grads,) = paddle.grad([score], [feats], retain_graph=True, allow_unused=True)
            if grads is None:
                grads = _tap_gradient(paddle, score, inputs, feats, path)
    finally:
        hook.remove()
    a, g = feats.numpy(), grads.numpy()
    if a.ndim != 4:
        raise HubclsError(f"stage {path} gives a {a.ndim}-d output; Grad-CAM needs a feature map (N, C, h, w)")
    weights = g.mean(axis=(2, 3), keepdims=True)
    cams = np.maximum((weights * a).sum(axis=1), 0.0)
    peak = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
    cams = np.where(peak > 0, cams / np.maximum(peak, 1e-12), 0.0).astype(np.float32)
    return cams, logits.numpy(), path


def _tap_gradient(paddle, score, inputs, feats, path: str):
    """d score / d feats for a stage layer whose output is a side tap the forward does not use
    (DPN joins its two paths in a ``_Concat`` only for features_only hooks): the tap's inputs are on
    the path, and when the tap joins them along channels its gradient is theirs, joined the same way."""
    flat = [t for t in (inputs[0] if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) else inputs)
            if isinstance(t, paddle.Tensor)]
    grads = paddle.grad([score], flat, allow_unused=True) if flat else []
    if (flat and all(g is not None for g in grads) and all(t.ndim == 4 for t in flat)
            and sum(int(t.shape[1]) for t in flat) == int(feats.shape[1])
            and all(list(t.shape[2:]) == list(feats.shape[2:]) for t in flat)):
        return paddle.concat(list(grads), axis=1)
    raise HubclsError(f"stage {path}'s output does not reach the class scores (a side output of the forward); "
                      f"explain another stage (--stage -1: the last)")


def explain(module, images, *, label: Union[None, int, str] = None, top_k: int = 1, stage: Optional[int] = None,
            channel_order: str = "BGR", out_dir: Union[None, str, os.PathLike] = None,
            alpha: float = 0.45) -> List[List[Explanation]]:
    """Grad-CAM for each image: its ``top_k`` classes (or the class ``label``, a name or an index), from
    backbone stage ``stage`` (None: :func:`default_stage`). Returns one list of Explanations per image;
    with ``out_dir`` each overlay is written there as a PNG (``<image name>_gradcam[_<rank>].png``)
    and its path recorded."""
    from ..deploy.pipeline import PredictionError

    pipeline = module.pipeline
    if module.source.weights is None and getattr(module, "_model", None) is None:
        raise ConfigError(f"{module.name}: Grad-CAM needs the dygraph model's gradients; this model is only an "
                          f"inference program (explain the package or weights it was exported from)")
    model = module.model
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    decoded = pipeline.decode(items, channel_order)
    bad = [d for d in decoded if isinstance(d, PredictionError)]
    if bad:
        from ..errors import ImageDecodeError

        raise ImageDecodeError(", ".join(e.source for e in bad), "; ".join(f"#{e.index}: {e.reason}" for e in bad))
    fixed = None if label is None else _class_index(label, pipeline.labels)
    if stage is None:
        stage = default_stage(model, pipeline.input_size)
    out = []
    out_path = Path(out_dir) if out_dir is not None else None
    stems: dict = {}  # image index -> its file stem, unique within this call
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(decoded):
        batch = pipeline.preprocess([rgb])
        if fixed is not None:
            wanted = [fixed]
        else:
            probs = pipeline.probabilities(pipeline.logits(batch))[0]
            wanted = [int(j) for j in pipeline.topk(probs, top_k)[0]]
        cams, logits, path = grad_cam(model, np.repeat(batch, len(wanted), axis=0), wanted, stage)
        probs = pipeline.probabilities(logits)
        box = crop_box(pipeline.preprocess_ops, rgb.shape[0], rgb.shape[1])
        row = []
        for rank, (c, cam) in enumerate(zip(wanted, cams)):
            e = Explanation(pipeline.labels[c], c, float(probs[rank, c]), to_image(cam, box, *rgb.shape[:2]),
                            rgb, stage=path)
            if out_path is not None:
                e.path = str(out_path / _png_name(items[i], i, rank if len(wanted) > 1 else None, stems))
                _write_png(e.path, e.overlay(alpha))
            row.append(e)
        out.append(row)
    return out


def _class_index(label: Union[int, str], labels: Sequence[str]) -> int:
    if isinstance(label, (int, np.integer)) or (isinstance(label, str) and label.isdigit() and label not in labels):
        c = int(label)
        if not 0 <= c < len(labels):
            raise ConfigError(f"class index {c} out of range (0..{len(labels) - 1})")
        return c
    if label in labels:
        return list(labels).index(label)
    firsts = [str(n).split(",")[0].strip() for n in labels]
    if label in firsts:
        return firsts.index(label)
    import difflib

    close = difflib.get_close_matches(str(label), list(labels), n=3)
    raise ConfigError(f"unknown class {label!r}" + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""))


def _png_name(item, index: int, rank: Optional[int], stems: dict) -> str:
    """``<stem>_gradcam[_<rank>].png``; two images of one name (a/0001.jpg, b/0001.jpg) get their
    position appended (0001_gradcam.png, 0001-2_gradcam.png) so no overlay overwrites another."""
    if index not in stems:
        stem = Path(os.fspath(item)).stem if isinstance(item, (str, os.PathLike)) else f"image{index}"
        stems[index] = stem if stem not in stems.values() else f"{stem}-{index + 1}"
    stem = stems[index]
    return f"{stem}_gradcam{'' if rank is None else f'_{rank + 1}'}.png"


def _write_png(path: str, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(rgb).save(path, format="PNG")
