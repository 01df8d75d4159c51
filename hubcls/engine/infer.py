"""Top-k prediction on image files with a trained run (config + checkpoint) or a zoo model, through
the same preprocessing as evaluation (hubcls.data pipelines)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .._paddle import import_paddle
from ..errors import ConfigError, HubclsError

IMG_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


def expand_inputs(items: Sequence[str]) -> List[Path]:
    """Files and folders (recursively, image extensions only, sorted) -> image paths."""
    out: List[Path] = []
    for it in items:
        p = Path(it).expanduser()
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMG_EXT))
        elif p.is_file():
            out.append(p)
        else:
            raise ConfigError(f"input {it!r} is neither an image file nor a folder")
    if not out:
        raise ConfigError(f"no images found in {', '.join(map(str, items))}")
    return out


def _pipeline_from_config(cfg: dict):
    from ..data import build_transforms

    ops = (cfg.get("Infer") or {}).get("transforms")
    where = "Infer.transforms"
    if not ops:
        ops = (((cfg.get("DataLoader") or {}).get("Eval") or {}).get("dataset") or {}).get("transform_ops")
        where = "DataLoader.Eval.dataset.transform_ops"
    if not ops:
        return None
    # files are decoded by read_image here; the pipeline starts after decoding
    ops = [op for op in ops if not (isinstance(op, dict) and "DecodeImage" in op)]
    return build_transforms(ops, where=where)


def class_names_from_config(cfg: dict) -> Optional[List[str]]:
    """Class names from the config's label file; a configured file that does not exist warns (the
    predictions then show class ids), it is never skipped silently."""
    import warnings

    ds = ((cfg.get("DataLoader") or {}).get("Eval") or {}).get("dataset") or {}
    post = (cfg.get("Infer") or {}).get("PostProcess") or {}
    for where, path in (("DataLoader.Eval.dataset.label_list", ds.get("label_list")),
                        ("DataLoader.Eval.dataset.class_id_map_file", ds.get("class_id_map_file")),
                        ("Infer.PostProcess.class_id_map_file", post.get("class_id_map_file"))):
        if not path:
            continue
        if Path(path).is_file():
            from ..deploy.export import read_labels

            return read_labels(path)
        warnings.warn(f"{where}: {path} does not exist; predictions are shown as class ids "
                      f"(point it at a '<id> <name>' label file, e.g. -o {where}=labels.txt)", stacklevel=2)
    return None


class Classifier:
    """model + preprocessing + class names; ``predict(paths, top_k)`` -> list of result dicts."""

    def __init__(self, model, pipeline, class_names=None, batch_size: int = 16):
        self.paddle = import_paddle()
        self.model = model
        self.model.eval()
        self.pipeline = pipeline
        self.class_names = class_names
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, cfg: dict, weights=None):
        from .trainer import build_model, run_dir_of, select_device
        from . import checkpoint as ckpt

        select_device(cfg["Global"].get("device", "auto"))
        if weights:
            cfg["Global"]["pretrained_model"] = str(weights)
        elif not cfg["Global"].get("pretrained_model") and not cfg["Arch"].get("pretrained"):
            run_dir = run_dir_of(cfg)
            for cand in (ckpt.BEST_WEIGHTS, ckpt.LAST_WEIGHTS):
                if (run_dir / cand).is_file():
                    cfg["Global"]["pretrained_model"] = str(run_dir / cand)
                    break
            else:
                raise ConfigError(f"no weights: train first (no {run_dir / ckpt.BEST_WEIGHTS}) or pass "
                                  f"-o Global.pretrained_model=PATH / --weights PATH")
        model = build_model(cfg, log=lambda m: None)
        pipe = _pipeline_from_config(cfg)
        if pipe is None:
            from ..data import eval_transforms_for

            pipe = eval_transforms_for(model.pretrained_cfg)
        names = class_names_from_config(cfg)
        if names is None:
            run_dir = run_dir_of(cfg)
            st = run_dir / ckpt.LAST
            if st.is_file():
                names = ckpt.load_checkpoint(st).get("class_names")
        return cls(model, pipe, names, int((cfg.get("Infer") or {}).get("batch_size", 16) or 16))

    @classmethod
    def from_name(cls, name: str, weights=None, num_classes=None):
        from ..data import eval_transforms_for
        from ..models import create_model

        pretrained = weights if weights else True
        try:
            model = create_model(name, pretrained=pretrained, **({"num_classes": num_classes} if num_classes else {}))
        except HubclsError:
            raise
        names = None
        try:
            from ..deploy.export import labels_for

            names = labels_for(model.pretrained_cfg)
        except ImportError:
            pass
        return cls(model, eval_transforms_for(model.pretrained_cfg), names)

    def _prep(self, path):
        from ..data import read_image

        x = np.asarray(self.pipeline(read_image(str(path))), dtype=np.float32)
        if x.ndim == 3 and x.shape[-1] in (1, 3) and x.shape[0] not in (1, 3):
            x = x.transpose(2, 0, 1)
        return x

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        """Through hubcls.deploy's backend layer (auto: the fastest installed backend, program exported
        once and cached; HUBCLS_BACKEND=dygraph|inference|onnxruntime overrides)."""
        if getattr(self, "_runner", None) is None:
            from ..deploy.backends import create_runner

            self._runner = create_runner(self.model, getattr(self.model, "pretrained_cfg", None),
                                         input_size=tuple(batch.shape[1:]))
        return self._runner(batch)

    def predict(self, paths: Sequence, top_k: int = 5, progress: bool = True) -> List[dict]:
        from tqdm import tqdm

        paddle = self.paddle
        results = []
        paths = list(paths)
        bar = tqdm(total=len(paths), desc="predict", unit="img", disable=not progress or len(paths) < 2, leave=False)
        for s in range(0, len(paths), self.batch_size):
            chunk = paths[s:s + self.batch_size]
            ok, arrs = [], []
            for p in chunk:
                try:
                    arrs.append(self._prep(p))
                    ok.append(p)
                except HubclsError as exc:  # a bad file is reported, the rest still run
                    results.append({"file": str(p), "error": str(exc)})
            if arrs:
                logits = self._logits(np.stack(arrs).astype(np.float32, copy=False))
                z = np.exp(logits - logits.max(axis=-1, keepdims=True))
                prob = z / z.sum(axis=-1, keepdims=True)
                k = min(top_k, prob.shape[1])
                for p, row in zip(ok, prob):
                    idx = np.argsort(-row, kind="stable")[:k]
                    results.append({
                        "file": str(p),
                        "class_ids": [int(i) for i in idx],
                        "scores": [float(row[i]) for i in idx],
                        "label_names": [self.class_names[i] if self.class_names and i < len(self.class_names) else str(int(i)) for i in idx],
                    })
            bar.update(len(chunk))
        bar.close()
        order = {str(p): i for i, p in enumerate(paths)}
        results.sort(key=lambda r: order.get(r["file"], 0))
        return results


def write_json(results, path) -> None:
    Path(path).write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


def write_csv(results, path) -> None:
    k = max((len(r.get("class_ids", [])) for r in results), default=0)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file"] + [c for i in range(1, k + 1) for c in (f"top{i}_id", f"top{i}_label", f"top{i}_score")] + ["error"])
        for r in results:
            row = [r["file"]]
            for i in range(k):
                if i < len(r.get("class_ids", [])):
                    row += [r["class_ids"][i], r["label_names"][i], f"{r['scores'][i]:.6f}"]
                else:
                    row += ["", "", ""]
            w.writerow(row + [r.get("error", "")])
