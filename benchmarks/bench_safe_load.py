"""Loading a .pdparams: hubcls's restricted unpickler vs paddle.load (plain pickle), side by side.

    python benchmarks/bench_safe_load.py [--model ResNet50_vd] [--repeats 5]

Writes the model's state dict with paddle.save into a temporary directory, then times, in one
process on the same file: the floor (reading the file's bytes into memory, and one memcpy of them),
``paddle.load(path, return_numpy=True)`` and ``hubcls.models.safe_load(path)``. Prints best-of-N
CPU time (process_time; the machine's cores are shared) and wall time, and safe_load's ratio to
paddle.load. Checks that both return identical arrays first.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def best_of(fn, repeats):
    fn()  # warm the page cache and imports
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return min(cpu), min(wall)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ResNet50_vd")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import hubcls
    from hubcls._paddle import import_paddle
    from hubcls.models import safe_load

    paddle = import_paddle()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{args.model}.pdparams")
        paddle.save(hubcls.create_model(args.model).state_dict(), path)
        size = os.path.getsize(path)
        ref, got = paddle.load(path, return_numpy=True), safe_load(path)
        assert list(ref) == list(got) and all(np.array_equal(ref[k], got[k]) and ref[k].dtype == got[k].dtype
                                              for k in ref), "safe_load differs from paddle.load"

        def read_floor():
            with open(path, "rb") as f:
                return f.read()

        data = read_floor()
        rows = [
            ("floor: read the file", best_of(read_floor, args.repeats)),
            ("floor: memcpy of the bytes", best_of(lambda: bytearray(data), args.repeats)),
            ("paddle.load (plain pickle)", best_of(lambda: paddle.load(path, return_numpy=True), args.repeats)),
            ("hubcls safe_load (restricted)", best_of(lambda: safe_load(path), args.repeats)),
        ]
    print(f"{args.model}: {size / 1e6:.1f} MB, {len(ref)} tensors, best of {args.repeats}")
    print(f"{'':32s} {'cpu s':>8s} {'wall s':>8s}")
    for name, (cpu, wall) in rows:
        print(f"{name:32s} {cpu:8.3f} {wall:8.3f}")
    (pc, pw), (sc, sw) = rows[2][1], rows[3][1]
    print(f"safe_load / paddle.load: cpu {sc / pc:.2f}x, wall {sw / pw:.2f}x")


if __name__ == "__main__":
    main()
