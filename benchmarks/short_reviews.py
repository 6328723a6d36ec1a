"""How the model reads short reviews: accuracy on the openings of the validation reviews.

IMDB reviews run to 230 words on average; `predict` is often given one line. This prints the
trained model's validation accuracy on each review's first N tokens, and, for a model with the
n-gram branch, the accuracy of each branch's logit alone (the other's contribution taken out):

    python benchmarks/short_reviews.py [data/model] [data/vectorized]
"""

from __future__ import annotations

from imdb_sentiment import cli

cli.quiet_tensorflow()

import numpy as np  # noqa: E402

from imdb_sentiment.model.classifier import predict_logits  # noqa: E402
from imdb_sentiment.model.saving import load_classifier  # noqa: E402
from imdb_sentiment.features.vectorized import load_split  # noqa: E402

OPENINGS = (5, 10, 20, 50)


def branch_logits(branch, x: np.ndarray, chunk: int = 500) -> np.ndarray:
    return np.concatenate([np.asarray(branch(x[i:i + chunk]))[:, 0] for i in range(0, len(x), chunk)])


def main() -> None:
    parser = cli.trained_model_parser(__doc__)
    args = parser.parse_args()
    model = load_classifier(args.model)
    x, y, _ = load_split(args.vectorized, "validation")
    ngrams = next((layer for layer in model.layers if layer.name == "naive_bayes"), None)
    print(f"{'tokens kept':<14}{'model':>8}" + (f"{'n-gram branch':>16}{'the rest':>10}" if ngrams else ""))
    for width in (*OPENINGS, x.shape[1]):
        opening = np.ascontiguousarray(x[:, :width])
        logits = predict_logits(model, opening)
        row = f"{'first ' + str(width):<14}{np.mean((logits >= 0) == y):>8.4f}"
        if ngrams is not None:
            branch = branch_logits(ngrams, opening)
            row += f"{np.mean((branch >= 0) == y):>16.4f}{np.mean((logits - branch >= 0) == y):>10.4f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
