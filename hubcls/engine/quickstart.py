"""``hubcls quickstart``: the README's main job, offline by default.

data (the generated demo set, or Flowers-102 from --data-dir) -> weights (the official ImageNet
weights when the model host answers within a few seconds, else from scratch, and it says which) ->
train -> evaluate -> export (Paddle inference model; save_pretrained when export is unavailable) ->
predict on sample images -> report. Every step is the real code path of the matching command.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from ..errors import HubclsError


def _say(msg):
    print(msg, flush=True)


def quick_weights(model_name: str, timeout: float = 5.0):
    """Path of the official weights of ``model_name``: cached, or downloaded if the host answers
    quickly. Returns (path or None, reason)."""
    from ..errors import HostUnreachableError
    from ..models import resolve
    from ..models._download import cached, download, is_offline, validate_weights

    cfg = resolve(model_name)
    urls = cfg.weight_urls() if hasattr(cfg, "weight_urls") else [u for u in (cfg.url, cfg.url_legendary) if u]
    if not urls:
        return None, f"{cfg.name} has no official weights"
    for url in urls:
        p = cached(url, validate=validate_weights)  # verified against its first-download record
        if p is not None:
            return p, f"cached official weights {p}"
    if is_offline():
        return None, "HUBCLS_OFFLINE=1"
    errors = []
    for url in urls:
        try:
            return (download(url, timeout=timeout, retries=0, progress=True, validate=validate_weights),
                    f"downloaded {url}")
        except HubclsError as exc:
            errors.append(str(exc).splitlines()[0])  # whole: a cut reason ("<urlopen erro") explains nothing
            if isinstance(exc, HostUnreachableError) or "timed out" in str(exc):
                break  # the host itself is unreachable: the other candidates live on the same host
    return None, "model host unreachable (" + "; ".join(errors[:1]) + ")"


def build_config(dataset: str = "demo", data_dir: Optional[str] = None, output: str = "./output/quickstart",
                 overrides: Sequence[str] = ()):
    from ..errors import ConfigError
    from .config import load_config

    out = Path(output)
    if dataset == "demo":
        data_root = Path(data_dir) if data_dir else out / "demo_data"
        base = [f"Global.output_dir={out}", f"Global.save_inference_dir={out / 'inference'}",
                f"DataLoader.Train.dataset.image_root={data_root}", f"DataLoader.Eval.dataset.image_root={data_root}",
                f"Infer.PostProcess.class_id_map_file={data_root / 'label_list.txt'}"]
        cfg = load_config("quickstart", base + list(overrides))
        tr, ev = cfg["DataLoader"]["Train"]["dataset"], cfg["DataLoader"]["Eval"]["dataset"]
        for k in ("num_classes", "seed", "train_per_class", "val_per_class"):
            if k in tr or k in ev:
                tr[k] = ev[k] = tr.get(k, ev.get(k))
        if "num_classes" in tr:
            cfg["Arch"]["class_num"] = int(tr["num_classes"])
    elif dataset == "flowers102":
        if not data_dir:
            raise ConfigError("--dataset flowers102 needs --data-dir DIR (the folder with jpg/, imagelabels.mat, "
                              "setid.mat; hubcls.data.download_flowers102 fetches them when the host is reachable)")
        base = [f"Global.output_dir={out}", f"Global.save_inference_dir={out / 'inference'}",
                f"DataLoader.Train.dataset.image_root={data_dir}", f"DataLoader.Eval.dataset.image_root={data_dir}"]
        cfg = load_config("ResNet50_vd_flowers102", base + list(overrides))
    else:
        raise ConfigError(f"--dataset: {dataset!r} is not one of demo, flowers102")
    return cfg


def _sample_images(cfg, n_per_class: int = 1, limit: int = 6):
    from ..data import build_dataset

    ds = build_dataset(dict(cfg["DataLoader"]["Eval"]["dataset"], transform_ops=None), "DataLoader.Eval.dataset")
    seen, picks = {}, []
    for i in range(len(ds)):
        lab = int(ds.label(i)) if not hasattr(ds.label(i), "__len__") else i
        if seen.get(lab, 0) < n_per_class:
            seen[lab] = seen.get(lab, 0) + 1
            picks.append((ds.source(i), lab, ds.class_names[lab] if ds.class_names else str(lab)))
        if len(picks) >= limit:
            break
    return picks


def run_quickstart(dataset="demo", data_dir=None, output="./output/quickstart", overrides=(), pretrained="auto",
                   top_k: int = 3, quiet: bool = False) -> dict:
    t0 = time.time()
    timings = {}
    cfg = build_config(dataset, data_dir, output, overrides)
    out = Path(cfg["Global"]["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    arch = cfg["Arch"]["name"]

    # 1. data
    t = time.time()
    if dataset == "demo":
        from ..data.demo import ensure_demo_dataset

        ds_cfg = cfg["DataLoader"]["Train"]["dataset"]
        paths = ensure_demo_dataset(ds_cfg["image_root"], **{k: ds_cfg[k] for k in ("num_classes", "seed", "train_per_class", "val_per_class") if k in ds_cfg})
        n_train = sum(1 for _ in open(paths["train_list"]))
        n_val = sum(1 for _ in open(paths["val_list"]))
        _say(f"[1/6] data: demo dataset in {paths['root']} ({n_train} train / {n_val} val images, "
             f"{cfg['Arch']['class_num']} classes)")
    else:
        _say(f"[1/6] data: Flowers-102 from {data_dir}")
    timings["data"] = time.time() - t

    # 2. weights
    t = time.time()
    start = "scratch"
    if pretrained is True or pretrained == "auto":
        path, why = quick_weights(arch)
        if path is not None:
            cfg["Arch"]["pretrained"] = str(path)
            start = "official"
            _say(f"[2/6] weights: fine-tuning {arch} from the official ImageNet weights ({why})")
        else:
            cfg["Arch"]["pretrained"] = False
            _say(f"[2/6] weights: training {arch} FROM SCRATCH: official weights not available ({why})")
    elif pretrained:
        cfg["Arch"]["pretrained"] = str(pretrained)
        start = str(pretrained)
        _say(f"[2/6] weights: starting from {pretrained}")
    else:
        cfg["Arch"]["pretrained"] = False
        _say(f"[2/6] weights: training {arch} from scratch (--no-pretrained)")
    timings["weights"] = time.time() - t

    # 3. train (the same Trainer as `hubcls train -c quickstart`)
    from .trainer import Trainer

    t = time.time()
    cfg_name = "quickstart" if dataset == "demo" else "ResNet50_vd_flowers102"
    _say(f"[3/6] train: {cfg['Global']['epochs']} epochs (same as: hubcls train -c {cfg_name})")
    trainer = Trainer(cfg, quiet=quiet)
    result = trainer.train(overwrite=True)  # the demo starts over each time it is run
    out = trainer.output_dir  # the run directory (output_dir, or output_dir/<Arch.name>)
    timings["train"] = time.time() - t

    # 4. evaluate the best weights
    t = time.time()
    from . import checkpoint as ckpt

    best_w = out / ckpt.BEST_WEIGHTS
    trainer.model.set_state_dict(ckpt.load_weights(best_w))
    res, metrics = trainer.evaluate()
    trainer._write_eval_artifacts(res)
    msg = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    _say(f"[4/6] eval ({best_w.parent.name}/{best_w.name}, epoch {result['best'].get('epoch')}): {msg}")
    timings["eval"] = time.time() - t

    # 5. export
    t = time.time()
    export_dir = Path(cfg["Global"].get("save_inference_dir") or out / "inference")
    ops = [op for op in (cfg.get("Infer") or {}).get("transforms", []) if not (isinstance(op, dict) and "DecodeImage" in op)]
    size = cfg["Global"].get("image_shape", [3, 224, 224])
    exported = False
    if export_dir.is_dir() and any((export_dir / f).is_file() for f in ("model.json", "hubcls_export.json")):
        import shutil

        shutil.rmtree(export_dir)  # a previous run's export (other size/weights) must not be reused
    try:
        from ..deploy import export_model

        model = trainer.model
        model.eval()
        export_model(model, export_dir, preprocess_ops=ops, input_size=list(size)[-2:],
                     labels=trainer.class_names, name=f"quickstart-{arch}")
        exported = True
        _say(f"[5/6] export: Paddle inference model in {export_dir}")
    except (ImportError, AttributeError) as exc:
        trainer.model.save_pretrained(str(export_dir))
        _say(f"[5/6] export: hubcls.deploy export unavailable ({exc}); saved with save_pretrained to {export_dir}")
    timings["export"] = time.time() - t

    # 6. predict on sample images through the exported model (or the trained dygraph model)
    t = time.time()
    samples = _sample_images(cfg)
    files = [s[0] for s in samples]
    preds = None
    if exported:
        try:
            from ..deploy import Predictor

            pr = Predictor(str(export_dir))
            raw = pr.predict(files, top_k=top_k)
            preds = [list(r.items()) for r in raw]
            how = f"exported model ({type(pr).__name__})"
        except Exception as exc:  # noqa: BLE001 - fall back to the in-process model, and say so
            _say(f"      (predict through the export failed: {exc}; using the trained model)")
    if preds is None:
        from ..deploy.pipeline import build_pipeline
        from .infer import Classifier, config_source

        clf = Classifier(build_pipeline(source=config_source(cfg, best_w), backend="dygraph",
                                        label_list=trainer.class_names))
        preds = [list(zip(r["label_names"], r["scores"])) for r in clf.predict(files, top_k=top_k, progress=False)]
        how = "trained model"
    _say(f"[6/6] predict ({how}), top-{top_k}:")
    correct = 0
    for (f, _label, name), p in zip(samples, preds):
        ok = p and str(p[0][0]) == str(name)
        correct += bool(ok)
        short = "/".join(Path(f).parts[-2:])
        _say(f"      {short:<20} true={name:<10} " + ", ".join(f"{n} {s:.2f}" for n, s in p) + ("" if ok else "   <- wrong"))
    timings["predict"] = time.time() - t
    total = time.time() - t0
    report = out / "report.html"
    _say(f"report: {report}  (curves.png, confusion_matrix.png, eval_per_class.csv, train_log.jsonl)")
    _say(f"quickstart finished in {total:.0f} s (" + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
         + f"); started from {start}; best top-1 {result['best'].get('value', float('nan')):.3f}")
    return {"metrics": metrics, "best": result["best"], "timings": timings, "total_s": total, "start": start,
            "export_dir": str(export_dir), "exported": exported, "predictions": preds, "samples": samples,
            "report": str(report), "output_dir": str(out)}
