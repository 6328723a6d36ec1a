"""A challenge set of templated one-line reviews, in the manner of CheckList (Ribeiro et al.
2020): accuracy per category of sentence, for the model and for each of its branches.

    python benchmarks/challenge.py [data/model] [data/vectorized] [--failures N]

Categories (each case's label is the sentence's sentiment, by construction):

- ``vocabulary``: a plain verdict, "The movie was wonderful." / "The acting is dull."
- ``negated positive``: "I did not love it.", "The movie was not good." (negative)
- ``negated negative, then a verdict``: "The plot was not boring at all. I loved it." (positive),
  and the mirror "The plot was not great at all. I hated it." (negative)
- ``contrast with but``: "The acting was terrible, but the movie is great." (positive), and
  the mirror (negative): the clause after "but" decides.

A bag of words reads the last three no better than chance by design: each holds as many
positive words as negative ones, or the negation alone decides. For a model with the n-gram
branch, "n-gram branch" is that branch's logit alone and "the rest" the model's logit without it
(the attention branch and the output bias).
"""

from __future__ import annotations

import itertools

from imdb_sentiment import cli

cli.quiet_tensorflow()

import numpy as np  # noqa: E402

from imdb_sentiment.features.text import make_vectorizer, vectorize  # noqa: E402
from imdb_sentiment.features.vectorized import load_standardization, load_vocabulary  # noqa: E402
from imdb_sentiment.model.classifier import predict_logits  # noqa: E402
from imdb_sentiment.model.saving import load_classifier  # noqa: E402

POSITIVE = ("good", "great", "wonderful", "excellent", "brilliant", "enjoyable", "superb", "fantastic")
NEGATIVE = ("bad", "terrible", "awful", "boring", "dull", "horrible", "disappointing", "poor")
LIKE = {"love": "loved", "enjoy": "enjoyed", "like": "liked", "adore": "adored"}  # verb: past tense
DISLIKED = ("hated", "disliked", "loathed", "despised")
ASPECTS = ("acting", "plot", "script", "music", "direction", "ending")
THINGS = ("movie", "film")


def cases() -> list[tuple[str, str, int]]:
    """(category, text, label) of every case, label 1 for positive."""
    out = []
    for thing, word in itertools.product(THINGS, POSITIVE):
        out.append(("vocabulary", f"The {thing} was {word}.", 1))
        out.append(("negated positive", f"The {thing} was not {word}.", 0))
    for thing, word in itertools.product(THINGS, NEGATIVE):
        out.append(("vocabulary", f"The {thing} was {word}.", 0))
    for like, thing in itertools.product(LIKE, THINGS):
        out.append(("negated positive", f"I did not {like} this {thing}.", 0))
    for aspect, (good, bad), (liked, disliked) in itertools.product(ASPECTS, zip(POSITIVE, NEGATIVE),
                                                                    zip(LIKE.values(), DISLIKED)):
        out.append(("negated negative, then a verdict", f"The {aspect} was not {bad} at all. I {liked} it.", 1))
        out.append(("negated negative, then a verdict", f"The {aspect} was not {good} at all. I {disliked} it.", 0))
    for aspect, (good, bad), thing in itertools.product(ASPECTS, zip(POSITIVE, NEGATIVE), THINGS):
        out.append(("contrast with but", f"The {aspect} was {bad}, but the {thing} is {good}.", 1))
        out.append(("contrast with but", f"The {aspect} was {good}, but the {thing} is {bad}.", 0))
    return out


def branch_logits(model, x: np.ndarray) -> np.ndarray | None:
    """The n-gram branch's logit of each row, or None for a model without it."""
    names = [layer.name for layer in model.layers]
    return np.asarray(model.get_layer("naive_bayes")(x))[:, 0] if "naive_bayes" in names else None


def accuracy_table(model, vocabulary: list[str], standardize, failures: int = 0) -> list[str]:
    """The printed lines: one a category (and "all"), its number of cases and accuracies."""
    categories, texts, labels = zip(*cases())
    labels, categories = np.asarray(labels), np.asarray(categories)
    x = vectorize(make_vectorizer(len(vocabulary), 64, vocabulary=vocabulary, standardize=standardize), list(texts))
    logits = predict_logits(model, x)
    ngrams = branch_logits(model, x)
    columns = {"model": logits} | ({"n-gram branch": ngrams, "the rest": logits - ngrams} if ngrams is not None else {})
    lines = [f"{'category':<36}{'cases':>6}" + "".join(f"{name:>15}" for name in columns)]
    for category in (*dict.fromkeys(categories), "all"):
        rows = np.ones(len(labels), bool) if category == "all" else categories == category
        lines.append(f"{category:<36}{rows.sum():>6}" + "".join(
            f"{np.mean((values[rows] >= 0) == labels[rows]):>15.3f}" for values in columns.values()))
    wrong = np.flatnonzero((logits >= 0) != labels)[:failures]
    lines += [f"  wrong: {texts[i]} (P(positive) {1 / (1 + np.exp(-logits[i])):.2f})" for i in wrong]
    return lines


def main() -> None:
    parser = cli.trained_model_parser(__doc__)
    parser.add_argument("--failures", type=int, default=0, help="also print the first N cases the model gets wrong")
    args = parser.parse_args()
    lines = accuracy_table(load_classifier(args.model), load_vocabulary(args.vectorized),
                           load_standardization(args.vectorized), args.failures)
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
