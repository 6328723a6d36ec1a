"""The figures of the plots stage, drawn with matplotlib (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from imdb_sentiment.dataset.extract import CLASS_NAMES  # noqa: E402


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


FIT_STYLES = {"supervised": "--", "self_trained": "-", "refit": ":"}  # in the order the fits run


def training_curves(history: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Loss and accuracy per epoch, training against validation, in two panels; one line style
    a fit ({fit: {metric: values}}: the first model, the self-trained one, a refit)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, title in ((loss_ax, "loss", "Loss"), (acc_ax, "accuracy", "Accuracy")):
        for fit, curves in history.items():
            style, name = FIT_STYLES.get(fit, "-."), fit.replace("_", "-")
            for key, label, color in ((metric, "training", "C0"), (f"val_{metric}", "validation", "C1")):
                if key in curves:
                    epochs = range(1, len(curves[key]) + 1)
                    ax.plot(epochs, curves[key], style, marker="o", color=color, label=f"{label} ({name})")
        ax.set_title(f"Training and validation {title.lower()}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(title)
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    _save(fig, path)


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, path: Path) -> None:
    counts = np.zeros((2, 2), dtype=int)
    np.add.at(counts, (actual.astype(int), predicted.astype(int)), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, f"{n:,}", ha="center", va="center",
                color="white" if n > counts.max() / 2 else "black", fontsize=12)
    ax.set_xticks([0, 1], CLASS_NAMES)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"Confusion matrix (test, accuracy {np.trace(counts) / counts.sum():.1%})")
    _save(fig, path)


def roc_curve(points: list[dict], auc: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([p["fpr"] for p in points], [p["tpr"] for p in points], label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve (test)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def attention_figure(words: list[str], weights: np.ndarray, importance: np.ndarray,
                     title: str, path: Path) -> None:
    """One heatmap per head (query rows, key columns) over the review's words, and below them
    a strip of how much attention each word receives, averaged over heads and queries. With one
    learned query (``pooling: query``) each head's map is a strip of its own."""
    heads, queries = weights.shape[:2]
    cols = min(heads, 4) if queries > 1 else 1
    rows = -(-heads // cols)
    size = max(3.0, 0.11 * len(words))
    height = size if queries > 1 else 0.9
    fig = plt.figure(figsize=(cols * size, rows * height + 1.6), constrained_layout=True)
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[height] * rows + [1.0])
    ticks = np.arange(len(words))
    fontsize = 6 if len(words) > 30 else 8
    for head in range(heads):
        ax = fig.add_subplot(grid[head // cols, head % cols])
        image = ax.imshow(weights[head], cmap="viridis", aspect="auto")
        # The scale: each map stretches its colours over its own range, so near-uniform weights
        # look as contrasted as peaked ones; the colour bar tells them apart.
        fig.colorbar(image, ax=ax, pad=0.01).ax.tick_params(labelsize=7)
        ax.set_title(f"head {head + 1}", fontsize=9)
        if queries > 1:
            ax.set_xticks(ticks, words, rotation=90, fontsize=fontsize)
            ax.set_yticks(ticks, words, fontsize=fontsize)
        else:  # the strips share the words of the strip below them
            ax.set_xticks([])
            ax.set_yticks([0], ["query"], fontsize=fontsize)
    strip = fig.add_subplot(grid[rows, :])
    image = strip.imshow(importance[None, :], cmap="Reds", aspect="auto")
    fig.colorbar(image, ax=strip, pad=0.01).ax.tick_params(labelsize=7)
    strip.set_xticks(ticks, words, rotation=90, fontsize=fontsize + 1)
    strip.set_yticks([])
    strip.set_title("attention received per word (mean over heads and queries)", fontsize=9)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


def contribution_figure(words: list[str], parts, title: str, path: Path) -> None:
    """Each word's signed part of the logit (``parts``: :class:`imdb_sentiment.plots.explain.Contributions`),
    one row a source: each attention head, the attention branch (heads summed, or the plain average),
    the n-gram branch, and the whole; red for positive, blue for negative, one colour scale."""
    rows = [] if parts.heads is None or len(parts.heads) == 1 else [
        (f"head {h + 1}", values) for h, values in enumerate(parts.heads)]
    rows.append(("attention branch" if parts.heads is not None else "average of the words", parts.attention))
    if parts.ngrams is not None:
        rows += [("n-gram branch", parts.ngrams), ("both", parts.attention + parts.ngrams)]
    values = np.stack([row for _, row in rows])
    limit = max(float(np.abs(values).max()), 1e-6)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(words) + 2.5), 0.5 * len(rows) + 2.2), constrained_layout=True)
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(np.arange(len(words)), words, rotation=90, fontsize=8)
    ax.set_yticks(np.arange(len(rows)), [name for name, _ in rows], fontsize=9)
    for row, (name, _) in enumerate(rows):
        ax.text(len(words) - 0.4, row, f" {values[row].sum():+.2f}", va="center", ha="left", fontsize=8)
    bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.08)
    bar.set_label("part of the logit (+: positive)", fontsize=8)
    ax.set_title(f"{title}\nlogit {parts.logit:+.2f} = words' parts (sums at the right) {parts.bias:+.2f} bias",
                 fontsize=10)
    _save(fig, path)


def placeholder(text: str, path: Path) -> None:
    """A figure that says why there is nothing to draw: every figure dvc.yaml declares exists."""
    fig, ax = plt.subplots(figsize=(5, 1))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    _save(fig, path)
