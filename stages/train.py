"""DVC stage `train`: fit the attention classifier on the vectorized training split (with
``pseudo_label_confidence``, then a fresh one on those and the unlabeled reviews the first is sure
of, labelled by it; with ``refit``, then a fresh one on training and validation reviews for the
epochs kept); save it, its raw-text export model, the per-epoch loss and accuracy, its
validation figures, and what it trained on with which software versions."""

import argparse
import time
from pathlib import Path

from imdb_sentiment import cli

cli.quiet_tensorflow()

from imdb_sentiment.distribute import strategy_for  # noqa: E402
from imdb_sentiment.environment import versions  # noqa: E402
from imdb_sentiment.export import build_export_model  # noqa: E402
from imdb_sentiment.outputs import atomic_path, write_json, write_text  # noqa: E402
from imdb_sentiment.params import load_params  # noqa: E402
from imdb_sentiment.history import to_csv  # noqa: E402
from imdb_sentiment.model import save_model  # noqa: E402
from imdb_sentiment.training import train  # noqa: E402
from imdb_sentiment.vectorized import load_split, load_vocabulary  # noqa: E402

MODEL, EXPORT = "model.keras", "export.keras"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vectorized", type=Path, help="folder written by the vectorize stage")
    parser.add_argument("model", type=Path, help=f"folder for {MODEL} (token ids in, logit out) and {EXPORT}")
    parser.add_argument("history", type=Path, help="CSV file for the per-epoch loss and accuracy")
    parser.add_argument("metrics", type=Path, help="JSON file for the validation figures and the time taken")
    parser.add_argument("run", type=Path, help="JSON file for the epochs run and kept, the reviews trained on, "
                                               "and the Python and package versions used")
    args = parser.parse_args()
    params = load_params()  # fails on bad params before any data is read
    strategy = strategy_for(params.distribute)  # and on a missing or malformed TF_CONFIG
    start = time.perf_counter()
    x_train, y_train, _ = load_split(args.vectorized, "train")
    x_val, y_val, _ = load_split(args.vectorized, "validation")
    x_unlabeled = load_split(args.vectorized, "unlabeled")[0] if params.pseudo_label_confidence else None
    vocabulary = load_vocabulary(args.vectorized)
    model, history, kept, trained_on = train(params, x_train, y_train, x_val, y_val, len(vocabulary), strategy,
                                             x_unlabeled)
    seconds = time.perf_counter() - start
    export = build_export_model(model, vocabulary, params.sequence_length, params.ngrams)
    with atomic_path(args.model, directory=True) as tmp:
        save_model(model, tmp / MODEL)
        save_model(export, tmp / EXPORT)
    write_text(args.history, to_csv(history))
    best = history[kept - 1]
    pseudo_labelled = trained_on - len(x_train) - (len(x_val) if params.refit else 0)
    # The metrics are what experiments are compared on: few, so that `dvc exp show` stays readable.
    write_json(args.metrics, {
        "val_loss": round(best["val_loss"], 6),  # of the last model validated, before any refit
        "val_accuracy": round(best["val_accuracy"], 6),
        "fit_seconds": round(seconds, 1),  # the only figure that differs between identical runs
    })
    write_json(args.run, {
        "epochs_run": len(history),
        "epoch_kept": kept,
        "trained_on_reviews": trained_on,  # by the saved model
        "pseudo_labelled_reviews": pseudo_labelled,  # of them
        "versions": versions(),
    })
    refit = f"; refit on {trained_on:,} reviews for {kept} epochs" if params.refit else ""
    refit += f" ({pseudo_labelled:,} pseudo-labelled)" if pseudo_labelled else ""
    print(f"train: {len(history)} epochs, kept epoch {kept}: validation accuracy "
          f"{best['val_accuracy']:.4f}, loss {best['val_loss']:.4f}{refit} in {seconds:.1f} s")


if __name__ == "__main__":
    cli.run("train", main)
