"""DVC stage `train`: fit the attention classifier on the vectorized training split (with
``pseudo_label_confidence``, first a teacher pooled as ``teacher_pooling`` says, then the
classifier on those and the unlabeled reviews the teacher is sure of, labelled by it; with
``refit``, then a fresh one on training and validation reviews for the epochs kept); log every
fit's epochs through dvclive; save the model (a SavedModel that serves raw text, and the Keras
classifier's config), its validation figures, and what it trained on with which software
versions."""

import argparse
import shutil
import time
from pathlib import Path

from imdb_sentiment import cli

cli.quiet_tensorflow()

from dvclive import Live  # noqa: E402

from imdb_sentiment.training.distribute import strategy_for  # noqa: E402
from imdb_sentiment.training.environment import versions  # noqa: E402
from imdb_sentiment.outputs import write_json  # noqa: E402
from imdb_sentiment.params import load_params  # noqa: E402
from imdb_sentiment.model.saving import save_model  # noqa: E402
from imdb_sentiment.training.fit import Stopwatch, train  # noqa: E402
from imdb_sentiment.features.vectorized import load_split, load_standardization, load_vocabulary  # noqa: E402


def open_live(folder: Path) -> Live:
    """dvclive writing ``folder/metrics.json`` (the summary: what `dvc exp show` shows, also while
    the stage runs) and ``folder/plots/metrics/<fit>/<metric>.tsv``; dvc.yaml declares both, so
    dvclive writes no dvc.yaml, report or experiment of its own."""
    return Live(str(folder), dvcyaml=None, report=None, save_dvc_exp=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vectorized", type=Path, help="folder written by the vectorize stage")
    parser.add_argument("model", type=Path, help="folder for the model (SavedModel and classifier.json)")
    parser.add_argument("live", type=Path, help="folder for dvclive's metrics.json and per-epoch plots")
    parser.add_argument("--pretrained", type=Path, help="folder written by the pretrain stage: each model "
                                                        "starts from its weights, if it holds any")
    parser.add_argument("run", type=Path, help="JSON file for the epochs run and kept, the reviews trained on, "
                                               "and the Python and package versions used")
    args = parser.parse_args()
    params = load_params()  # fails on bad params before any data is read
    strategy = strategy_for(params.distribute)  # and on a missing or malformed TF_CONFIG
    start, stopwatch = time.perf_counter(), Stopwatch()
    with stopwatch.phase("load"):
        x_train, y_train, _ = load_split(args.vectorized, "train")
        x_val, y_val, _ = load_split(args.vectorized, "validation")
        x_unlabeled = load_split(args.vectorized, "unlabeled")[0] if params.pseudo_label_confidence else None
        vocabulary, standardize = load_vocabulary(args.vectorized), load_standardization(args.vectorized)
        live = open_live(args.live)
    try:
        model, history, kept, trained_on = train(params, x_train, y_train, x_val, y_val, len(vocabulary),
                                                 strategy, x_unlabeled, live, stopwatch, args.pretrained)
        seconds = time.perf_counter() - start
        with stopwatch.phase("save"):
            save_model(model, vocabulary, params.sequence_length, params.ngrams, args.model, standardize)
    except BaseException:
        shutil.rmtree(args.live, ignore_errors=True)  # a failed run leaves no half-written log
        raise
    best = history[kept - 1]
    live.end()
    # Once the stage has ended, the summary is what experiments are compared on: the kept
    # model's validation accuracy (what hyperparameters are chosen on) and the time taken; its
    # validation loss is in run.json. Each fit's per-epoch figures, shown while it ran, stay in
    # its curves, out of `dvc exp show`.
    write_json(args.live / "metrics.json", {
        "val_accuracy": round(best["val_accuracy"], 6),  # of the last model validated, before any refit
        "fit_seconds": round(seconds, 1),  # the only figure that differs between identical runs
    })
    pseudo_labelled = trained_on - len(x_train) - (len(x_val) if params.refit else 0)
    write_json(args.run, {
        "epochs_run": len(history),
        "epoch_kept": kept,
        "val_loss": round(best["val_loss"], 6),  # of the epoch kept
        "trained_on_reviews": trained_on,  # by the saved model
        "pseudo_labelled_reviews": pseudo_labelled,  # of them
        "versions": versions(),
    })
    refit = f"; refit on {trained_on:,} reviews for {kept} epochs" if params.refit else ""
    refit += f" ({pseudo_labelled:,} pseudo-labelled)" if pseudo_labelled else ""
    print(f"train: {len(history)} epochs, kept epoch {kept}: validation accuracy "
          f"{best['val_accuracy']:.4f}, loss {best['val_loss']:.4f}{refit} in {seconds:.1f} s")
    print(f"train: seconds: {stopwatch.line()}")


if __name__ == "__main__":
    cli.run("train", main)
