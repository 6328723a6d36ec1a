"""Test-set metrics computed from logits: loss, accuracy, precision, recall, F1, ROC AUC,
and the tables behind the ROC curve and the confusion matrix."""

from __future__ import annotations

import numpy as np

from imdb_sentiment.dataset.extract import CLASS_NAMES


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def binary_cross_entropy(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean BCE from logits, in the numerically stable form Keras uses."""
    z, y = logits.astype(np.float64), labels.astype(np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count one half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average the ranks of tied scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    labels = labels.astype(np.int64).ravel()
    logits = logits.astype(np.float64).ravel()
    predicted = (logits >= 0).astype(np.int64)  # probability >= 0.5
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "loss": round(binary_cross_entropy(labels, logits), 6),
        "accuracy": round(float(np.mean(predicted == labels)), 6),
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "roc_auc": round(roc_auc(labels, logits), 6),
        "reviews": int(len(labels)),
    }


def roc_points(labels: np.ndarray, scores: np.ndarray, max_points: int = 201) -> list[dict]:
    """(fpr, tpr, threshold) rows of the ROC curve, thinned to at most ``max_points``."""
    labels = labels.astype(np.int64).ravel()
    scores = scores.astype(np.float64).ravel()
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_threshold = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    tps = np.cumsum(sorted_labels)[last_of_threshold]
    fps = (last_of_threshold + 1) - tps
    tpr = np.r_[0.0, tps / max(labels.sum(), 1)]
    fpr = np.r_[0.0, fps / max((1 - labels).sum(), 1)]
    thresholds = np.r_[np.inf, sorted_scores[last_of_threshold]]
    keep = np.unique(np.linspace(0, len(tpr) - 1, min(max_points, len(tpr))).round().astype(int))
    return [
        {"fpr": round(float(fpr[i]), 6), "tpr": round(float(tpr[i]), 6),
         "threshold": round(float(min(thresholds[i], 1.0)), 6)}
        for i in keep
    ]


def label_names(labels: np.ndarray) -> list[str]:
    return [CLASS_NAMES[int(i)] for i in np.asarray(labels).ravel()]
