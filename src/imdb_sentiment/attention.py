"""The custom multi-head self-attention layer at the heart of the classifier.

Query, key and value projections, ``split_heads`` into ``(num_heads, embed_dim // num_heads)``,
scaled dot-product softmax, heads merged and projected. Unlike the original script it honours
the padding mask (padded keys get no weight; the mask is passed on so pooling skips them too),
its dropout acts on the attention weights in training, and it saves and loads with the model.
"""

from __future__ import annotations

import math

import keras
from keras import ops

_LARGE_NEGATIVE = -1e9  # exp() of it is exactly 0 in float32, where the softmax is computed


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class CustomMultiheadAttention(keras.layers.Layer):
    """Self-attention over ``(batch, steps, features)`` returning ``(batch, steps, embed_dim)``.

    Args:
        embed_dim: width of the projections and of the output; a multiple of ``num_heads``.
        num_heads: number of attention heads.
        dropout: rate at which attention weights are dropped, in training only.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.depth = embed_dim // num_heads
        self.dropout = dropout
        self.query_dense = keras.layers.Dense(embed_dim, name="query")
        self.key_dense = keras.layers.Dense(embed_dim, name="key")
        self.value_dense = keras.layers.Dense(embed_dim, name="value")
        self.output_dense = keras.layers.Dense(embed_dim, name="output")
        self.attention_dropout = keras.layers.Dropout(dropout, name="attention_dropout")
        self.supports_masking = True

    def build(self, input_shape):
        for dense in (self.query_dense, self.key_dense, self.value_dense):
            dense.build(input_shape)
        self.output_dense.build((*input_shape[:-1], self.embed_dim))
        self.built = True

    def split_heads(self, x):
        """(batch, steps, embed_dim) -> (batch, heads, steps, depth)."""
        batch, steps = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, steps, self.num_heads, self.depth))
        return ops.transpose(x, (0, 2, 1, 3))

    def merge_heads(self, x):
        """(batch, heads, steps, depth) -> (batch, steps, embed_dim)."""
        batch, steps = ops.shape(x)[0], ops.shape(x)[2]
        x = ops.transpose(x, (0, 2, 1, 3))
        return ops.reshape(x, (batch, steps, self.embed_dim))

    def attention_weights(self, query, key, mask=None, training=None):
        """Softmax of the scaled scores, (batch, heads, steps, steps); masked keys get 0."""
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / math.sqrt(self.depth)
        scores = ops.cast(scores, "float32")  # softmax in float32 also under mixed precision
        if mask is not None:
            keep = ops.cast(mask, "bool")
            keep = keep[:, None, None, :] if len(keep.shape) == 2 else keep[:, None, :, :]
            scores = ops.where(keep, scores, _LARGE_NEGATIVE)
        weights = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        return self.attention_dropout(weights, training=training)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False):
        """``mask``: (batch, steps) or (batch, steps, steps), true where a key may be attended."""
        query = self.split_heads(self.query_dense(inputs))
        key = self.split_heads(self.key_dense(inputs))
        value = self.split_heads(self.value_dense(inputs))
        weights = self.attention_weights(query, key, mask, training)
        output = self.output_dense(self.merge_heads(ops.matmul(weights, value)))
        if return_attention_scores:
            return output, weights
        return output

    def compute_mask(self, inputs, mask=None):
        if mask is not None and len(mask.shape) == 3:
            return None  # a pairwise mask says nothing about which positions are real
        return mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.embed_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
        }
