"""The pipeline compiler: an op list -> stages (fused geometric runs + per-sample ops) -> batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ...errors import ConfigError, ImageDecodeError
from ..decode import JpegSource, read_image_or_jpeg
from ..fused_decode import jpeg_path_available, run_fused_stage, scaled_decode_default
from ..rng import sample_rng
from ._base import AUGMENTERS, Context, ForeignOp, SampleError, TransformOp, build_op
from ._convert import DecodeImage, NormalizeImage, ToCHWImage
from ._geometric import GeometricOp, GeomState, ResizeImage, fused_interp


def _instantiate(entry: Any, where: str) -> TransformOp:
    """A config entry -> a TransformOp (a plugin's plain callable is wrapped in ForeignOp)."""
    obj = build_op(AUGMENTERS, entry, where)
    if not isinstance(obj, TransformOp):
        (name,) = entry
        if not callable(obj):
            raise ConfigError(f"{where}.{name}: {AUGMENTERS.get(name)!r} did not build a callable op")
        obj = ForeignOp(name, obj)
    return obj


@dataclass
class _Stage:
    ops: list
    fused: bool
    layouts: list                 # input layout of each op
    out_layout: str = "HWC"
    norm: Optional[NormalizeImage] = None
    to_chw: bool = False


class Pipeline:
    """A compiled transform pipeline.

    ``pipeline(img)`` runs one image (uint8 HWC RGB array, or bytes/path when the pipeline starts
    with DecodeImage) and returns the model input; ``pipeline.run_batch(items, rngs)`` runs a batch
    and returns ``(array, kept)`` where ``kept`` lists the positions that survived (bad samples are
    dropped with ``on_error="skip"``).
    """

    def __init__(self, ops: Sequence[TransformOp], *, fuse: bool = True, num_threads: Optional[int] = 1,
                 decode_threads: int = 1):
        self.ops = list(ops)
        self.fuse = fuse
        self.num_threads = num_threads
        # decoding releases the GIL: >1 decodes a batch's files on that many threads
        self.decode_threads = max(1, int(decode_threads))
        self._executor = None
        self.decode = self.ops[0] if self.ops and isinstance(self.ops[0], DecodeImage) else None
        body = self.ops[1:] if self.decode else self.ops
        self.stages = self._compile(body)
        # JPEG files/bytes may stay undecoded until the first stage when it is fused with a fixed
        # output size: it then decodes only what each crop needs (hubcls.data.fused_decode)
        self._defer_jpeg = bool(self.stages) and self.stages[0].fused and _stage_size(self.stages[0]) is not None \
            and not (self.decode is not None and self.decode.channel_first)
        self.errors: List[ImageDecodeError] = []

    # -- compilation ------------------------------------------------------------------------
    def _compile(self, ops) -> List[_Stage]:
        layout = "CHW" if (self.decode and self.decode.channel_first) else "HWC"
        stages: List[_Stage] = []
        i = 0
        while i < len(ops):
            run_end = self._fusable_run(ops, i, layout) if self.fuse else i
            if run_end > i:
                run = ops[i:run_end]
                norm = next((o for o in run if isinstance(o, NormalizeImage)), None)
                to_chw = any(isinstance(o, ToCHWImage) for o in run)
                out_layout = "CHW" if to_chw else layout
                stages.append(_Stage(run, True, [layout] * len(run), out_layout, norm, to_chw))
                layout = out_layout
                i = run_end
                continue
            op = ops[i]
            if stages and not stages[-1].fused:
                stages[-1].ops.append(op)
                stages[-1].layouts.append(layout)
            else:
                stages.append(_Stage([op], False, [layout]))
            if isinstance(op, ToCHWImage):
                layout = "CHW"
            stages[-1].out_layout = layout
            i += 1
        if self.decode is not None and self.decode.reduce:
            first = stages[0].ops[0] if stages else None
            if isinstance(first, ResizeImage) and first.resize_short:
                self.decode.reduce_to = first.resize_short
        return stages

    @staticmethod
    def _fusable_run(ops, i, layout) -> int:
        """End (exclusive) of the fusable run starting at i, or i when ops[i] cannot start one."""
        if layout != "HWC" or any(getattr(o, "out_dtype", "uint8") != "uint8" for o in ops[:i]):
            return i  # the fused kernel takes uint8 HWC; after a float-producing op (PCALighting) op by op
        j = i
        resamples = 0
        geo = 0
        while j < len(ops) and isinstance(ops[j], GeometricOp) and ops[j].fusable:
            if ops[j].changes_size:
                if resamples == 1:
                    break
                resamples += 1
            geo += 1
            j += 1
        if j < len(ops) and isinstance(ops[j], NormalizeImage) and ops[j].channel_num == 3:
            j += 1
            if j < len(ops) and isinstance(ops[j], ToCHWImage):
                j += 1
            return j
        return j if geo > 0 else i

    def describe(self) -> str:
        """Human-readable stage plan (what got fused)."""
        lines = []
        if self.decode:
            lines.append(f"decode: {self.decode!r}")
        for s in self.stages:
            names = " -> ".join(type(o).__name__ if not isinstance(o, ForeignOp) else o.name for o in s.ops)
            lines.append(f"{'fused' if s.fused else 'per-sample'} [{names}] -> {s.out_layout}")
        return "\n".join(lines)

    def static_output_spec(self) -> Optional[Tuple[Tuple[int, int, int], str]]:
        """(shape, dtype) of one sample's output when it does not depend on the input, else None."""
        size = None
        layout = "CHW" if (self.decode and self.decode.channel_first) else "HWC"
        dtype = "uint8"
        channels = 3
        for s in self.stages:
            for op in s.ops:
                if isinstance(op, ForeignOp):
                    continue
                size = op.out_size(size) if isinstance(op, GeometricOp) else size
                if isinstance(op, NormalizeImage):
                    dtype = op.dtype
                    channels = op.channel_num
                elif hasattr(op, "out_dtype"):
                    dtype = op.out_dtype
                if isinstance(op, ToCHWImage):
                    layout = "CHW"
        if size is None:
            return None
        w, h = size
        shape = (channels, h, w) if layout == "CHW" else (h, w, channels)
        return shape, dtype

    @property
    def output_layout(self) -> str:
        """Layout of the pipeline's output: "CHW" or "HWC"."""
        if self.stages:
            return self.stages[-1].out_layout
        return "CHW" if (self.decode and self.decode.channel_first) else "HWC"

    def __getstate__(self):  # workers get a copy without the (unpicklable) thread pool
        state = dict(self.__dict__)
        state["_executor"] = None
        return state

    def _decode_all(self, items):
        """[(array, JpegSource or exception)] for items, on ``decode_threads`` threads."""
        defer = self._defer_jpeg and jpeg_path_available()

        def one(item):
            try:
                return self._decode(item, defer)
            except (ImageDecodeError, SampleError) as exc:
                return exc

        if self.decode_threads <= 1 or len(items) <= 1:
            return [one(it) for it in items]
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="hubcls-decode")
        return list(self._executor.map(one, items))

    # -- execution --------------------------------------------------------------------------
    @property
    def defers_jpeg(self) -> bool:
        """True when JPEGs handed to this pipeline undecoded (paths, bytes, JpegSources) are decoded
        only where its first, fused stage needs them."""
        return self._defer_jpeg and jpeg_path_available()

    def _decode(self, item, defer=False):
        if isinstance(item, JpegSource):  # deferred by the caller (hubcls.data.inputs.to_rgb_or_jpeg)
            if defer:
                return item
            arr = item.decode()
            return self.decode.apply(arr) if self.decode is not None else arr
        if defer and not isinstance(item, np.ndarray):
            got = read_image_or_jpeg(item, max_pixels=self.decode.max_pixels if self.decode else None)
            if isinstance(got, np.ndarray) and self.decode is not None:
                return self.decode.apply(got)  # channel order of the decode op
            return got
        if self.decode is None:
            if not isinstance(item, np.ndarray):
                from ..decode import read_image

                return read_image(item)
            return item
        return self.decode.apply(item)

    @staticmethod
    def _plan_fused(stage: _Stage, img, rng) -> GeomState:
        """Draw this sample's geometric parameters (may raise SampleError for this sample only)."""
        if isinstance(img, JpegSource):  # undecoded: the header's size draws the same parameters
            img.rng_state = rng.bit_generator.state
        elif img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ConfigError(f"fused geometric ops need uint8 HxWx3 input, got {img.dtype} {img.shape}")
        st = GeomState.start(*img.shape[:2])
        for o in stage.ops:
            if isinstance(o, GeometricOp):
                w, h = st.size
                st = o.plan(st, o.draw((h, w), rng))
        return st

    def _scaled_decode(self) -> bool:
        if self.decode is not None and self.decode.scaled_decode is not None:
            return self.decode.scaled_decode
        return scaled_decode_default()

    def _run_fused(self, stage: _Stage, imgs, states, rngs, out=None):
        """-> (batch array or list of arrays, [(k, ImageDecodeError) of samples dropped here])"""
        from ... import ops as hops

        interp, backend = "bilinear", "cv2"
        for o in stage.ops:
            if isinstance(o, GeometricOp) and o.changes_size:
                interp, backend = fused_interp(o.interpolation, o.backend), o.backend
        sizes = {s.size for s in states}
        norm = stage.norm
        kw = dict(interpolation=interp, antialias=(backend == "pil"),
                  layout="NCHW" if stage.to_chw else "NHWC", num_threads=self.num_threads)
        if norm is not None:
            kw.update(mean=norm.mean, std=norm.std, scale=norm.scale, dtype=norm.dtype)
        else:
            kw.update(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), scale=1.0, dtype="uint8")
        if any(isinstance(img, JpegSource) for img in imgs):
            def materialize(k):  # the general decode of a JPEG libjpeg refused
                arr = imgs[k].decode()
                arr = self.decode.apply(arr) if self.decode is not None else arr
                if arr.shape[:2] == (imgs[k].height, imgs[k].width):
                    return arr, states[k]
                rngs[k].bit_generator.state = imgs[k].rng_state  # draw again, from the real size
                return arr, self._plan_fused(stage, arr, rngs[k])

            order = "BGR" if self.decode is not None and not self.decode.to_rgb else "RGB"
            return run_fused_stage(imgs, states, _stage_size(stage), kw, out=out, scaled=self._scaled_decode(),
                                   channel_order=order, materialize=materialize)
        views = [st.view(img) for img, st in zip(imgs, states)]
        if len(sizes) != 1:  # variable output size: one call per image
            return [hops.resize_crop_normalize([v], [b], (st.size[1], st.size[0]), flip=[st.flip], **kw)[0]
                    for (v, b), st in zip(views, states)], []
        w, h = sizes.pop()
        boxes = np.asarray([b for _, b in views], np.float64).reshape(-1, 4)
        flips = np.asarray([s.flip for s in states], bool)
        return hops.resize_crop_normalize([v for v, _ in views], boxes, (h, w), flip=flips, out=out, **kw), []

    def _run_per_sample(self, stage: _Stage, img, rng, ctx: Context):
        for op, layout in zip(stage.ops, stage.layouts):
            ctx.layout = layout
            ctx.dtype = str(img.dtype)
            if isinstance(op, GeometricOp) and layout == "CHW":
                # geometric ops think in HWC (cv2); run them on a view and come back to CHW
                ctx.layout = "HWC"
                img = np.ascontiguousarray(op.apply(img.transpose(1, 2, 0), rng, ctx).transpose(2, 0, 1))
            else:
                img = op.apply(img, rng, ctx)
        return img

    def run_batch(self, items: Sequence[Any], rngs: Sequence[np.random.Generator], *, epoch: int = 0,
                  indices: Optional[Sequence[int]] = None, out: Optional[np.ndarray] = None,
                  on_error: str = "raise") -> Tuple[np.ndarray, List[int]]:
        """Run ``items`` (one generator each in ``rngs``). Returns (batch array, kept positions).

        ``out``: optional preallocated array of the output batch shape; the result is written into
        ``out[:len(kept)]``. ``on_error="skip"`` drops bad samples (ImageDecodeError/SampleError)
        and records them in ``self.errors``; ``"raise"`` re-raises.
        """
        indices = list(range(len(items))) if indices is None else list(indices)
        imgs, keep, rr = [], [], []
        ctxs = []
        decoded = self._decode_all(list(items))
        for pos, (item, rng, img) in enumerate(zip(items, rngs, decoded)):
            if isinstance(img, Exception):
                if on_error != "skip":
                    raise img
                self.errors.append(img if isinstance(img, ImageDecodeError)
                                   else ImageDecodeError(str(item), str(img)))
                continue
            imgs.append(img)
            keep.append(pos)
            rr.append(rng)
            ctxs.append(Context(epoch=epoch, index=indices[pos]))
        n_stages = len(self.stages)
        for si, stage in enumerate(self.stages):
            last = si == n_stages - 1
            new_imgs, new_keep, new_rr, new_ctx, states = [], [], [], [], []
            for img, pos, rng, ctx in zip(imgs, keep, rr, ctxs):
                try:
                    if stage.fused:
                        states.append(self._plan_fused(stage, img, rng))
                    else:
                        img = self._run_per_sample(stage, img, rng, ctx)
                except (ImageDecodeError, SampleError) as exc:
                    if on_error != "skip":
                        raise
                    src = items[pos] if not isinstance(items[pos], np.ndarray) else f"<sample {indices[pos]}>"
                    self.errors.append(exc if isinstance(exc, ImageDecodeError) else ImageDecodeError(src, str(exc)))
                    continue
                new_imgs.append(img)
                new_keep.append(pos)
                new_rr.append(rng)
                new_ctx.append(ctx)
            imgs, keep, rr, ctxs = new_imgs, new_keep, new_rr, new_ctx
            if stage.fused and imgs:
                res, dropped = self._run_fused(stage, imgs, states, rr,
                                               out=out[:len(imgs)] if (last and out is not None) else None)
                if dropped:  # JPEGs no decoder accepts (found only now: they were not decoded before)
                    if on_error != "skip":
                        raise dropped[0][1]
                    self.errors.extend(exc for _, exc in dropped)
                    gone = {k for k, _ in dropped}
                    keep, rr, ctxs = ([v for k, v in enumerate(lst) if k not in gone] for lst in (keep, rr, ctxs))
                    imgs = [None] * len(keep)
                if isinstance(res, list):
                    imgs = res
                elif last:
                    return res, keep
                else:
                    imgs = [res[k] for k in range(len(imgs))]
        if not imgs:
            if out is not None:
                return out[:0], keep
            return np.zeros((0,), np.float32), keep
        shapes = {im.shape for im in imgs}
        if len(shapes) != 1:
            raise SampleError(f"the pipeline produced images of different shapes {sorted(shapes)}; "
                              "add a fixed-size crop/resize to batch them")
        if out is not None:
            for k, im in enumerate(imgs):
                out[k] = im
            return out[:len(imgs)], keep
        return np.stack(imgs), keep

    def __call__(self, img, rng: Optional[np.random.Generator] = None, *, epoch: int = 0, index: int = 0):
        rng = rng if rng is not None else sample_rng(0, epoch, index)
        batch, _ = self.run_batch([img], [rng], epoch=epoch, indices=[index])
        return batch[0]

    def batch(self, imgs: Sequence[Any], *, seed: int = 0, epoch: int = 0) -> np.ndarray:
        """Run a list of images (eval-style, e.g. predict/serve); returns the stacked batch."""
        rngs = [sample_rng(seed, epoch, i) for i in range(len(imgs))]
        out, _ = self.run_batch(list(imgs), rngs, epoch=epoch)
        return out

    def __repr__(self):
        return f"Pipeline(\n  {self.describe().replace(chr(10), chr(10) + '  ')}\n)"


