"""DVC stage `pretrain`: with ``pretrain_epochs`` > 0, teach the classifier's body (its embeddings,
regions and encoder blocks) ``pretrain_objective`` on the training and unlabeled reviews (never
validation or test; the vectorize stage has already left out the reviews that are also test
reviews): to fill in hidden words, or to predict each region's neighbours. Save the body's
weights for the train stage to start from. With ``pretrain_epochs`` 0 the output folder holds no
weights and the stage returns at once, without TensorFlow: the train stage then starts from
random weights."""

import argparse
import time
from pathlib import Path

from imdb_sentiment import cli
from imdb_sentiment.outputs import atomic_path, write_json
from imdb_sentiment.params import load_params


def last_epoch(objective: str, row: dict) -> dict:
    """The last epoch's figures, as reports/pretrain.json names them."""
    if objective == "neighbours":
        return {"neighbour_loss": round(row["loss"], 6), "frequency_loss": round(row["frequency_loss"], 6)}
    return {"hidden_word_loss": round(row["loss"], 6), "hidden_word_accuracy": round(row["accuracy"], 6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vectorized", type=Path, help="folder written by the vectorize stage")
    parser.add_argument("pretrained", type=Path, help="folder for the pretrained weights (none when off)")
    parser.add_argument("report", type=Path, help="JSON file for the last epoch's figures, the reviews and the seconds")
    args = parser.parse_args()
    params = load_params()
    if not params.pretrain_epochs:
        with atomic_path(args.pretrained, directory=True) as tmp:
            write_json(tmp / "pretraining.json", {"epochs": 0})  # and no weights: nothing to start from
        write_json(args.report, {"epochs": 0})
        print("pretrain: off (pretrain_epochs 0)")
        return

    cli.quiet_tensorflow()
    import numpy as np

    from imdb_sentiment.features.vectorized import load_split, load_vocabulary
    from imdb_sentiment.model.body import save_body_weights
    from imdb_sentiment.training.pretrain import pretrain

    start = time.perf_counter()
    texts = np.concatenate([load_split(args.vectorized, name)[0] for name in ("train", "unlabeled")])
    vocabulary = load_vocabulary(args.vectorized)
    print(f"pretrain: {len(texts):,} training and unlabeled reviews, {params.pretrain_epochs} epochs of "
          f"{params.pretrain_objective}", flush=True)
    model, rows = pretrain(params, texts, len(vocabulary))
    figures = last_epoch(params.pretrain_objective, rows[-1])
    summary = {"objective": params.pretrain_objective, "epochs": params.pretrain_epochs, "reviews": int(len(texts)),
               **figures}
    save_body_weights(model, args.pretrained, summary)
    seconds = time.perf_counter() - start
    write_json(args.report, {**summary, "seconds": round(seconds, 1)})
    said = ", ".join(f"{key.replace('_', ' ')} {value:.4f}" for key, value in figures.items())
    print(f"pretrain: {said} in {seconds:.1f} s")


if __name__ == "__main__":
    cli.run("pretrain", main)
