"""End-of-training report: loss/accuracy/LR curves (PNG), confusion matrix (PNG) and an HTML page with
both, the per-class table and a grid of misclassified eval images. Needs matplotlib (``report`` extra).
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np


def _plt():
    import logging
    import os

    if os.environ.get("HUBCLS_VERBOSE", "0").lower() not in ("1", "true", "yes", "on"):
        # matplotlib's first run builds its font cache and says so (INFO "generated new fontManager",
        # a WARNING after 5 s); a one-off, not the user's concern: shown only with --verbose
        logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict], path) -> Path:
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(ep, [h.get("train_loss") for h in history], "o-", label="train")
    if any("eval_loss" in h for h in history):
        e2 = [h for h in history if "eval_loss" in h]
        axes[0].plot([h["epoch"] for h in e2], [h["eval_loss"] for h in e2], "s-", label="eval")
    axes[0].set_title("loss")
    for key, style in (("train_top1", "o-"), ("eval_top1", "s-"), ("eval_top5", "^-"), ("eval_mAP", "d-")):
        pts = [h for h in history if key in h]
        if pts:
            axes[1].plot([h["epoch"] for h in pts], [h[key] for h in pts], style, label=key)
    axes[1].set_title("accuracy")
    axes[1].set_ylim(0, 1.02)
    axes[2].plot(ep, [h.get("lr") for h in history], "o-")
    axes[2].set_title("learning rate (end of epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_confusion(cm: np.ndarray, path, class_names: Optional[Sequence[str]] = None) -> Path:
    plt = _plt()
    k = len(cm)
    size = min(2 + 0.45 * k, 16)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 40:
        names = list(class_names)[:k] if class_names else [str(i) for i in range(k)]
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
        if k <= 15:
            for i in range(k):
                for j in range(k):
                    if cm[i, j]:
                        ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def _sample_path(dataset, index: int) -> Optional[str]:
    """The file sample ``index`` of a file-backed dataset was read from (None for array data)."""
    for attr in ("source", "image_path", "path_of"):
        fn = getattr(dataset, attr, None)
        if callable(fn):
            path = fn(index)
            return str(path) if isinstance(path, (str, Path)) else None
    for attr in ("samples", "items", "files", "image_paths"):
        seq = getattr(dataset, attr, None)
        if isinstance(seq, (list, tuple)) and index < len(seq):
            item = seq[index]
            item = item[0] if isinstance(item, (list, tuple)) else item
            return str(item) if isinstance(item, (str, Path)) else None
    return None


def _sample_name(dataset, index: int) -> str:
    """How the report names a sample: its file relative to the dataset's image_root (as in the
    file list), else the file's path, else ``#index`` (array data)."""
    path = _sample_path(dataset, index) if dataset is not None else None
    if path is None:
        return f"#{index}"
    root = getattr(dataset, "image_root", None)
    if root:
        try:
            return str(Path(path).resolve().relative_to(Path(root).resolve()))
        except ValueError:
            pass
    return path


def _sample_image(dataset, index: int) -> Optional[np.ndarray]:
    """HWC uint8 thumbnail of sample ``index`` from a file-backed or array-backed dataset."""
    path = _sample_path(dataset, index)
    if path is not None and isinstance(path, (str, Path)):
        try:
            import cv2

            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                return None
            h, w = img.shape[:2]
            s = 96 / max(h, w)
            img = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))))
            return img[:, :, ::-1]
        except Exception:  # noqa: BLE001 - a thumbnail must never fail the report
            return None
    arr = getattr(dataset, "images", None)
    if isinstance(arr, np.ndarray) and index < len(arr):
        x = arr[index]
        x = np.transpose(x, (1, 2, 0)) if x.ndim == 3 and x.shape[0] in (1, 3) else x
        x = (x - x.min()) / max(float(x.max() - x.min()), 1e-6)
        return (x * 255).astype(np.uint8).squeeze()
    return None


