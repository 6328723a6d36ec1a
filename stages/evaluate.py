"""DVC stage `evaluate`: the trained model on the test split: metrics (under ``test``, so that no
metric of `dvc exp show` shares a name with a param: accuracy and ROC AUC as DVC metrics, loss,
precision, recall and F1 beside them), ROC points, the confusion table, predictions."""

import argparse
import csv
import io
import time
from pathlib import Path

from imdb_sentiment import cli

cli.quiet_tensorflow()

from imdb_sentiment.model.classifier import predict_logits  # noqa: E402
from imdb_sentiment.evaluation.metrics import classification_metrics, label_names, roc_points, sigmoid  # noqa: E402
from imdb_sentiment.outputs import write_json, write_text  # noqa: E402
from imdb_sentiment.model.saving import load_classifier  # noqa: E402
from imdb_sentiment.features.vectorized import load_split  # noqa: E402


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vectorized", type=Path, help="folder written by the vectorize stage")
    parser.add_argument("model", type=Path, help="folder written by the train stage")
    parser.add_argument("metrics", type=Path, help="JSON file for the test metrics: accuracy, ROC AUC")
    parser.add_argument("classification", type=Path, help="JSON file for the test loss, precision, recall, F1 "
                                                          "and number of reviews")
    parser.add_argument("roc", type=Path, help="CSV file for the ROC curve")
    parser.add_argument("confusion", type=Path, help="CSV file: actual, predicted, a row a review, sorted")
    parser.add_argument("predictions", type=Path, help="CSV file: id, actual, predicted, probability")
    args = parser.parse_args()
    start = time.perf_counter()
    x_test, y_test, ids = load_split(args.vectorized, "test")
    model = load_classifier(args.model)
    logits = predict_logits(model, x_test, progress="evaluate")
    metrics = classification_metrics(y_test, logits)
    probabilities = sigmoid(logits.astype("float64"))
    headline = ("accuracy", "roc_auc")
    write_json(args.metrics, {"test": {key: metrics[key] for key in headline}})
    write_json(args.classification, {"test": {key: value for key, value in metrics.items() if key not in headline}})
    write_text(args.roc, _csv(roc_points(y_test, probabilities)))
    actual, predicted = label_names(y_test), label_names(logits >= 0)
    # Sorted, its rows form four runs of one line each: a few KB in git for 25,000 reviews.
    write_text(args.confusion, _csv([{"actual": a, "predicted": p} for a, p in sorted(zip(actual, predicted))]))
    predictions = [
        {"id": i, "actual": a, "predicted": p, "probability": f"{prob:.6f}"}
        for i, a, p, prob in zip(ids, actual, predicted, probabilities)
    ]
    write_text(args.predictions, _csv(predictions))
    print(f"evaluate: test accuracy {metrics['accuracy']:.4f}, ROC AUC {metrics['roc_auc']:.4f}, "
          f"loss {metrics['loss']:.4f} on {metrics['reviews']:,} reviews in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli.run("evaluate", main)
