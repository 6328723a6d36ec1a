"""Why a learned query over word vectors decides no better than a plain average: a check on a
trained model.

With one head, no n-gram branch and vectors that depend on the word alone (no word pairs,
positions or encoder blocks), the classifier's logit for a review of words w_1 ... w_n is

    logit = sum_i e^g(w_i) L(w_i) / sum_i e^g(w_i)

where L(w) is its logit for the one-word review "w" and g(w) the query's score of w. The
softmax weights sum to 1, so every bias after them (the value projection's, the output
layer's) comes inside the average: the logit is an attention-weighted average of what the model
says of each word alone. Its sign is the sign of the plain average of u(w) = e^g(w) L(w) over
the review's words, one number a word, which an average-pooled model's word vectors can hold.
So on such vectors the two poolings decide by rules of the same family; what can tell their
accuracy apart is how training reaches a rule, not a rule the attention can express and the
average cannot. Word pairs keep that argument (u becomes a number a pair) and break this check,
which reads one-word reviews; vectors computed from a word's neighbours (encoder blocks, a
convolution) break both, and so do several heads that weigh the words differently, a layer
after the pooling that is not linear, and a query that depends on the review.

    python benchmarks/attention_as_average.py [data/model] [data/vectorized] [--reviews N]

Prints the largest difference between the model's logits and the weighted average of its
one-word logits, how often the plain average of u decides as the model does, and the accuracy
on the validation reviews of the model, of that average, and of the one-word logits weighed
evenly (what the query's weighting adds to them).
"""

from __future__ import annotations

import warnings

from imdb_sentiment import cli

cli.quiet_tensorflow()

import numpy as np  # noqa: E402

from imdb_sentiment.features.text import PAD  # noqa: E402
from imdb_sentiment.features.vectorized import load_split  # noqa: E402
from imdb_sentiment.model.classifier import predict_logits  # noqa: E402
from imdb_sentiment.model.saving import load_classifier  # noqa: E402

BEYOND_ONE_WORD = {"bigrams": "word pairs (bigram_buckets)", "regions": "regions (region_filters)",
                   "positions": "positions (position_embedding)", "encoder_1": "encoder blocks (encoder_blocks)",
                   "naive_bayes": "n-gram branch (nb_ngrams)"}


def why_not_word_level(model) -> str:
    """'' where the model's logit is an attention-weighted average of its one-word logits, else why not."""
    names = {layer.name for layer in model.layers}
    if "attention" not in names:
        return "the model has no pooling attention (pooling: average)"
    attention = model.get_layer("attention")
    if not attention.learned_query:
        return "its pooling is not a learned query (pooling: query)"
    if attention.num_heads != 1:
        return f"it has {attention.num_heads} heads, each with weights of its own (num_heads: 1)"
    found = [what for name, what in BEYOND_ONE_WORD.items() if name in names]
    if found:
        return f"its {' and '.join(found)} give the logit more than each word alone"
    return ""


def word_tables(model) -> tuple[np.ndarray, np.ndarray]:
    """(L, g) over the token ids 0 ... vocabulary - 1: each word's one-word logit and the
    layer's own score of it under the query (``query_scores``, before the softmax; the first
    head's, where there are more); nan at the padding id."""
    table = model.get_layer("embedding").embeddings
    ids = np.arange(1, table.shape[0], dtype=np.int32)
    with warnings.catch_warnings():  # Keras warns of a softmax over one key, which is what a one-word review is
        warnings.simplefilter("ignore", UserWarning)
        one_word = predict_logits(model, ids[:, None])  # batched under its token budget
    # The words as one sequence: each score depends on its own word alone.
    score = np.asarray(model.get_layer("attention").query_scores(np.asarray(table)[ids][None]))[0, 0]
    nan = np.array([np.nan])
    return np.concatenate([nan, one_word.astype(np.float64)]), np.concatenate([nan, score.astype(np.float64)])


def _row_weights(x: np.ndarray, score: np.ndarray) -> np.ndarray:
    """e^g(w) at each real word of each row, 0 at padding, scaled by the row's largest (which
    changes no row's ratio or sign, and keeps a row of low scores from underflowing)."""
    real = x != PAD
    scores = np.where(real, score[x], -np.inf)
    return np.where(real, np.exp(scores - scores.max(axis=1, keepdims=True)), 0.0)


def weighted_average_logits(x: np.ndarray, one_word: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each row's sum of e^g(w) L(w) over its real words, divided by its sum of e^g(w)."""
    weight = _row_weights(x, score)
    return (weight * np.where(x != PAD, one_word[x], 0.0)).sum(axis=1) / weight.sum(axis=1)


def average_decides_positive(x: np.ndarray, one_word: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Whether the plain average of u(w) = e^g(w) L(w) over each row's real words is positive:
    the sign of the weighted average, whose denominator (the sum of e^g(w)) is positive."""
    return weighted_average_logits(x, one_word, score) > 0


def report(model, x: np.ndarray, y: np.ndarray) -> list[str]:
    one_word, score = word_tables(model)
    logits = predict_logits(model, x)
    rebuilt = weighted_average_logits(x, one_word, score)
    average = rebuilt > 0  # average_decides_positive, without computing the weighted average again
    evenly = weighted_average_logits(x, one_word, np.zeros_like(score))  # what the query's weighting adds
    return [
        f"reviews: {len(x)}",
        f"largest |logit - weighted average of one-word logits|: {np.max(np.abs(logits - rebuilt)):.2e} "
        f"(logits {np.min(logits):.2f} to {np.max(logits):.2f})",
        f"plain average of u decides as the model: {np.mean(average == (logits > 0)):.4f}",
        f"accuracy: model {np.mean((logits > 0) == (y == 1)):.4f}, plain average of u {np.mean(average == (y == 1)):.4f}, "
        f"the one-word logits weighed evenly {np.mean((evenly > 0) == (y == 1)):.4f}",
    ]


def main() -> None:
    parser = cli.trained_model_parser(__doc__)
    parser.add_argument("--reviews", type=int, default=0, help="the first N validation reviews (0: all)")
    args = parser.parse_args()
    model = load_classifier(args.model)
    reason = why_not_word_level(model)
    if reason:
        raise SystemExit(f"attention_as_average: no identity to check: {reason}")
    x, y = load_split(args.vectorized, "validation")[:2]
    if args.reviews:
        x, y = x[: args.reviews], y[: args.reviews]
    for line in report(model, x, y):
        print(line)


if __name__ == "__main__":
    main()
