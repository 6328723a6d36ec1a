"""`predict`: classify movie reviews with the export model written by the train stage.

    predict "This movie was wonderful." "Two hours I will never get back."
    predict --file reviews.txt --json        # one review a line
    cat reviews.txt | predict                # one review a line on stdin
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from imdb_sentiment.cli import quiet_tensorflow
from imdb_sentiment.errors import PipelineError

DEFAULT_MODEL = Path("data/model/export.keras")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="predict", description="Classify movie reviews as positive or negative.",
    )
    parser.add_argument("reviews", nargs="*", metavar="REVIEW", help="review texts (default: read stdin)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"export model (default: {DEFAULT_MODEL})")
    parser.add_argument("--file", type=Path, help="read reviews from this file, one a line")
    parser.add_argument("--json", action="store_true", help="print one JSON object a line")
    return parser.parse_args(argv)


def _lines(data: bytes, source: str) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
        print(f"predict: warning: {source} is not valid UTF-8; undecodable bytes replaced", file=sys.stderr)
    return [line for line in text.splitlines() if line.strip()]


def read_reviews(args: argparse.Namespace) -> list[str]:
    if args.reviews and args.file:
        raise PipelineError("give reviews as arguments or --file, not both")
    if args.reviews:
        reviews = args.reviews
    elif args.file:
        try:
            reviews = _lines(args.file.read_bytes(), str(args.file))
        except OSError as exc:
            raise PipelineError(f"cannot read --file {args.file}: {exc.strerror}") from exc
    else:
        reviews = _lines(sys.stdin.buffer.read(), "stdin")
    if not reviews:
        raise PipelineError("no review to classify: pass REVIEW arguments, --file PATH, or lines on stdin")
    for number, review in enumerate(reviews, 1):
        if not review.strip():
            raise PipelineError(f"review {number} is empty")
    return reviews


def load_export_model(path: Path):
    if not path.is_file():
        raise PipelineError(f"model {path} not found; run `dvc repro` to train it, or pass --model PATH")
    import keras

    import imdb_sentiment.custom_objects  # noqa: F401

    try:
        model = keras.saving.load_model(path)
    except Exception as exc:  # Keras raises many types for a file that is not a model
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"{path} is not a valid export model ({first_line})") from exc
    if len(model.inputs) != 1 or model.inputs[0].dtype != "string":
        raise PipelineError(f"{path} takes token ids, not text; use the export model ({DEFAULT_MODEL.name})")
    return model


def words_per_review(reviews: list[str]) -> list[int]:
    from imdb_sentiment.text import token_counts

    return [int(n) for n in token_counts(reviews)]


def classify(model, reviews: list[str]) -> list[float]:
    import numpy as np
    import tensorflow as tf

    for number, count in enumerate(words_per_review(reviews), 1):
        if count == 0:
            raise PipelineError(f"review {number} has no words once punctuation is removed")
    probabilities = model.predict(tf.constant(reviews)[:, None], batch_size=256, verbose=0)
    return [float(p) for p in np.ravel(probabilities)]


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    quiet_tensorflow()
    # TensorFlow 2.21 announces its oneDNN kernels on stderr whatever TF_CPP_MIN_LOG_LEVEL says;
    # predict's stderr is for its own warnings, and classifying a few reviews gains nothing from them.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        reviews = read_reviews(args)
        model = load_export_model(args.model)
        probabilities = classify(model, reviews)
    except PipelineError as exc:
        print(f"predict: error: {exc}", file=sys.stderr)
        sys.exit(1)
    for review, probability in zip(reviews, probabilities):
        label = "positive" if probability >= 0.5 else "negative"
        if args.json:
            print(json.dumps({"label": label, "probability": round(probability, 6), "review": review}))
        else:
            print(f"{label}\t{probability:.4f}\t{review}")


if __name__ == "__main__":
    main()
