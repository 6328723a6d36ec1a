"""A linear Naive-Bayes branch over a review's word n-grams, summed with the attention's logit.

NBSVM (Wang and Manning 2012) is the strongest purely supervised bag-of-n-grams model on IMDB:
a linear classifier over which uni-, bi- and trigrams a review contains, each feature scaled by
its Naive-Bayes log-count ratio, how much more often positive than negative training reviews
contain it. :class:`NaiveBayesNgrams` is that classifier as a Keras layer, so that it trains
with the attention branch in one model and serves inside the same SavedModel:

- each n-gram of token ids is hashed into one of ``buckets`` rows (no n-gram vocabulary to ship);
  a review's n-grams count once each, however often they occur (binarized features);
- the ratios are fixed: :func:`naive_bayes_ratios` counts them on the labelled training reviews
  (:func:`ngram_counts`, which add up, so that a fit on more reviews counts only the new ones)
  before training and :meth:`NaiveBayesNgrams.set_ratios` stores them in the layer;
- the logit is the sum, over the review's distinct n-grams, of ``scale x ratio x weight``,
  divided by the square root of their number: a logistic regression on ratio-scaled features,
  as NBSVM's, with each review's feature vector of unit length (as a tf-idf classifier's), learned
  from weights of 0. Without that division a one-line review's few n-grams would sum to a logit
  near 0, and the attention branch, whose average does not shrink with length, would decide
  short reviews alone. Under Adam, whose steps do not depend on a gradient's size,
  ``scale x ratio`` is how far a step moves an n-gram's contribution: n-grams that tell the
  classes apart move first, the many that do not barely move, and ``scale`` sets how fast this
  branch learns beside the attention.
- with ``folds`` the ratios are cross-fitted in training: ratios counted on the very reviews the
  model trains on tell each training review's label from n-grams seen only in it (a name, a
  typo), so the branch fits the training labels within an epoch and leaves the other branch
  little to learn from. Each review falls in one of ``folds`` folds by a hash of its tokens
  (:meth:`NaiveBayesNgrams.fold_of`), and in training it meets ratios counted without its fold,
  as stacking does (Wolpert 1992); in inference, the ratios of all reviews. The fold ratios serve
  training only: the saved classifier has none (``folds`` 0 in its config).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from imdb_sentiment.model.batching import length_batches
from imdb_sentiment.model.embeddings import lookup_rows
from imdb_sentiment.features.text import PAD

_MULTIPLIER = 1_000_003  # a prime: (a, b) and (b, a) hash apart
_ABSENT = -1  # the id of an n-gram that overlaps padding


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class NaiveBayesNgrams(keras.layers.Layer):
    """Token ids ``(batch, steps)`` -> one logit a review ``(batch, 1)``, float32.

    Args:
        buckets: rows of the hashed n-gram tables.
        max_n: n-grams of 1 up to ``max_n`` words.
        scale: multiplies every ratio (the branch's pace of learning under Adam).
        folds: 0: the same ratios in training and inference; >= 2: in training, each review's
            ratios counted without its fold (:func:`cross_fitted_ratios`).
    """

    def __init__(self, buckets: int, max_n: int = 3, scale: float = 1.0, folds: int = 0, **kwargs):
        super().__init__(dtype=kwargs.pop("dtype", "float32"), **kwargs)
        if buckets < 1 or max_n < 1:
            raise ValueError(f"buckets and max_n must be at least 1, got {buckets} and {max_n}")
        if folds == 1 or folds < 0:
            raise ValueError(f"folds must be 0 (off) or at least 2, got {folds}")
        self.buckets = buckets
        self.max_n = max_n
        self.scale = scale
        self.folds = folds

    def build(self, input_shape):
        self.ratios = self.add_weight(shape=(self.buckets, 1), initializer="zeros", trainable=False,
                                      name="ratios")
        if self.folds:
            self.fold_ratios = self.add_weight(shape=(self.buckets, self.folds), initializer="zeros",
                                               trainable=False, name="fold_ratios")
        self.table = self.add_weight(shape=(self.buckets, 1), initializer="zeros", name="weights")
        self.built = True

    def fold_of(self, tokens):
        """(batch, steps) token ids -> (batch,) each review's fold, from its tokens and their
        positions (so the same in a batch cut to its longest review and in a padded one)."""
        tokens = ops.cast(tokens, "int64")
        positions = ops.arange(1, ops.shape(tokens)[1] + 1, dtype="int64")[None, :]
        return ops.sum(tokens * positions, axis=1) % max(self.folds, 1)

    def ngram_ids_by_start(self, tokens) -> list:
        """(batch, steps) token ids -> for n = 1 .. max_n, (batch, steps) bucket ids of the
        n-gram that starts at each step, ``_ABSENT`` where it would overlap padding."""
        tokens = ops.cast(tokens, "int64")
        steps = ops.shape(tokens)[1]
        ids, present = tokens % self.buckets, tokens != 0
        orders = [ops.where(present, ids, _ABSENT)]
        for n in range(2, self.max_n + 1):
            following = ops.pad(tokens[:, n - 1:], [[0, 0], [0, n - 1]])[:, :steps]
            ids = (ids * _MULTIPLIER + following + n) % self.buckets  # + n: "a" and "a b" apart
            present = present & (following != 0)
            orders.append(ops.where(present, ids, _ABSENT))
        return orders

    def ngram_ids(self, tokens):
        """(batch, steps) token ids -> (batch, max_n x steps) bucket ids, each distinct n-gram of
        a review once and every other slot ``_ABSENT``."""
        ids = ops.sort(ops.concatenate(self.ngram_ids_by_start(tokens), axis=1), axis=1)
        repeated = ops.pad(ids[:, 1:] == ids[:, :-1], [[0, 0], [1, 0]])
        return ops.where(repeated, _ABSENT, ids)

    def set_ratios(self, ratios: np.ndarray, fold_ratios: np.ndarray | None = None) -> None:
        """``ratios`` (buckets,): for inference; ``fold_ratios`` (folds, buckets), with ``folds``:
        for training, row k counted without fold k's reviews."""
        self.ratios.assign(np.asarray(ratios, dtype="float32").reshape(self.buckets, 1))
        if self.folds:
            if fold_ratios is None:
                raise ValueError(f"a layer with {self.folds} folds needs fold_ratios too")
            self.fold_ratios.assign(np.asarray(fold_ratios, dtype="float32").T)

    def call(self, tokens, training=None):
        ids = self.ngram_ids(tokens)
        present = ops.cast(ids != _ABSENT, "float32")[:, :, None]
        ids = ops.maximum(ids, 0)
        if training and self.folds:  # each review meets the ratios counted without its fold
            fold = ops.one_hot(self.fold_of(tokens), self.folds, dtype="float32")[:, None, :]
            ratios = ops.sum(lookup_rows(self.fold_ratios, ids) * fold, axis=2, keepdims=True)
        else:
            ratios = lookup_rows(self.ratios, ids)
        contribution = ratios * lookup_rows(self.table, ids)
        count = ops.maximum(ops.sum(present, axis=1), 1.0)
        return ops.sum(contribution * present, axis=1) * self.scale / ops.sqrt(count)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "buckets": self.buckets, "max_n": self.max_n, "scale": self.scale,
                "folds": self.folds}


