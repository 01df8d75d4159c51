"""Top-k prediction on image files (``hubcls infer`` / ``hubcls predict``) through the one prediction
pipeline (hubcls.deploy.pipeline), and the model a training config stands for (``config_source``:
what ``hubcls infer/export/eval -c CONFIG`` use)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import ConfigError

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


def config_source(cfg: dict, weights=None):
    """The model a training config stands for, as a resolved ``ModelSource``.

    Weights: ``weights`` (any model form: file, package, run directory) > ``Global.pretrained_model``
    > the config's run directory (``run_dir_of``: its best package/weights) > ``Arch.pretrained``.
    The config's inference preprocessing (``Infer.transforms``, else the Eval loader's ops) and class
    names (its label files) win over what the weights' directory recorded: the config is what the user
    asked for now."""
    from ..models import resolve_model
    from ..models._package import with_package_facts
    from ..models._resolve import run_eval_ops, run_labels
    from .trainer import run_dir_of

    arch = cfg["Arch"]["name"]
    chosen = weights or (cfg.get("Global") or {}).get("pretrained_model")
    run_dir = run_dir_of(cfg)
    if chosen:
        p = Path(str(chosen)).expanduser()
        if not p.exists() and Path(f"{p}.pdparams").is_file():  # PaddleClas style: path without suffix
            p = Path(f"{p}.pdparams")
        source = resolve_model(arch, weights=str(p))
    elif run_dir.is_dir() and _holds_model(run_dir):
        source = resolve_model(str(run_dir))
    elif (cfg.get("Arch") or {}).get("pretrained"):
        source = resolve_model(arch, weights=cfg["Arch"]["pretrained"])
    else:
        raise ConfigError(f"no weights: train first (no trained run in {run_dir}) or pass --weights PATH "
                          f"(or -o Global.pretrained_model=PATH)")
    if source.kind == "zoo":  # the config's architecture arguments (the run's own when it recorded them)
        arch_kwargs = {k: v for k, v in (cfg.get("Arch") or {}).items()
                       if k not in ("name", "class_num", "pretrained", "freeze_stages", "lr_mult_list")}
        source.arch_kwargs = {**arch_kwargs, **source.arch_kwargs}
    labels = run_labels(cfg, run_dir)
    if labels is None:
        labels = class_names_from_config(cfg)  # warns when the config names a label file that is not there
    n = source.cfg.num_classes
    if labels is not None and source.kind in ("run", "package", "export") and len(labels) != n:
        labels = None  # the config's list does not describe these weights
    source.cfg = with_package_facts(source.cfg, labels=labels, preprocess=run_eval_ops(cfg))
    return source


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
            from ..data.label_lists import read_labels

            return read_labels(path)
        warnings.warn(f"{where}: {path} does not exist; predictions are shown as class ids "
                      f"(point it at a '<id> <name>' label file, e.g. -o {where}=labels.txt)", stacklevel=2)
    return None


def _holds_model(d: Path) -> bool:
    from ..models._resolve import _resolve_dir

    try:
        return _resolve_dir(d, str(d)) is not None
    except ConfigError:
        return False


class Classifier:
    """A prediction pipeline over image files: ``predict(paths, top_k)`` -> one dict per file
    (``file``, ``class_ids``, ``scores``, ``label_names``; or ``file`` + ``error``)."""

    def __init__(self, pipeline, batch_size: int = 16):
        self.pipeline = pipeline
        self.batch_size = int(batch_size)

    @property
    def class_names(self) -> List[str]:
        return self.pipeline.labels

    @classmethod
    def from_config(cls, cfg: dict, weights=None, *, label_list=None, backend="auto"):
        from ..deploy.pipeline import build_pipeline
        from .trainer import select_device

        device = select_device((cfg.get("Global") or {}).get("device", "auto"))
        source = config_source(cfg, weights)
        pipe = build_pipeline(source=source, backend=backend, label_list=label_list,
                              device="gpu:0" if str(device).startswith("gpu") else "cpu")
        return cls(pipe, int((cfg.get("Infer") or {}).get("batch_size", 16) or 16))

    @classmethod
    def from_model(cls, model, weights=None, *, label_list=None, backend="auto", batch_size: int = 16):
        """Any model form the resolver accepts (zoo name, package, run or export directory, ...)."""
        from ..deploy.pipeline import build_pipeline

        return cls(build_pipeline(model, weights=weights, backend=backend, label_list=label_list), batch_size)

    from_name = from_model  # the older name

    def predict(self, paths: Sequence, top_k: int = 5, progress: bool = True) -> List[dict]:
        from tqdm import tqdm

        pipe = self.pipeline
        results = []
        paths = [str(p) for p in paths]
        bar = tqdm(total=len(paths), desc="predict", unit="img", disable=not progress or len(paths) < 2, leave=False)
        for s in range(0, len(paths), self.batch_size):
            chunk = paths[s:s + self.batch_size]
            batch, errors = pipe.prepare(chunk, "RGB")
            probs = iter(pipe.probabilities(pipe.logits(batch))) if batch is not None else iter(())
            for path, err in zip(chunk, errors):
                if err is not None:  # a bad file is reported, the rest still run
                    results.append({"file": path, "error": err["error"]})
                    continue
                idx, scores = pipe.topk(next(probs), top_k)
                results.append({"file": path, "class_ids": [int(i) for i in idx], "scores": scores,
                                "label_names": [pipe.labels[i] for i in idx]})
            bar.update(len(chunk))
        bar.close()
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
