"""What did the model look at? Attention weights of chosen test reviews, and each word's signed
part of the logit, for the plots stage.

After the pooling the classifier is linear, so a review's logit splits exactly over its words:

- the attention branch: ``pooled = (sum over heads h and words k of a[h, k] v[h, k]) W_o + b_o``
  and ``logit = pooled . w + b``, with ``a[h, k]`` the attention word k receives in head h
  averaged over the queries and ``v[h, k]`` its value vector; so word k gives
  ``sum over h of a[h, k] (v[h, k] . (W_o w)[h])``, and the biases give the rest. With
  ``pooling: average`` word k gives ``x[k] . w / n``.
- the n-gram branch: each distinct n-gram gives ``scale x ratio x weight / sqrt(count)``,
  shared equally by the words it spans (at its first occurrence).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from imdb_sentiment.features.text import PAD
from imdb_sentiment.model.body import BODY_OUTPUT


def attention_maps(model, token_ids: np.ndarray) -> np.ndarray:
    """Attention weights (heads, steps, steps) of one review's real (unpadded) tokens."""
    tokens = np.asarray(token_ids)[None, : int(np.count_nonzero(token_ids != PAD))]
    return _weights(model, tokens, _vectors(model, tokens))


def _vectors(model, tokens: np.ndarray) -> np.ndarray:
    """(1, steps, features): the word vectors the attention reads: word embeddings, plus pairs, plus
    positions, through the encoder blocks (then a position's vector holds its context, and its part
    of the logit is that position's, context included)."""
    return np.asarray(keras.Model(model.input, model.get_layer(BODY_OUTPUT).output)(tokens))


def _weights(model, tokens: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    mask = model.get_layer("embedding").compute_mask(tokens)
    _, weights = model.get_layer("attention")(vectors, mask=mask, return_attention_scores=True)
    return np.asarray(weights)[0]


def token_importance(weights: np.ndarray) -> np.ndarray:
    """Attention each token receives, averaged over heads and queries; sums to 1."""
    received = weights.mean(axis=(0, 1))
    return received / received.sum()


EXAMPLES = ("correct_positive", "correct_negative", "misclassified")  # the reviews the plots stage draws


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
    for name, wanted in zip(EXAMPLES, (correct & (actual == 1), correct & (actual == 0), ~correct)):
        candidates = wanted & short if (wanted & short).any() else wanted & (lengths > 0)
        if candidates.any():
            chosen[name] = int(np.flatnonzero(candidates)[np.argmax(confidence[candidates])])
    return chosen


@dataclass
class Contributions:
    """One review's logit, split over its words (each array has one entry a word)."""

    heads: np.ndarray | None  # (heads, words): the attention branch's share, head by head
    weights: np.ndarray | None  # (heads, words, words): the attention weights it came from
    attention: np.ndarray  # (words,): the attention branch (or the plain average), heads summed
    ngrams: np.ndarray | None  # (words,): the n-gram branch, None without it
    bias: float  # what no word gives: the output layer's and the attention's biases

    @property
    def logit(self) -> float:
        return float(self.attention.sum() + (0.0 if self.ngrams is None else self.ngrams.sum()) + self.bias)


def logit_contributions(model, token_ids: np.ndarray) -> Contributions:
    """Each real token's exact signed part of the classifier's logit (see the module's docstring)."""
    tokens = np.asarray(token_ids)[None, : int(np.count_nonzero(token_ids != PAD))]
    names = [layer.name for layer in model.layers]
    vectors = _vectors(model, tokens)[0]
    logit = model.get_layer("logit")
    w, b = np.asarray(logit.kernel)[:, 0], float(np.asarray(logit.bias)[0])
    heads = weights = None
    if "attention" in names:
        layer = model.get_layer("attention")
        weights = _weights(model, tokens, vectors[None])  # (heads, queries, keys)
        received = weights.mean(axis=1)  # (heads, keys): the pooling averages over the queries
        values = np.asarray(layer.value_dense(vectors[None]))[0].reshape(len(vectors), layer.num_heads, layer.depth)
        direction = (np.asarray(layer.output_dense.kernel) @ w).reshape(layer.num_heads, layer.depth)
        heads = received * np.einsum("khd,hd->hk", values, direction)
        attention = heads.sum(axis=0)
        bias = b + float(np.asarray(layer.output_dense.bias) @ w)
    else:  # pooling: average
        attention, bias = vectors @ w / len(vectors), b
    ngrams = _ngram_contributions(model.get_layer("naive_bayes"), tokens) if "naive_bayes" in names else None
    return Contributions(heads=heads, weights=weights, attention=attention, ngrams=ngrams, bias=bias)


def _ngram_contributions(layer, tokens: np.ndarray) -> np.ndarray:
    steps = tokens.shape[1]
    ratios, table = np.asarray(layer.ratios)[:, 0], np.asarray(layer.table)[:, 0]
    starts = [np.asarray(ids)[0] for ids in layer.ngram_ids_by_start(tokens)]
    share, seen = np.zeros(steps), set()
    for n, ids in enumerate(starts, 1):
        for start, bucket in enumerate(ids):
            if bucket >= 0 and bucket not in seen:  # each distinct n-gram counts once
                seen.add(bucket)
                share[start:start + n] += ratios[bucket] * table[bucket] / n
    return share * layer.scale / np.sqrt(max(len(seen), 1))
