"""Thread scaling of resize_crop_normalize on a batch of 64 (eval transform), in wall time and CPU time.

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive python benchmarks/bench_preprocess_threads.py

On an idle machine the wall ratio is the scaling; on a shared one, compare CPU seconds per batch:
equal CPU time on 1 and 2 threads means no parallel overhead (2x wall once two cores are free).
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from _ops_images import photos  # noqa: E402

import hubcls.ops as ops  # noqa: E402


def main(iters=20, batch=64):
    pics = photos()
    imgs = [pics[i % len(pics)] for i in range(batch)]
    boxes = [ops.resize_short_center_crop_box(im.shape[0], im.shape[1], 256, 224) for im in imgs]
    out = np.empty((batch, 3, 224, 224), np.float32)
    res = {}
    for th in (1, 2):
        ops.resize_crop_normalize(imgs, boxes, 224, antialias=False, num_threads=th, out=out)
        c, w = time.process_time(), time.perf_counter()
        for _ in range(iters):
            ops.resize_crop_normalize(imgs, boxes, 224, antialias=False, num_threads=th, out=out)
        res[th] = ((time.process_time() - c) / iters, (time.perf_counter() - w) / iters)
        print(f"{th} thread(s): CPU {res[th][0] * 1e3:.1f} ms/batch, wall {res[th][1] * 1e3:.1f} ms/batch")
    print(f"wall speed-up {res[1][1] / res[2][1]:.2f}x; CPU-time efficiency {res[1][0] / res[2][0]:.2f}")


if __name__ == "__main__":
    main()