def _stage_size(stage: _Stage) -> Optional[Tuple[int, int]]:
    """(w, h) every sample of a fused stage comes out with, or None when it depends on the input."""
    size = None
    for op in stage.ops:
        if isinstance(op, GeometricOp):
            size = op.out_size(size)
    return tuple(size) if size is not None else None


def build_transforms(ops_config_list: Optional[Sequence[dict]], *, fuse: bool = True, num_threads: Optional[int] = 1,
                     where: str = "transform_ops") -> Pipeline:
    """PaddleClas op list (``[{"OpName": {params}}, ...]``) -> compiled :class:`Pipeline`."""
    if ops_config_list is None:
        ops_config_list = []
    if not isinstance(ops_config_list, (list, tuple)):
        raise ConfigError(f"{where} must be a list of {{OpName: params}} mappings, got {type(ops_config_list).__name__}")
    ops = [_instantiate(e, f"{where}[{k}]") for k, e in enumerate(ops_config_list)]
    return Pipeline(ops, fuse=fuse, num_threads=num_threads)


def eval_ops_config(pretrained_cfg: Any) -> List[dict]:
    """PaddleClas's eval op list for a model: ResizeImage(resize_short) -> CropImage -> NormalizeImage
    -> ToCHWImage, from the model's PretrainedCfg (input_size, resize_short, mean, std, interpolation)."""
    size = int(getattr(pretrained_cfg, "input_size", 224) or 224)
    short = getattr(pretrained_cfg, "resize_short", None) or int(round(size / 0.875))
    interp = getattr(pretrained_cfg, "interpolation", None) or "bilinear"
    return [
        {"ResizeImage": {"resize_short": int(short), "interpolation": interp}},
        {"CropImage": {"size": size}},
        {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": list(getattr(pretrained_cfg, "mean", (0.485, 0.456, 0.406))),
                            "std": list(getattr(pretrained_cfg, "std", (0.229, 0.224, 0.225))), "order": ""}},
        {"ToCHWImage": None},
    ]


def eval_transforms_for(pretrained_cfg: Any, *, fuse: bool = True, num_threads: Optional[int] = None) -> Pipeline:
    """The eval preprocessing every consumer (eval, predict, serve, export) shares."""
    return build_transforms(eval_ops_config(pretrained_cfg), fuse=fuse, num_threads=num_threads,
                            where=f"eval transforms of {getattr(pretrained_cfg, 'name', '?')}")
