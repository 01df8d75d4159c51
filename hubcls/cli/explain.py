"""``hubcls explain IMAGE... -m MODEL [-o DIR]``: Grad-CAM heatmaps written as PNG overlays."""
from __future__ import annotations

from ._common import add_model_args, add_parser


def _run(args) -> int:
    from ..errors import ConfigError
    from ..hub.module import Module

    if not args.model:
        raise ConfigError("hubcls explain needs -m MODEL (a zoo name, package, training run, ...)")
    module = Module(name=args.model, weights=args.weights, label_list=args.label_list, backend="dygraph")
    results = module.explain(args.images, label=args.label, top_k=args.top_k, stage=args.stage, channel_order="RGB",
                             out_dir=args.output, alpha=args.alpha)
    for image, row in zip(args.images, results):
        for e in row:
            print(f"{image}: {e.label} ({e.probability:.3f}) -> {e.path}")
    return 0


def register(sub):
    p = add_parser(sub, "explain", help="Grad-CAM: where in each image the evidence for its class is (PNG overlays)",
                   examples=["hubcls explain cat.jpg -m resnet50_vd_imagenet_ssld            # -> explain/cat_gradcam.png",
                             "hubcls explain shapes/*.jpg -m output/quickstart -o cams/ --top-k 2",
                             "hubcls explain cat.jpg -m ResNet50_vd_ssld --label 'tiger cat'   # a class of your choice"])
    p.add_argument("images", nargs="+", help="image files")
    add_model_args(p, required_help=" (required)")
    p.add_argument("-o", "--output", "--out", default="explain", help="where the PNG overlays go (default: explain/)")
    p.add_argument("--top-k", type=int, default=1, help="explain the K most probable classes of each image (default 1)")
    p.add_argument("--label", default=None, help="explain this class (a name or an index) instead of the top ones")
    p.add_argument("--stage", type=int, default=None,
                   help="backbone stage whose feature map is used (index into its stages, -1: the last; default: "
                        "the last whose map is at least 4x4 at the model's input size)")
    p.add_argument("--alpha", type=float, default=0.45, help="heatmap opacity in the overlay (default 0.45)")
    p.set_defaults(func=_run)
