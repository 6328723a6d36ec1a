"""DVC stage `plots`: PNG figures of training curves, confusion matrix and ROC curve."""

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from imdb_sentiment import cli, plotting
from imdb_sentiment.data import CLASS_NAMES
from imdb_sentiment.errors import PipelineError
from imdb_sentiment.outputs import atomic_path
from imdb_sentiment.history import from_csv


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the stage that writes it first")
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("history", type=Path)
    parser.add_argument("roc", type=Path)
    parser.add_argument("predictions", type=Path)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("figures", type=Path, help="folder for the PNG files")
    args = parser.parse_args()
    start = time.perf_counter()
    history = from_csv(args.history.read_text(encoding="utf-8"))
    roc = [{k: float(v) for k, v in row.items()} for row in _read_csv(args.roc)]
    predictions = _read_csv(args.predictions)
    auc = json.loads(args.metrics.read_text(encoding="utf-8"))["roc_auc"]
    actual = np.array([CLASS_NAMES.index(r["actual"]) for r in predictions])
    predicted = np.array([CLASS_NAMES.index(r["predicted"]) for r in predictions])
    with atomic_path(args.figures, directory=True) as figures:
        plotting.training_curves(history, figures / "training_curves.png")
        plotting.confusion_matrix(actual, predicted, figures / "confusion_matrix.png")
        plotting.roc_curve(roc, auc, figures / "roc_curve.png")
    print(f"plots: {args.figures} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli.run("plots", main)
