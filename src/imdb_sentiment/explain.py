"""What did the model look at? Attention weights of chosen test reviews, for the plots stage."""

from __future__ import annotations

import numpy as np

from imdb_sentiment.text import PAD


def attention_maps(model, token_ids: np.ndarray) -> np.ndarray:
    """Attention weights (heads, steps, steps) of one review's real (unpadded) tokens."""
    tokens = np.asarray(token_ids)[None, : int(np.count_nonzero(token_ids != PAD))]
    embedding, attention = model.get_layer("embedding"), model.get_layer("attention")
    embedded = embedding(tokens)
    _, weights = attention(embedded, mask=embedding.compute_mask(tokens), return_attention_scores=True)
    return np.asarray(weights)[0]


def token_importance(weights: np.ndarray) -> np.ndarray:
    """Attention each token receives, averaged over heads and queries; sums to 1."""
    received = weights.mean(axis=(0, 1))
    return received / received.sum()


def pick_examples(x: np.ndarray, actual: np.ndarray, probability: np.ndarray,
                  min_tokens: int = 15, max_tokens: int = 60) -> dict[str, int]:
    """Row indices of three short test reviews: the most confident correct positive and
    negative, and the most confidently misclassified one (any length if none is short)."""
    lengths = np.count_nonzero(x != PAD, axis=1)
    short = (lengths >= min_tokens) & (lengths <= max_tokens)
    predicted = (probability >= 0.5).astype(int)
    confidence = np.abs(probability - 0.5)
    chosen = {}
    for name, candidates in (
        ("correct_positive", short & (actual == 1) & (predicted == 1)),
        ("correct_negative", short & (actual == 0) & (predicted == 0)),
        ("misclassified", short & (actual != predicted)),
    ):
        if not candidates.any():
            candidates = (lengths > 0) & ((actual != predicted) if name == "misclassified" else
                                          (actual == predicted) & (actual == int(name.endswith("positive"))))
        if candidates.any():
            chosen[name] = int(np.flatnonzero(candidates)[np.argmax(confidence[candidates])])
    return chosen
