"""Multi-process / multi-machine launching through ``paddle.distributed.launch``.

``hubcls train --nproc_per_node 2 -c cfg.yaml`` re-runs the same command in N worker processes via
``python -m paddle.distributed.launch``; workers see PADDLE_TRAINERS_NUM / PADDLE_TRAINER_ID and the
Trainer joins the collective group (NCCL on GPU, gloo on CPU). For several machines run the same
command on each with ``--ips ip1,ip2`` (the first is the master) — see docs/training.md.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

LAUNCH_FLAGS = ("--nproc_per_node", "--ips", "--master", "--nnodes", "--rank", "--devices", "--launch_log_dir")


def in_worker() -> bool:
    return "PADDLE_TRAINER_ID" in os.environ and int(os.environ.get("PADDLE_TRAINERS_NUM", "1") or 1) > 1


def strip_launch_args(argv: List[str]) -> List[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in LAUNCH_FLAGS:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def launch(argv: List[str], nproc_per_node: int, ips: Optional[str] = None, master: Optional[str] = None,
           nnodes: Optional[str] = None, rank: Optional[int] = None, devices: Optional[str] = None,
           log_dir: str = "./output/launch_log") -> int:
    """Run ``hubcls <argv>`` in ``nproc_per_node`` workers per machine; returns the launcher's exit code."""
    # the worker script runs the CLI, so it lives with it (engine must not import cli)
    entry = Path(__file__).resolve().parent.parent / "cli" / "_launch_entry.py"
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc_per_node),
           "--log_dir", str(log_dir)]
    if ips:
        cmd += ["--ips", ips]
    if master:
        cmd += ["--master", master]
    if nnodes:
        cmd += ["--nnodes", str(nnodes)]
    if rank is not None:
        cmd += ["--rank", str(rank)]
    if devices:
        cmd += ["--devices", devices]
    cmd += [str(entry)] + strip_launch_args(argv)
    env = dict(os.environ)
    # workers share the cores: don't let each of them start a full OpenMP pool
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, nproc_per_node))))
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    rc = subprocess.call(cmd, env=env)
    if rc != 0:
        print(f"distributed training failed (exit {rc}); worker logs: {log_dir}/workerlog.*", file=sys.stderr)
    return rc
