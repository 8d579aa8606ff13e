"""Plot data the evaluate stage writes, and PNGs of the same plots that open offline.

Data files (what dvc.yaml's `plots:` section points at; `dvc plots show` renders them with Vega,
whose HTML loads vega from a CDN):
    train_loss.json    [{step, epoch, loss}]             training loss per logging step
    eval_f1.json       [{step, epoch, f1, precision, recall}]  validation scores per evaluation
    per_type_f1.json   [{type, f1, precision, recall, support}] main split, per entity type / tag
    confusion.csv      actual,predicted                   one row per word of the main split

`render_pngs` draws the same plots with matplotlib (Agg backend: no display, no network) into
training_curves.png, per_type_f1.png and confusion.png beside them.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PNG_FILES = ("training_curves.png", "per_type_f1.png", "confusion.png")
# Confusion matrices with more labels than this show the most frequent ones (plus "other").
MAX_CONFUSION_LABELS = 25


def training_curves(log_history: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Trainer log history -> (loss rows, evaluation rows), each sorted by step."""
    loss_rows: list[dict[str, Any]] = []
    eval_rows: list[dict[str, Any]] = []
    for entry in log_history:
        step = entry.get("step")
        if step is None:
            continue
        if "loss" in entry:
            loss_rows.append({"step": int(step), "epoch": float(entry.get("epoch") or 0), "loss": float(entry["loss"])})
        if "eval_f1" in entry:
            row = {"step": int(step), "epoch": float(entry.get("epoch") or 0), "f1": float(entry["eval_f1"])}
            for key in ("precision", "recall"):
                if f"eval_{key}" in entry:
                    row[key] = float(entry[f"eval_{key}"])
            eval_rows.append(row)
    return sorted(loss_rows, key=lambda r: r["step"]), sorted(eval_rows, key=lambda r: r["step"])


def confusion_rows(gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]],
                   label_names: Sequence[str] | None) -> list[tuple[str, str]]:
    """(actual, predicted) label names, one pair per word."""
    def name(i: int) -> str:
        return label_names[i] if label_names is not None and 0 <= i < len(label_names) else str(i)

    return [(name(int(g)), name(int(p))) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]


def _read_json(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def render_pngs(folder: str | Path, *, title_suffix: str = "") -> list[Path]:
    """Draw training_curves.png, per_type_f1.png and confusion.png from the data files in `folder`."""
    from tokclf.core.extras import require

    require("matplotlib", feature="drawing the evaluation plots")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    written = []
    suffix = f" - {title_suffix}" if title_suffix else ""

    # 1. training curves: loss (left axis) and validation F1 (right axis) per step
    loss = _read_json(folder / "train_loss.json")
    evals = _read_json(folder / "eval_f1.json")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if loss:
        ax.plot([r["step"] for r in loss], [r["loss"] for r in loss], color="tab:blue", marker=".", label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="tab:blue")
    if evals:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in evals], [r["f1"] for r in evals], color="tab:orange", marker="o", label="validation F1")
        ax2.set_ylabel("validation F1", color="tab:orange")
        ax2.set_ylim(0, 1)
    if not loss and not evals:
        ax.text(0.5, 0.5, "no training log", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Training curves")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(_save(fig, folder / "training_curves.png"))

    # 2. per-type F1 (horizontal bars, with support in the labels)
    per_type = _read_json(folder / "per_type_f1.json")
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(per_type) + 1.2)), dpi=110)
    if per_type:
        rows = sorted(per_type, key=lambda r: r["f1"])
        labels = [f"{r['type']} ({int(r.get('support', 0))})" for r in rows]
        ax.barh(labels, [r["f1"] for r in rows], color="tab:green")
        for y, r in enumerate(rows):
            ax.text(min(r["f1"] + 0.01, 0.93), y, f"{r['f1']:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel("F1 (support in brackets)")
    else:
        ax.text(0.5, 0.5, "no per-type scores", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("F1 per type" + suffix)
    fig.tight_layout()
    written.append(_save(fig, folder / "per_type_f1.png"))

    # 3. confusion matrix of word labels (rows: actual, columns: predicted), log-scaled colours
    pairs: list[tuple[str, str]] = []
    if (folder / "confusion.csv").is_file():
        with open(folder / "confusion.csv", encoding="utf-8", newline="") as fh:
            pairs = [(r["actual"], r["predicted"]) for r in csv.DictReader(fh)]
    written.append(_confusion_png(pairs, folder / "confusion.png", "Confusion matrix (words)" + suffix))
    plt.close("all")
    return written


def _confusion_png(pairs: list[tuple[str, str]], path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm

    counts = Counter(a for a, _ in pairs) + Counter(p for _, p in pairs)
    labels = [name for name, _ in counts.most_common()]
    if len(labels) > MAX_CONFUSION_LABELS:
        keep = set(labels[:MAX_CONFUSION_LABELS - 1])
        pairs = [(a if a in keep else "other", p if p in keep else "other") for a, p in pairs]
        labels = labels[:MAX_CONFUSION_LABELS - 1] + ["other"]
    labels = sorted(labels, key=lambda n: (n != "O", n[2:] if n[:2] in ("B-", "I-") else n, n))
    index = {n: i for i, n in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, p in pairs:
        matrix[index[a], index[p]] += 1
    size = max(4.0, 0.38 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size), dpi=110)
    if pairs:
        image = ax.imshow(np.where(matrix > 0, matrix, np.nan), cmap="Blues", norm=LogNorm(vmin=1, vmax=max(1, matrix.max())))
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="words")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        if len(labels) <= 15:
            for i in range(len(labels)):
                for j in range(len(labels)):
                    if matrix[i, j]:
                        dark = np.log1p(matrix[i, j]) > 0.6 * np.log1p(matrix.max())
                        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6,
                                color="white" if dark else "black")
    else:
        ax.text(0.5, 0.5, "no predictions", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    # Fixed metadata: the same plot gives the same bytes (no creation date), so DVC sees no change.
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
