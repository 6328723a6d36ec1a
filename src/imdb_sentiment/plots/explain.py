"""What did the model look at? Attention weights of chosen test reviews, for the plots stage."""

from __future__ import annotations

import keras
import numpy as np

from imdb_sentiment.features.text import PAD


def attention_maps(model, token_ids: np.ndarray) -> np.ndarray:
    """Attention weights (heads, steps, steps) of one review's real (unpadded) tokens."""
    tokens = np.asarray(token_ids)[None, : int(np.count_nonzero(token_ids != PAD))]
    attention = model.get_layer("attention")
    attention_input = keras.Model(model.input, _layer_before_attention(model).output)
    mask = model.get_layer("embedding").compute_mask(tokens)
    _, weights = attention(attention_input(tokens), mask=mask, return_attention_scores=True)
    return np.asarray(weights)[0]


def _layer_before_attention(model):
    """The word vectors the attention reads: word embeddings, plus pairs, plus positions."""
    names = [layer.name for layer in model.layers]
    return model.get_layer([n for n in ("embedding", "words_and_pairs", "positions") if n in names][-1])


def token_importance(weights: np.ndarray) -> np.ndarray:
    """Attention each token receives, averaged over heads and queries; sums to 1."""
    received = weights.mean(axis=(0, 1))
    return received / received.sum()


def pick_examples(x: np.ndarray, actual: np.ndarray, probability: np.ndarray,
                  min_tokens: int = 15, max_tokens: int = 60) -> dict[str, int]:
    """Row indices of three test reviews, short ones where there are any (a heatmap of 250
    words is unreadable): the most confident correct positive and correct negative, and the
    most confidently misclassified review."""
    lengths = np.count_nonzero(x != PAD, axis=1)
    short = (lengths >= min_tokens) & (lengths <= max_tokens)
    correct = (probability >= 0.5) == (actual == 1)
    confidence = np.abs(probability - 0.5)
    chosen = {}
    for name, wanted in (("correct_positive", correct & (actual == 1)),
                         ("correct_negative", correct & (actual == 0)),
                         ("misclassified", ~correct)):
        candidates = wanted & short if (wanted & short).any() else wanted & (lengths > 0)
        if candidates.any():
            chosen[name] = int(np.flatnonzero(candidates)[np.argmax(confidence[candidates])])
    return chosen
