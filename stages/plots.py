"""DVC stage `plots`: PNG figures of the training curves, the confusion matrix, the ROC curve,
and, for three test reviews, each word's signed part of the logit (by attention head and by
branch) and the attention the model pays to the words."""

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from imdb_sentiment import cli

cli.quiet_tensorflow()

from imdb_sentiment.plots import figures as plotting  # noqa: E402
from imdb_sentiment.dataset.extract import CLASS_NAMES  # noqa: E402
from imdb_sentiment.plots.explain import (  # noqa: E402
    EXAMPLES, logit_contributions, pick_examples, token_importance)
from imdb_sentiment.errors import PipelineError  # noqa: E402
from imdb_sentiment.outputs import atomic_path  # noqa: E402
from imdb_sentiment.model.saving import load_classifier  # noqa: E402
from imdb_sentiment.features.vectorized import load_split, load_vocabulary  # noqa: E402


def _read_csv(path: Path, delimiter: str = ",") -> list[dict]:
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the stage that writes it first")
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def training_history(live: Path) -> dict[str, dict[str, list[float]]]:
    """Each fit's per-epoch figures as dvclive logged them (``plots/metrics/<fit>/<metric>.tsv``):
    {fit: {metric: [value of epoch 1, 2, ...]}}, the fits in the order they ran."""
    metrics = live / "plots" / "metrics"
    if not metrics.is_dir():
        raise PipelineError(f"{metrics} does not exist; run the train stage first")
    order = list(plotting.FIT_STYLES)  # the fits in the order the train stage runs them
    fits = sorted((d for d in metrics.iterdir() if d.is_dir()),
                  key=lambda d: order.index(d.name) if d.name in order else len(order))
    return {fit.name: {tsv.stem: [float(row[tsv.stem]) for row in _read_csv(tsv, "\t")]
                       for tsv in sorted(fit.glob("*.tsv"))} for fit in fits}


def review_figures(model_path: Path, vectorized: Path, predictions: list[dict], folder: Path) -> None:
    """For a correct positive, a correct negative and a misclassified test review: each word's
    part of the logit, by head and branch, and the attention heatmaps."""
    model = load_classifier(model_path)
    attends = "attention" in [layer.name for layer in model.layers]
    if not attends:
        print("plots: no attention figures: the model averages its tokens (pooling: average)")
    x, y, ids = load_split(vectorized, "test")
    vocabulary = load_vocabulary(vectorized)
    probability = {row["id"]: float(row["probability"]) for row in predictions}
    scores = np.array([probability[i] for i in ids])
    picked = pick_examples(x, y, scores)
    for name in sorted(set(EXAMPLES) - set(picked)):  # a model right on every test review, say
        for kind in ("contributions", "attention") if attends else ("contributions",):
            plotting.placeholder(f"no {name.replace('_', ' ')} review in the test split", folder / f"{kind}_{name}.png")
    for name, row in picked.items():
        words = [vocabulary[t] for t in x[row][: int(np.count_nonzero(x[row]))]]
        title = (f"{name.replace('_', ' ')}: {ids[row]}, actual {CLASS_NAMES[y[row]]}, "
                 f"P(positive) = {scores[row]:.3f}")
        parts = logit_contributions(model, x[row])
        plotting.contribution_figure(words, parts, title, folder / f"contributions_{name}.png")
        if attends:  # the weights the contributions came from
            plotting.attention_figure(words, parts.weights, token_importance(parts.weights), title,
                                      folder / f"attention_{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("live", type=Path, help="dvclive folder written by the train stage")
    parser.add_argument("roc", type=Path)
    parser.add_argument("confusion", type=Path, help="CSV file: actual, predicted, a row a review")
    parser.add_argument("predictions", type=Path)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("model", type=Path, help="model folder written by the train stage")
    parser.add_argument("vectorized", type=Path, help="folder written by the vectorize stage")
    parser.add_argument("figures", type=Path, help="folder for the PNG files")
    args = parser.parse_args()
    start = time.perf_counter()
    history = training_history(args.live)
    roc = [{k: float(v) for k, v in row.items()} for row in _read_csv(args.roc)]
    confusion = _read_csv(args.confusion)
    predictions = _read_csv(args.predictions)
    auc = json.loads(args.metrics.read_text(encoding="utf-8"))["test"]["roc_auc"]
    actual = np.array([CLASS_NAMES.index(r["actual"]) for r in confusion])
    predicted = np.array([CLASS_NAMES.index(r["predicted"]) for r in confusion])
    with atomic_path(args.figures, directory=True) as figures:
        plotting.training_curves(history, figures / "training_curves.png")
        plotting.confusion_matrix(actual, predicted, figures / "confusion_matrix.png")
        plotting.roc_curve(roc, auc, figures / "roc_curve.png")
        review_figures(args.model, args.vectorized, predictions, figures)
    print(f"plots: {args.figures} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli.run("plots", main)
