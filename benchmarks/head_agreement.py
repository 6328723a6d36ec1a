"""How the heads of the pooling attention differ: for validation reviews, the attention each word
receives in each head (for ``pooling: attention`` averaged over the queries, as the pooling
averages them; for ``pooling: query`` the learned query's weights), compared between heads.

    python benchmarks/head_agreement.py [data/model] [data/vectorized] [--reviews 300]

Per head: how spread its attention is (the effective number of words it reads, the exponential of
the entropy of the attention its words receive, against the review's real words) and the share
of it on the review's single most-attended word. Per pair of heads: the Pearson correlation of
their received attention over a review's words, and the Jensen-Shannon divergence (in bits, 0
for heads that attend alike, 1 for heads that attend disjoint words). Each figure is the mean
over the reviews. Two heads with correlation near 1 and divergence near 0 are copies: the
pooling reads the same weighted bag of words twice.
"""

from __future__ import annotations

import itertools

from imdb_sentiment import cli

cli.quiet_tensorflow()

import numpy as np  # noqa: E402

from imdb_sentiment.features.text import PAD  # noqa: E402
from imdb_sentiment.features.vectorized import load_split  # noqa: E402
from imdb_sentiment.model.saving import load_classifier  # noqa: E402
from imdb_sentiment.plots.explain import attention_maps  # noqa: E402


def received_by_head(model, token_ids: np.ndarray) -> np.ndarray:
    """(heads, words): the attention each real word receives in each head, averaged over the
    queries; each row sums to 1."""
    received = attention_maps(model, token_ids).mean(axis=1).astype(np.float64)
    return received / received.sum(axis=1, keepdims=True)


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    return -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def jensen_shannon_bits(p: np.ndarray, q: np.ndarray) -> float:
    middle = (p + q) / 2
    return float(_entropy_bits(middle) - (_entropy_bits(p) + _entropy_bits(q)) / 2)


def _correlation(p: np.ndarray, q: np.ndarray) -> float:
    """Pearson's; for a head that weighs every word alike (no variance) 1 if the other does too."""
    if p.std() == 0 or q.std() == 0:
        return float(np.allclose(p, q))
    return float(np.corrcoef(p, q)[0, 1])


def head_statistics(model, reviews: np.ndarray) -> dict:
    """Means over ``reviews`` (token id rows) of each head's spread and peak, and of each pair's
    correlation and divergence."""
    spread, peak, pairs = [], [], {}
    for row in reviews:
        received = received_by_head(model, row)
        spread.append(np.exp2(_entropy_bits(received)))
        peak.append(received.max(axis=1))
        for a, b in itertools.combinations(range(len(received)), 2):
            correlation = _correlation(received[a], received[b])
            pairs.setdefault((a, b), []).append((correlation, jensen_shannon_bits(received[a], received[b])))
    words = float(np.mean([np.count_nonzero(row != PAD) for row in reviews]))
    return {"words": words, "spread": np.mean(spread, axis=0), "peak": np.mean(peak, axis=0),
            "pairs": {pair: np.mean(values, axis=0) for pair, values in pairs.items()}}


def report(stats: dict) -> list[str]:
    lines = [f"reviews of {stats['words']:.0f} words on average",
             f"{'head':<6}{'words read':>12}{'top word':>10}"]
    for head, (spread, peak) in enumerate(zip(stats["spread"], stats["peak"]), start=1):
        lines.append(f"{head:<6}{spread:>12.1f}{peak:>10.3f}")
    if stats["pairs"]:
        lines.append(f"{'pair':<8}{'correlation':>12}{'JS bits':>9}")
        for (a, b), (correlation, divergence) in stats["pairs"].items():
            lines.append(f"{a + 1}-{b + 1:<6}{correlation:>12.3f}{divergence:>9.3f}")
        correlations, divergences = zip(*stats["pairs"].values())
        lines.append(f"{'mean':<8}{np.mean(correlations):>12.3f}{np.mean(divergences):>9.3f}")
    return lines


def main() -> None:
    parser = cli.trained_model_parser(__doc__)
    parser.add_argument("--reviews", type=int, default=300, help="the first N validation reviews")
    args = parser.parse_args()
    model = load_classifier(args.model)
    if "attention" not in [layer.name for layer in model.layers]:
        raise SystemExit("head_agreement: the model has no pooling attention (pooling: average)")
    x_val = load_split(args.vectorized, "validation")[0][: args.reviews]
    for line in report(head_statistics(model, x_val)):
        print(line)


if __name__ == "__main__":
    main()
