"""What the classifier adds to its word embeddings: word pairs, regions and positions.

Attention followed by averaging sees a review much as a bag of words: "not good" and "good"
share the word "good". Three optional additions:

- ``HashedBigramEmbedding``: a vector for each pair of neighbouring words, looked up by a hash of
  the two word ids (fastText's hashing trick), so that "not good" gets a vector of its own
  without a second vocabulary or longer sequences. Summed into the word embeddings.
- ``RegionEmbedding``: beside each word's vector, a vector of its neighbourhood, a convolution of
  the word vectors around it (Johnson and Zhang 2015's region embedding), which the pretrain
  stage can teach to predict the words around the region on the reviews' own text.
- ``PositionEmbedding``: ``learned``, one trained vector a position (up to ``sequence_length``),
  as in the keras-io text transformer; or ``sinusoidal``, the fixed sines and cosines of
  "Attention is all you need". Summed into the token vectors.
"""

from __future__ import annotations

import keras
from keras import ops


_PAIR_MULTIPLIER = 1_000_003  # a prime, so pairs (a, b) and (b, a) land in different buckets


def lookup_rows(table: keras.Variable, ids):
    """``table[ids]``. On TensorFlow a sparse read of the variable (a ``ResourceGather``): once an
    optimizer has updated some of its rows in place (``LazyAdamW``), TensorFlow copies the whole
    variable for every plain read, 128 MB a step for a million 32-wide rows."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(table.value, ids)
    return ops.take(table, ids, axis=0)


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class HashedBigramEmbedding(keras.layers.Layer):
    """Token ids ``(batch, steps)`` -> ``(batch, steps, output_dim)``: at step i the vector of
    the pair (token i, token i + 1), in one of ``buckets`` hashed rows; zero where there is no
    pair (the last token, padding). With ``mask_zero`` it marks padding as the word embedding
    does, so that the sum of the two keeps the padding mask."""

    def __init__(self, buckets: int, output_dim: int, mask_zero: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.buckets = buckets
        self.output_dim = output_dim
        self.mask_zero = mask_zero

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.buckets, self.output_dim), initializer="uniform", name="table")
        self.built = True

    def pair_ids(self, tokens):
        tokens = ops.cast(tokens, "int64")
        following = ops.pad(tokens[:, 1:], [[0, 0], [0, 1]])
        ids = (tokens * _PAIR_MULTIPLIER + following) % self.buckets
        return ids, (tokens != 0) & (following != 0)

    def call(self, tokens):
        ids, is_pair = self.pair_ids(tokens)
        vectors = ops.cast(lookup_rows(self.table, ids), self.compute_dtype)
        return vectors * ops.cast(is_pair, vectors.dtype)[:, :, None]

    def compute_mask(self, tokens, mask=None):
        return ops.not_equal(tokens, 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "buckets": self.buckets, "output_dim": self.output_dim,
                "mask_zero": self.mask_zero}


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class PositionEmbedding(keras.layers.Layer):
    """Adds a position vector to each step of ``(batch, steps, features)``, steps <= max_length."""

    KINDS = ("learned", "sinusoidal")

    def __init__(self, max_length: int, kind: str = "learned", **kwargs):
        super().__init__(**kwargs)
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.max_length = max_length
        self.kind = kind
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        if self.kind == "learned":
            self.positions = self.add_weight(
                shape=(self.max_length, features), initializer="uniform", name="positions"
            )
        else:
            self.positions = self.sinusoids(self.max_length, features)
        self.built = True

    @staticmethod
    def sinusoids(length: int, features: int):
        position = ops.arange(length, dtype="float32")[:, None]
        pair = ops.arange(features, dtype="float32")[None, :] // 2
        angle = position / ops.power(10000.0, 2.0 * pair / features)
        even = ops.cast(ops.arange(features) % 2 == 0, "float32")[None, :]
        return even * ops.sin(angle) + (1.0 - even) * ops.cos(angle)

    def call(self, inputs):
        steps = ops.shape(inputs)[1]
        return inputs + ops.cast(self.positions[:steps], inputs.dtype)[None, :, :]

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length, "kind": self.kind}


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class RegionEmbedding(keras.layers.Layer):
    """``(batch, steps, features)`` -> ``(batch, steps, features + filters)``: each step's vector
    and, after it, the ReLU of a width-``width`` convolution of the vectors around it (the
    region centred on the step). Padding takes no part: its vectors are zeroed before the
    convolution and the regions at padded steps after it, so that a review's regions are the
    same however far its batch is padded. The padding mask passes through."""

    def __init__(self, filters: int, width: int, **kwargs):
        super().__init__(**kwargs)
        if width < 1 or width % 2 == 0:
            raise ValueError(f"width must be odd (a region centred on its word), got {width}")
        self.filters = filters
        self.width = width
        self.convolution = keras.layers.Conv1D(filters, width, padding="same", activation="relu", name="convolution")
        self.supports_masking = True

    def build(self, input_shape):
        self.convolution.build(input_shape)
        self.built = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.concatenate([inputs, self.convolution(inputs)], axis=-1)
        real = ops.cast(mask, inputs.dtype)[:, :, None]
        regions = self.convolution(inputs * real) * real
        return ops.concatenate([inputs, regions], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "width": self.width}
