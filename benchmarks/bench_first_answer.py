"""Time to the first answer of a new ``hub.Module`` on a cold cache (issue 16.5), in a fresh process.

    python benchmarks/bench_first_answer.py [--model MobileNetV3_small_x1_0] [--runs 2]

Each run starts a new Python process with an empty HUBCLS_HOME (nothing exported, no backend choice
cached) and times, from the process's start: ``import hubcls``, ``hub.Module(...)`` returning, the
first ``predict`` of one JPEG returning (and the process's CPU seconds until then: on a shared,
loaded machine that is what an idle core would need), and the auto-chosen backend taking over. Side by side:
the default (answer on the dygraph model, export + backend timing in a background thread) and
``HUBCLS_BACKGROUND_BACKEND=0`` (wait for the export and timing first: the old behaviour). Weights
are generated (the official files are not reachable here); the times do not depend on their values.
The load average is printed: on a shared machine wall times move with it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import cv2, numpy as np
import hubcls.hub as hub
t_import = time.perf_counter() - t0
img = (np.random.default_rng(0).random((375, 500, 3)) * 255).astype("uint8")
jpg = cv2.imencode(".jpg", img)[1].tobytes()
m = hub.Module(name=sys.argv[1], weights=sys.argv[2])
t_module = time.perf_counter() - t0
m.predict([jpg], top_k=5)
t_first = time.perf_counter() - t0
cpu_first = time.process_time()
first_backend = m.runner.name
m.wait_for_backend()
t_switch = time.perf_counter() - t0
print(json.dumps({"import": t_import, "module": t_module, "first_answer": t_first, "cpu_first": cpu_first, "first_backend": first_backend,
                  "final_backend": m.runner.name, "switched": t_switch, "state": m.pipeline.backend_state}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="MobileNetV3_small_x1_0")
    p.add_argument("--runs", type=int, default=2)
    args = p.parse_args(argv)

    import paddle

    import hubcls

    work = Path(tempfile.mkdtemp(prefix="bench_first_answer_"))
    weights = work / "w.pdparams"
    paddle.save(hubcls.create_model(args.model).state_dict(), str(weights))
    print(f"model {args.model}; load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}; "
          f"{os.cpu_count()} cpus", flush=True)
    print("| mode | run | import s | Module() s | first answer s | CPU s to it | answered by | switched at s | then |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode, env_extra in (("background switch (default)", {}), ("wait for backend", {"HUBCLS_BACKGROUND_BACKEND": "0"})):
        for run in range(args.runs):
            env = dict(os.environ, HUBCLS_HOME=str(work / f"home-{mode[:4]}-{run}"), **env_extra)
            env.pop("HUBCLS_BACKEND", None)
            r = subprocess.run([sys.executable, "-c", CHILD, args.model, str(weights)], env=env, capture_output=True,
                               text=True, timeout=900)
            if r.returncode:
                print(f"| {mode} | {run} | failed: {r.stderr[-500:]} |")
                continue
            t = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"| {mode} | {run} | {t['import']:.2f} | {t['module']:.2f} | {t['first_answer']:.2f} | "
                  f"{t['cpu_first']:.2f} | {t['first_backend']} | {t['switched']:.2f} | {t['final_backend']} |", flush=True)
    print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    shutil.rmtree(work, ignore_errors=True)  # the weights and each run's export cache
    return 0


if __name__ == "__main__":
    sys.exit(main())
