"""`predict`: classify movie reviews with the model the train stage saved (its SavedModel).

    predict "This movie was wonderful." "Two hours I will never get back."
    predict --file reviews.txt --json        # one review a line
    cat reviews.txt | predict                # one review a line on stdin

Reviews are classified in batches of similar length, each padded only to its longest review,
so short reviews cost little however many there are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imdb_sentiment.model.batching import length_batches
from imdb_sentiment.cli import project_root, quiet_tensorflow
from imdb_sentiment.errors import PipelineError

MODEL = Path("data/model")  # inside the project's clone


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="predict",
        description="Classify movie reviews as positive or negative, with P(positive): the model's "
                    "probability that a review is positive (on negative ones too). Only a review's first "
                    "sequence_length tokens count (params.yaml; 800 by default); the rest is cut.",
    )
    parser.add_argument("reviews", nargs="*", metavar="REVIEW", help="review texts (default: read stdin)")
    parser.add_argument("--model", type=Path, help=f"model folder written by the train stage (default: {MODEL} "
                                                   "of the clone this is run in, from any folder inside it)")
    parser.add_argument("--file", type=Path, help="read reviews from this file, one a line")
    parser.add_argument("--json", action="store_true", help='print one JSON object a line: label, p_positive, review')
    return parser.parse_args(argv)


def _lines(data: bytes, source: str) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
        print(f"predict: warning: {source} is not valid UTF-8; undecodable bytes replaced", file=sys.stderr)
    return text.splitlines()


def read_reviews(args: argparse.Namespace) -> tuple[list[str], str]:
    """The reviews, and what one of them is called in a message ("review", "line")."""
    if args.reviews and args.file:
        raise PipelineError("give reviews as arguments or --file, not both")
    if args.reviews:
        return args.reviews, "review"
    if args.file:
        try:
            return _lines(args.file.read_bytes(), str(args.file)), "line"
        except OSError as exc:
            raise PipelineError(f"cannot read --file {args.file}: {exc.strerror}") from exc
    return _lines(sys.stdin.buffer.read(), "stdin"), "line"


def with_words(counts: list[int], item: str) -> list[int]:
    """The indices of the reviews that have words to classify (``counts``: each one's words). The
    others (blank, or punctuation only) are named in one warning; none at all is an error."""
    keep = [i for i, count in enumerate(counts) if count]
    skipped = [str(i + 1) for i, count in enumerate(counts) if not count]
    if not keep:
        raise PipelineError(f"no review to classify: {'every' if len(counts) > 1 else 'the'} {item} has no words "
                            f"once punctuation is removed")
    if skipped:
        print(f"predict: warning: not classified, no words once punctuation is removed: "
              f"{item}{'s' if len(skipped) > 1 else ''} {', '.join(skipped)}", file=sys.stderr)
    return keep


def model_folder(given: Path | None) -> Path:
    """``--model``, or the model of the project the current folder is in."""
    if given is not None:
        if not (given / "saved_model.pb").is_file() and (given / MODEL / "saved_model.pb").is_file():
            raise PipelineError(f"{given} is the project, not its model: pass --model {given / MODEL}, "
                                f"or nothing from inside the project")
        return given
    root = project_root(Path.cwd().resolve())
    if root is None:
        raise PipelineError(f"not inside the project's clone, so no default model: pass --model PATH "
                            f"(the {MODEL} folder the train stage wrote)")
    model = root / MODEL
    if not (model / "saved_model.pb").is_file():
        raise PipelineError(f"model {model} not found; run `dvc repro train` in {root} to train it "
                            f"(or `dvc pull`), or pass --model PATH")
    return model


def words_per_review(reviews: list[str]) -> list[int]:
    from imdb_sentiment.features.text import token_counts

    return [int(n) for n in token_counts(reviews)]


def classify(serving, reviews: list[str], lengths: list[int]) -> list[float]:
    """P(positive) of each review (``lengths``: its words), through the SavedModel's ``serve``."""
    import numpy as np
    import tensorflow as tf
    from tqdm import tqdm

    probabilities = np.empty(len(reviews), dtype=np.float32)
    batches = length_batches(lengths)
    with tqdm(total=len(reviews), unit="review", disable=None if len(batches) > 1 else True, leave=False) as bar:
        for batch in batches:
            out = serving.serve(tf.constant([reviews[i] for i in batch]))["probability"]
            probabilities[batch] = out.numpy()
            bar.update(len(batch))
    return [float(p) for p in probabilities]


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    try:
        reviews, item = read_reviews(args)
        if not any(review.strip() for review in reviews):
            raise PipelineError("no review to classify: pass REVIEW arguments, --file PATH, or lines on stdin")
        folder = model_folder(args.model)
        quiet_tensorflow()  # predict's stderr is for its own warnings
        lengths = words_per_review(reviews)
        keep = with_words(lengths, item)
        reviews = [reviews[i] for i in keep]
        from imdb_sentiment.model.saving import load_serving

        probabilities = classify(load_serving(folder), reviews, [lengths[i] for i in keep])
    except PipelineError as exc:
        print(f"predict: error: {exc}", file=sys.stderr)
        sys.exit(1)
    for review, probability in zip(reviews, probabilities):
        label = "positive" if probability >= 0.5 else "negative"
        if args.json:
            print(json.dumps({"label": label, "p_positive": round(probability, 6), "review": review}))
        else:
            print(f"{label}\tP(positive)={probability:.4f}\t{review}")


if __name__ == "__main__":
    main()