def ngram_counts(layer: NaiveBayesNgrams, x: np.ndarray, y: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``(2, buckets)``: how many negative (row 0) and positive (row 1) reviews of (x, y) hold
    each bucket's n-grams; with ``layer.folds``, ``(folds, 2, buckets)``, fold by fold (they sum
    to the former). Counts of disjoint reviews add up."""
    lengths, labels = np.count_nonzero(x != PAD, axis=1), np.asarray(y)
    groups = max(layer.folds, 1)
    found: list[list] = [[] for _ in range(2 * groups)]
    # Chunks of reviews of similar length, each cut to its longest: no n-grams of padding to sort.
    for rows in length_batches(lengths.tolist(), tokens_per_batch=chunk * x.shape[1], max_batch=chunk):
        tokens = x[rows, :max(int(lengths[rows].max()), 1)]
        ids = np.asarray(layer.ngram_ids(tokens))
        group = 2 * np.asarray(layer.fold_of(tokens)) + labels[rows]  # fold k, label l: 2k + l
        for g in range(2 * groups):
            of_group = ids[group == g]
            found[g].append(of_group[of_group != _ABSENT])
    counts = np.stack([np.bincount(np.concatenate(ids or [np.zeros(0, np.int64)]), minlength=layer.buckets)
                       for ids in found]).astype(np.float32).reshape(groups, 2, layer.buckets)
    return counts if layer.folds else counts[0]


def cross_fitted_ratios(counts: np.ndarray, smoothing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """From fold-by-fold counts ``(folds, 2, buckets)``: the ratios of all reviews ``(buckets,)``
    and, for each fold, those of the other folds' reviews ``(folds, buckets)``."""
    total = counts.sum(axis=0)
    return log_count_ratios(total, smoothing), np.stack([log_count_ratios(total - fold, smoothing) for fold in counts])


def log_count_ratios(counts: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """The log-count ratio of every bucket: log of (p / |p|) / (q / |q|), where p and q are the
    positive and negative rows of :func:`ngram_counts`, plus ``smoothing``."""
    smoothed = counts.astype(np.float64) + smoothing
    shares = smoothed / smoothed.sum(axis=1, keepdims=True)
    return np.log(shares[1] / shares[0]).astype(np.float32)


def set_counted_ratios(layer: NaiveBayesNgrams, counts: np.ndarray, smoothing: float = 1.0) -> None:
    """Give ``layer`` the ratios of :func:`ngram_counts`' ``counts``: cross-fitted where it has folds."""
    if layer.folds:
        layer.set_ratios(*cross_fitted_ratios(counts, smoothing))
    else:
        layer.set_ratios(log_count_ratios(counts, smoothing))


def naive_bayes_ratios(layer: NaiveBayesNgrams, x: np.ndarray, y: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """The log-count ratios of the reviews (x, y), for ``layer``'s buckets (all folds together)."""
    counts = ngram_counts(layer, x, y)
    return log_count_ratios(counts.sum(axis=0) if layer.folds else counts, smoothing)