def _png_b64(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;max-width:1100px;
 margin:24px auto;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px;font-size:12px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fafbfc}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.facts th{width:170px}img.plot{max-width:100%;border:1px solid #d0d7de;border-radius:6px}
.summary{color:#57606a}.mistakes{display:flex;flex-wrap:wrap;gap:8px}
.mistake{width:150px;border:1px solid #d0d7de;border-radius:6px;padding:6px;font-size:12px;text-align:center}
.mistake .file{font-family:ui-monospace,monospace;font-size:11px;word-break:break-all;color:#0550ae}
.mistake .pred{color:#cf222e}
"""


def _provenance(trainer, out: Path) -> List[Tuple[str, str]]:
    """(what, HTML) rows: the config it ran, the weights it started from, the data, what it wrote."""
    from .. import __version__
    from .._paddle import paddle_version
    from .config import _get

    cfg = trainer.cfg
    esc = lambda v: html.escape(str(v))  # noqa: E731
    link = lambda name: f'<a href="{esc(name)}"><code>{esc(name)}</code></a>'  # noqa: E731
    rows = []
    source = cfg.get("_source") or "<dict>"
    config = f"<code>{esc(source)}</code>"
    if cfg.get("_converted_from"):
        config += " (a PaddleClas release/2.0 config, converted)"
    if (out / "config.yaml").is_file():
        config += f"; as run, with every override and default: {link('config.yaml')}"
    rows.append(("config", config))
    start = _get(cfg, "Arch.pretrained")
    pm = _get(cfg, "Global.pretrained_model")
    if start is True:
        weights = f"the official {esc(cfg['Arch']['name'])} weights"
    elif start:
        weights = f"<code>{esc(start)}</code> (Arch.pretrained)"
    elif pm:
        weights = f"<code>{esc(pm)}</code> (Global.pretrained_model)"
    else:
        weights = "random initialisation (trained from scratch)"
    if int(getattr(trainer, "start_epoch", 1) or 1) > 1:
        weights += f"; resumed at epoch {int(trainer.start_epoch)}"
    rows.append(("starting weights", weights))
    for split in ("Train", "Eval"):
        ds = _get(cfg, f"DataLoader.{split}.dataset") or {}
        where = ds.get("cls_label_path") or ds.get("image_root")
        if where:
            rows.append((f"{split.lower()} data", f"{esc(ds.get('name', ''))} <code>{esc(where)}</code>"))
    wrote = [link(n + "/") for n in ("best", "last") if (out / n).is_dir()]
    wrote += [link(f.name) for f in sorted(out.glob("*.pdckpt")) + sorted(out.glob("*.pdparams"))]
    if wrote:
        rows.append(("weights written", ", ".join(wrote)))
    rows.append(("software", f"hubcls {esc(__version__)}, {esc(paddle_version() or 'Paddle not found')}"))
    return rows


def write_report(trainer, eval_result=None) -> Optional[Path]:
    """Write curves.png, confusion_matrix.png and report.html into the trainer's output dir."""
    from .metrics import per_class_report

    out = Path(trainer.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    history = trainer.history
    curves = plot_curves(history, out / "curves.png")
    res = eval_result or getattr(trainer, "_last_eval", None)
    names = trainer.class_names
    esc = lambda v: html.escape(str(v))  # noqa: E731
    lab = lambda c: esc(names[c] if names and c < len(names) else c)  # noqa: E731
    parts = [f"<h1>hubcls training report: {esc(trainer.cfg['Arch']['name'])}</h1>"]
    best = trainer.best
    if best.get("metric"):
        parts.append(f"<p class=summary>best {esc(best['metric'])} = {best['value']:.4f} at epoch {best['epoch']}; "
                     f"{len(history)} epoch(s) logged; output in <code>{esc(out)}</code></p>")
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in _provenance(trainer, out))
    parts.append(f"<h2>Provenance</h2><table class=facts>{rows}</table>")
    parts.append(f'<h2>Curves</h2><img class=plot src="{curves.name}" alt="loss, accuracy and learning rate">')
    if res is not None and len(res.labels):
        cm = res.confusion()
        cmp = plot_confusion(cm, out / "confusion_matrix.png", names)
        rep = per_class_report(cm)
        parts.append(f'<h2>Confusion matrix (best epoch)</h2><img class=plot src="{cmp.name}" style="max-width:60%" '
                     f'alt="confusion matrix">')
        rows = "".join(
            f"<tr><td class=num>{i}</td><td>{lab(i)}</td><td class=num>{rep['precision'][i]:.3f}</td>"
            f"<td class=num>{rep['recall'][i]:.3f}</td><td class=num>{rep['f1'][i]:.3f}</td>"
            f"<td class=num>{rep['support'][i]}</td></tr>" for i in range(len(cm)))
        parts.append("<h2>Per class</h2><table><tr><th>id</th><th>class</th><th>precision</th>"
                     f"<th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>")
        wrong = np.nonzero(res.pred != res.labels)[0][:48]
        ds = getattr(trainer.eval_loader, "dataset", None)
        cells = []
        for w in wrong:
            index = int(res.index[w])
            img = _sample_image(ds, index) if ds is not None else None
            thumb = f'<img src="data:image/png;base64,{_png_b64(img)}" width=96 alt=""><br>' if img is not None else ""
            cells.append(f'<div class=mistake title="eval sample #{index}">{thumb}'
                         f'<div class=file>{esc(_sample_name(ds, index))}</div>'
                         f"true: {lab(int(res.labels[w]))}<br><span class=pred>pred: {lab(int(res.pred[w]))}</span></div>")
        parts.append(f"<h2>Mistakes ({int((res.pred != res.labels).sum())} of {len(res.labels)}; first {len(cells)})</h2>"
                     + (f"<div class=mistakes>{''.join(cells)}</div>" if cells else "<p>none</p>"))
    page = out / "report.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>hubcls report</title>"
                    f"<style>{_STYLE}</style></head><body>" + "\n".join(parts) + "</body></html>", encoding="utf-8")
    return page
