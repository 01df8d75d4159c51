"""hubcls CUDA kernels vs torchvision.transforms.v2 on CUDA (run through benchmarks/gpu/run.sh).

(a) eval: a batch of 256 uint8 375x500 images -> resize short side 256 -> centre crop 224 ->
    normalize -> NCHW float16. hubcls: one resize_crop_normalize call on the NHWC device batch.
    torchvision: v2 Resize(256) + CenterCrop(224) + ToDtype(float16, scale) + Normalize on the
    batch (permuted to NCHW). HBM floor: (bytes read + bytes written) / measured copy bandwidth.
(b) train: per image RandomResizedCrop(224) + horizontal flip + normalize + RandomErasing -> fp16.
    hubcls: parameters drawn on the host, one resize call + one random_erasing call per batch.
    torchvision: the v2 pipeline per image (it has no per-image-parameter batch mode), then stack.
Also checks hubcls CUDA == hubcls CPU on the same data before timing.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import hubcls.ops as ops


def cuda_time(fn, iters, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000.0 / iters


def smooth_images(rng, n, h, w):
    """Photo-like (smooth) uint8 images: upsampled noise, so resampling errors show."""
    small = torch.from_numpy(rng.integers(0, 256, (n, 3, h // 16 + 1, w // 16 + 1), dtype=np.uint8)).float().cuda()
    big = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return big.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()  # NHWC


def check_against_cpu(x_host, rng):
    n = x_host.shape[0]
    h, w = x_host.shape[1:3]
    boxes = [ops.random_resized_crop_box(h, w, rng) for _ in range(n)]
    flips = rng.integers(0, 2, n).astype(bool)
    for interp, aa in [("bilinear", False), ("bilinear", True), ("bicubic", False), ("area", False), ("nearest", True)]:
        kw = dict(flip=flips, interpolation=interp, antialias=aa, dtype="float16")
        cpu = ops.resize_crop_normalize(x_host, boxes, 224, **kw).astype(np.float32)
        dev = ops.resize_crop_normalize(torch.from_numpy(x_host).cuda(), boxes, 224, **kw).float().cpu().numpy()
        err = np.abs(cpu - dev).max()
        print(f"  check resize {interp:8s} antialias={aa!s:5s}: max |cuda - cpu| = {err:.2e}")
        assert err < 5e-3, "CUDA resize_crop_normalize disagrees with the CPU kernel"
    xb = (rng.normal(size=(n, 3, 64, 64))).astype(np.float16)
    rects, values = ops.draw_random_erasing_params(rng, n, 64, 64, EPSILON=1.0, mode="pixel")
    cpu = ops.random_erasing(xb.copy(), rects, values)
    dev = ops.random_erasing(torch.from_numpy(xb).cuda(), rects, values).cpu().numpy()
    assert np.array_equal(cpu, dev), "CUDA random_erasing disagrees with the CPU kernel"
    perm = rng.permutation(n)
    cpu, *_ = ops.mixup(xb, None, 0.3, perm=perm)
    dev, *_ = ops.mixup(torch.from_numpy(xb).cuda(), None, 0.3, perm=perm)
    assert np.abs(cpu.astype(np.float32) - dev.float().cpu().numpy()).max() < 1e-2
    print("  erase / mix kernels agree with the CPU kernels")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args(argv)
    from torchvision.transforms import v2

    rng = np.random.default_rng(0)
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    x = smooth_images(rng, args.batch, 375, 500)  # NHWC uint8 on the GPU
    check_against_cpu(x[:8].cpu().numpy(), rng)
    mean, std = ops.IMAGENET_MEAN, ops.IMAGENET_STD
    n = args.batch

    # ---------------------------------------------------------------- (a) eval
    box = ops.resize_short_center_crop_box(375, 500, 256, 224)
    boxes = [box] * n
    out = torch.empty((n, 3, 224, 224), dtype=torch.float16, device=dev)
    hub_a = lambda: ops.resize_crop_normalize(x, boxes, 224, antialias=False, dtype="float16", out=out)
    tv_eval = v2.Compose([v2.Resize(256, antialias=False), v2.CenterCrop(224), v2.ToDtype(torch.float16, scale=True),
                          v2.Normalize(mean, std)])
    tv_a = lambda: tv_eval(x.permute(0, 3, 1, 2))
    # same semantics? (both bilinear without antialias; torchvision uses half-pixel centres too)
    diff = (hub_a().float() - tv_a().float()).abs()
    t_hub = cuda_time(hub_a, args.iters)
    t_tv = cuda_time(tv_a, args.iters)
    # HBM floor: read the uint8 batch once, write the fp16 output once, at the measured copy bandwidth
    big = torch.empty(256 * 1024 * 1024, dtype=torch.uint8, device=dev)
    t_copy = cuda_time(lambda: big.clone(), 10)
    bw = 2 * big.numel() / t_copy
    bytes_a = x.numel() + out.numel() * 2
    t_floor = bytes_a / bw
    print("\n(a) eval: batch %d uint8 375x500 -> short 256 -> crop 224 -> normalize -> NCHW fp16" % n)
    print(f"  hubcls        {n / t_hub:12.0f} images/s   ({t_hub * 1e3:.3f} ms/batch)")
    print(f"  torchvision v2{n / t_tv:12.0f} images/s   ({t_tv * 1e3:.3f} ms/batch)   hubcls x{t_tv / t_hub:.2f}")
    print(f"  HBM floor     {n / t_floor:12.0f} images/s   (copy bandwidth {bw / 1e9:.0f} GB/s, {bytes_a / n / 1e3:.0f} kB/image)"
          f"   hubcls at {t_floor / t_hub * 100:.0f}% of the floor")
    print(f"  hubcls vs torchvision output: max |diff| {diff.max().item():.3f}, mean {diff.mean().item():.4f}"
          " (normalised units; differences come from crop rounding and resize sizes)")

    # ---------------------------------------------------------------- (b) train
    def draw():
        bxs = [ops.random_resized_crop_box(375, 500, rng) for _ in range(n)]
        fl = rng.integers(0, 2, n).astype(bool)
        # value 0 like torchvision's RandomErasing default (PaddleClas "const" mode with mean 0)
        rects, values = ops.draw_random_erasing_params(rng, n, 224, 224, EPSILON=0.25, mode="const")
        return bxs, fl, rects, values

    params = draw()
    out_b = torch.empty((n, 3, 224, 224), dtype=torch.float16, device=dev)

    def hub_b(p=params):
        bxs, fl, rects, values = p
        ops.resize_crop_normalize(x, bxs, 224, flip=fl, antialias=False, dtype="float16", out=out_b)
        ops.random_erasing(out_b, rects, values)

    def hub_b_with_draw():
        hub_b(draw())

    tv_train = v2.Compose([v2.RandomResizedCrop(224, antialias=False), v2.RandomHorizontalFlip(),
                           v2.ToDtype(torch.float16, scale=True), v2.Normalize(mean, std), v2.RandomErasing(p=0.25)])
    xc = x.permute(0, 3, 1, 2)
    tv_b = lambda: torch.stack([tv_train(xc[i]) for i in range(n)])
    t_hub_b = cuda_time(hub_b, args.iters)
    t_hub_bd = cuda_time(hub_b_with_draw, max(3, args.iters // 4))
    t_tv_b = cuda_time(tv_b, max(3, args.iters // 4))
    print("\n(b) train: per image RandomResizedCrop(224) + flip + normalize + RandomErasing(p=.25) -> fp16, batch %d" % n)
    print(f"  hubcls (kernels only)      {n / t_hub_b:12.0f} images/s")
    print(f"  hubcls (+ host draws)      {n / t_hub_bd:12.0f} images/s")
    print(f"  torchvision v2 (per image) {n / t_tv_b:12.0f} images/s   hubcls(+draws) x{t_tv_b / t_hub_bd:.2f}")


if __name__ == "__main__":
    main()
