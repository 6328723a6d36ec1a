"""DVC stage `pretrain`: with ``pretrain_epochs`` > 0, teach the classifier's embeddings and encoder
blocks to fill in hidden words of the training and unlabeled reviews (never validation or test;
the vectorize stage has already left out the reviews that are also test reviews), and save their
weights for the train stage to start from. With ``pretrain_epochs`` 0 the output folder holds no
weights and the stage returns at once, without TensorFlow: the train stage then starts from
random weights."""

import argparse
import time
from pathlib import Path

from imdb_sentiment import cli
from imdb_sentiment.outputs import atomic_path, write_json
from imdb_sentiment.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vectorized", type=Path, help="folder written by the vectorize stage")
    parser.add_argument("pretrained", type=Path, help="folder for the pretrained weights (none when off)")
    parser.add_argument("report", type=Path, help="JSON file for the epochs' loss and accuracy on hidden words")
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
    print(f"pretrain: {len(texts):,} training and unlabeled reviews, {params.pretrain_epochs} epochs", flush=True)
    model, rows = pretrain(params, texts, len(vocabulary))
    summary = {"epochs": params.pretrain_epochs, "reviews": int(len(texts)),
               "hidden_word_loss": round(rows[-1]["loss"], 6), "hidden_word_accuracy": round(rows[-1]["accuracy"], 6)}
    save_body_weights(model, args.pretrained, summary)
    seconds = time.perf_counter() - start
    write_json(args.report, {**summary, "seconds": round(seconds, 1)})
    print(f"pretrain: hidden-word accuracy {rows[-1]['accuracy']:.4f}, loss {rows[-1]['loss']:.4f} in {seconds:.1f} s")


if __name__ == "__main__":
    cli.run("pretrain", main)
