"""End-of-training report: loss/accuracy/LR curves (PNG), confusion matrix (PNG) and an HTML page with
both, the per-class table and a grid of misclassified eval images. Needs matplotlib (``report`` extra).
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def _plt():
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


def _sample_image(dataset, index: int) -> Optional[np.ndarray]:
    """HWC uint8 thumbnail of sample ``index`` from a file-backed or array-backed dataset."""
    path = None
    for attr in ("source", "image_path", "path_of"):
        fn = getattr(dataset, attr, None)
        if callable(fn):
            path = fn(index)
            break
    if path is None:
        for attr in ("samples", "items", "files", "image_paths"):
            seq = getattr(dataset, attr, None)
            if isinstance(seq, (list, tuple)) and index < len(seq):
                item = seq[index]
                path = item[0] if isinstance(item, (list, tuple)) else item
                break
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


def write_report(trainer, eval_result=None) -> Optional[Path]:
    """Write curves.png, confusion_matrix.png and report.html into the trainer's output dir."""
    from .metrics import per_class_report

    out = Path(trainer.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    history = trainer.history
    curves = plot_curves(history, out / "curves.png")
    res = eval_result or getattr(trainer, "_last_eval", None)
    names = trainer.class_names
    parts = [f"<h1>hubcls training report: {html.escape(str(trainer.cfg['Arch']['name']))}</h1>"]
    best = trainer.best
    if best.get("metric"):
        parts.append(f"<p>best {best['metric']} = {best['value']:.4f} at epoch {best['epoch']}; "
                     f"{len(history)} epoch(s) logged; output in <code>{html.escape(str(out))}</code></p>")
    parts.append(f'<h2>Curves</h2><img src="{curves.name}" style="max-width:100%">')
    if res is not None and len(res.labels):
        cm = res.confusion()
        cmp = plot_confusion(cm, out / "confusion_matrix.png", names)
        rep = per_class_report(cm)
        parts.append(f'<h2>Confusion matrix (best epoch)</h2><img src="{cmp.name}" style="max-width:60%">')
        rows = "".join(
            f"<tr><td>{i}</td><td>{html.escape(str(names[i]) if names and i < len(names) else str(i))}</td>"
            f"<td>{rep['precision'][i]:.3f}</td><td>{rep['recall'][i]:.3f}</td><td>{rep['f1'][i]:.3f}</td>"
            f"<td>{rep['support'][i]}</td></tr>" for i in range(len(cm)))
        parts.append("<h2>Per class</h2><table border=1 cellpadding=3><tr><th>id</th><th>class</th><th>precision</th>"
                     f"<th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>")
        wrong = np.nonzero(res.pred != res.labels)[0][:48]
        ds = getattr(trainer.eval_loader, "dataset", None)
        cells = []
        for w in wrong:
            img = _sample_image(ds, int(res.index[w])) if ds is not None else None
            lab = lambda c: html.escape(str(names[c]) if names and c < len(names) else str(c))  # noqa: E731
            thumb = f'<img src="data:image/png;base64,{_png_b64(img)}" width=96><br>' if img is not None else ""
            cells.append(f'<div style="display:inline-block;margin:4px;text-align:center;font-size:11px">{thumb}'
                         f"#{int(res.index[w])}<br>true: {lab(int(res.labels[w]))}<br>pred: {lab(int(res.pred[w]))}</div>")
        parts.append(f"<h2>Mistakes ({int((res.pred != res.labels).sum())} of {len(res.labels)}; first {len(cells)})</h2>"
                     + ("".join(cells) or "<p>none</p>"))
    page = out / "report.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>hubcls report</title></head><body>"
                    + "\n".join(parts) + "</body></html>", encoding="utf-8")
    return page
