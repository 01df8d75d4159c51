"""How many PaddleDetection configs take HubclsResNet / HubclsSENet in place of their ResNet / SENet.

For every config of a PaddleDetection checkout (release/2.6: ``configs/**.yml``, ``_base_`` files
left out) whose architecture's backbone is ``ResNet`` or ``SENet``, in its own process:

  load    ppdet's load_config (the _BASE_ chain resolved)
  build   the architecture with its own backbone, and again with ``backbone: HubclsResNet`` (or
          ``HubclsSENet``) and the backbone section's arguments unchanged; where ppdet's own
          architecture does not build under this Paddle (ppdet 2.6 predates Paddle 3: DETR's loss),
          the two backbones alone, from the same config section ("level": "backbone")
  same    ppdet's backbone gets random weights (BN statistics and DCN offsets included), they load
          into hubcls's through the "ppdet" key scheme, and both backbones' feature maps on a random
          image are identical (max |diff| <= 1e-5 relative)

Nothing of PaddleDetection is stored in hubcls; point --configs at a checkout:

    git -C <PaddleDetection clone> archive release/2.6 configs | tar -x -C /tmp/ppdet26
    python tests/tools/ppdet_config_census.py --configs /tmp/ppdet26/configs --out census_ppdet.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

SWAP = {"ResNet": "HubclsResNet", "SENet": "HubclsSENet"}


def _chain(path: Path, seen=None):
    """The config and every file of its _BASE_ chain (read as text; ppdet resolves them the same way)."""
    import yaml

    seen = set() if seen is None else seen
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    files = [path]
    try:
        doc = yaml.safe_load(path.read_text(errors="replace").split("\n---")[0].replace("!", "")) or {}
    except yaml.YAMLError:
        return files
    for base in doc.get("_BASE_", []) if isinstance(doc, dict) else []:
        files += _chain((path.parent / base).resolve(), seen)
    return files


def _names_resnet(path: Path) -> bool:
    """A config whose chain says ``backbone: ResNet`` or ``backbone: SENet`` somewhere (run_one checks
    the resolved architecture)."""
    for f in _chain(path.resolve()):
        for line in f.read_text(errors="replace").splitlines():
            if line.strip() in ("backbone: ResNet", "backbone: SENet"):
                return True
    return False


def run_one(path: str) -> dict:
    import numpy as np
    import paddle

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hubcls.det import register_with_ppdet

    res = {"config": path, "stage": "none"}
    try:
        register_with_ppdet()
        from _models_common import randomize
        from ppdet.core.workspace import create, load_config, merge_config

        paddle.set_device("cpu")
        cfg = load_config(path)
        arch = cfg.architecture
        backbone = cfg[arch].get("backbone") if hasattr(cfg[arch], "get") else None
        res.update(arch=arch, backbone=backbone)
        if backbone not in SWAP:
            res["stage"] = "skip"
            return res
        res["stage"] = "load"
        args = dict(cfg[backbone])
        res["args"] = {k: v for k, v in args.items() if not callable(v)}
        paddle.seed(0)
        try:
            ref_bb, res["level"] = create(arch).backbone, "architecture"
        except Exception as exc:  # noqa: BLE001 - ppdet 2.6's own model does not build under this Paddle
            # (DETR's loss, ...): the two backbones are still built from the config and compared
            res["arch_error"] = f"{type(exc).__name__}: {exc}"[:300]
            ref_bb, res["level"] = create(backbone), "backbone"
        load_config(path)  # ppdet's create can change the config in place (DETRLoss's loss_coeff): read it again
        merge_config({arch: {"backbone": SWAP[backbone]}, SWAP[backbone]: args})
        ours_bb = create(arch).backbone if res["level"] == "architecture" else create(SWAP[backbone])
        res["stage"] = "build"
        res["hubcls_model"] = ours_bb.name
        randomize(ref_bb)
        rng = np.random.RandomState(1)
        for name, p in ref_bb.named_parameters():
            if "conv_offset" in name:
                p.set_value((rng.standard_normal(p.shape) * 0.01).astype("float32"))
        from hubcls.models._weights import load_pretrained

        state = {k: v.numpy() for k, v in ref_bb.state_dict().items()}
        load_pretrained(ours_bb.model, f"{path} ppdet backbone", state=state)
        ref_bb.eval()
        ours_bb.eval()
        x = paddle.to_tensor(rng.standard_normal((1, 3, 128, 160)).astype("float32"))
        with paddle.no_grad():
            a, b = ref_bb({"image": x}), ours_bb({"image": x})
        errs = [float(np.abs(u.numpy() - v.numpy()).max() / max(float(np.abs(u.numpy()).max()), 1e-12))
                for u, v in zip(a, b)]
        res["max_rel_diff"] = max(errs) if errs else None
        if len(a) == len(b) and all(e <= 1e-5 for e in errs):
            res["stage"] = "same"
        else:
            res["error"] = f"feature maps differ: {errs} ({len(a)} vs {len(b)} maps)"
    except Exception as exc:  # noqa: BLE001 - the census records every failure
        res["error"] = f"{type(exc).__name__}: {exc}"[:400]
        res["trace"] = traceback.format_exc()[-1500:]
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", type=Path, help="PaddleDetection's configs/ directory")
    ap.add_argument("--only", default="", help="substring filter on config paths")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--out", help="write the per-config results as JSON")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one)))
        return 0
    paths = sorted(str(p) for p in args.configs.rglob("*.yml")
                   if "_base_" not in p.parts and args.only in str(p) and _names_resnet(p))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    results = []
    for i, path in enumerate(paths, 1):
        cmd = [sys.executable, __file__, "--one", path]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
            line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            res = json.loads(line[-1][7:]) if line else {"config": path, "stage": "none",
                                                           "error": f"exit {r.returncode}: {r.stderr[-300:]}"}
        except subprocess.TimeoutExpired:
            res = {"config": path, "stage": "none", "error": f"timeout after {args.timeout}s"}
        if res["stage"] != "skip":
            results.append(res)
            print(f"[{i}/{len(paths)}] {path}: {res['stage']}" + (f" ERROR {res['error'][:160]}" if res.get("error") else ""),
                  flush=True)
    n = len(results)
    count = {s: sum(1 for r in results if r["stage"] in stages)
             for s, stages in (("load", ("load", "build", "same")), ("build", ("build", "same")), ("same", ("same",)))}
    whole = sum(1 for r in results if r["stage"] == "same" and r.get("level") == "architecture")
    print(f"\nPaddleDetection configs with a ResNet/SENet backbone: {n}; swapped and built {count['build']}, "
          f"identical backbone features {count['same']} ({whole} in the whole architecture, "
          f"{count['same'] - whole} backbone only: ppdet's own architecture does not build here)")
    for r in results:
        if r.get("error"):
            print(f"  FAILED at {r['stage']}: {r['config']}: {r['error'][:200]}")
    if args.out:
        Path(args.out).write_text(json.dumps({"counts": count, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
