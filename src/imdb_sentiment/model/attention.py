"""The custom multi-head self-attention layer at the heart of the classifier.

Query, key and value projections, ``split_heads`` into ``(num_heads, embed_dim // num_heads)``,
scaled dot-product softmax, heads merged and projected. Unlike the original script it honours
the padding mask (padded keys get no weight; the mask is passed on so pooling skips them too),
its dropout acts on the attention weights in training, and it saves and loads with the model.

With ``pool_queries`` the layer returns the (masked) average of its output over the positions,
exactly what ``GlobalAveragePooling1D`` would make of it, in about a third of the work: averaging
is linear, so it can be done on the attention weights before they meet the values and before
the output projection; two (steps x steps x embed_dim) and (steps x embed_dim x embed_dim)
products per review become vector products.

With ``learned_query`` there is one query, a trained vector, instead of one per position
(attention pooling, as the word-level attention of Yang et al. 2016's hierarchical attention
networks): each head weights the words by the softmax of their keys against it, and the output is
that weighted sum of the values, projected, ``(batch, embed_dim)``. Its weights are the words'
whole share of the pooled vector, where the pooled self-attention's are averaged over every
query first; and it costs (steps) scores a head, not (steps x steps).

With ``train_query`` false the learned query stays at zero, where every word weighs the same:
the layer is then a plain average of the words' values, projected, the ablation that tells what
the query's weighting earns from what its projections do.

With ``block_size`` the scores, mask, softmax and weighted sum are computed a block of that many
keys at a time, with an online softmax and a backward pass that recomputes each block
(:mod:`imdb_sentiment.model.blocked`): the same numbers, without the (steps x steps) weights in
memory. The explicit form (``block_size`` 0) stays for dropout on the weights and for the
weights themselves (``return_attention_scores``, the figures).

With ``squared_keys`` each key is its projection squared, element by element: a query then
weighs a word by a sum of squares of its projections, which grows with how far the word lies
along them either way. A linear key against a learned query can only favour words on one side of
a direction (the positive ones, say), which helps the reviews of one class as much as it hurts
the other's; a squared key can favour the words that are strongly either, for every review alike.
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
        pool_queries: return the average over (unmasked) positions, ``(batch, embed_dim)``.
        block_size: > 0: attention computed this many keys at a time (no dropout then).
        learned_query: one trained query instead of the positions' own, ``(batch, embed_dim)``
            out; it starts at zero, where every word weighs the same (the plain average).
        squared_keys: square the key projections element-wise (a sign-blind salience).
        train_query: with ``learned_query``, whether the query learns; false: it stays at zero.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 pool_queries: bool = False, block_size: int = 0, learned_query: bool = False,
                 squared_keys: bool = False, train_query: bool = True, **kwargs):
        super().__init__(**kwargs)
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if block_size < 0 or (block_size and dropout):
            raise ValueError(f"block_size must be 0 or, without dropout, positive; got {block_size} "
                             f"with dropout {dropout}")
        self.block_size = block_size
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.depth = embed_dim // num_heads
        self.dropout = dropout
        self.pool_queries = pool_queries
        self.learned_query = learned_query
        self.squared_keys = squared_keys
        self.train_query = train_query
        # Made, and left unbuilt, for a learned query too: its initializers draw their seeds from the
        # global seed now, and skipping it would give every weight after it other initial values.
        self.query_dense = keras.layers.Dense(embed_dim, name="query")
        self.key_dense = keras.layers.Dense(embed_dim, name="key")
        self.value_dense = keras.layers.Dense(embed_dim, name="value")
        self.output_dense = keras.layers.Dense(embed_dim, name="output")
        self.attention_dropout = keras.layers.Dropout(dropout, name="attention_dropout")
        self.supports_masking = True

    def build(self, input_shape):
        if self.learned_query:
            self.query = self.add_weight(shape=(self.embed_dim,), initializer="zeros", name="query",
                                         trainable=self.train_query)
        else:
            self.query_dense.build(input_shape)
        for dense in (self.key_dense, self.value_dense):
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

    def keys(self, inputs):
        """The keys, (batch, heads, steps, depth): projected, and squared with ``squared_keys``."""
        key = self.key_dense(inputs)
        return self.split_heads(key * key if self.squared_keys else key)

    def query_heads(self, dtype):
        """The learned query as (1, heads, 1, depth): one query for every review."""
        return ops.reshape(ops.cast(self.query, dtype), (1, self.num_heads, 1, self.depth))

    def scaled_query(self, query):
        """``query`` / sqrt(depth), in its own dtype."""
        # Scaling the (steps x depth) queries, not the (steps x steps) scores: each pass over
        # the scores costs as much as the product.
        return query * ops.cast(1.0 / math.sqrt(self.depth), query.dtype)

    def scaled_scores(self, query, key):
        """The scores before the softmax, query . key / sqrt(depth), in float32 (where the
        softmax is computed, also under mixed precision): (batch, heads, queries, steps)."""
        return ops.cast(ops.matmul(self.scaled_query(query), ops.swapaxes(key, -1, -2)), "float32")

    def query_scores(self, inputs):
        """The learned query's scores of each position before the softmax, (batch, heads,
        steps): what decides each word's weight (``benchmarks/attention_as_average.py``)."""
        if not self.learned_query:
            raise ValueError("query_scores needs learned_query: the layer has one query per position")
        key = self.keys(inputs)
        return self.scaled_scores(self.query_heads(key.dtype), key)[:, :, 0, :]

    def attention_weights(self, query, key, mask=None, training=None):
        """Softmax of the scaled scores, (batch, heads, steps, steps); masked keys get 0."""
        scores = self.scaled_scores(query, key)
        if mask is not None:  # masked by adding a large negative number, one pass over the scores
            blocked = 1.0 - ops.cast(mask, "float32")
            blocked = blocked[:, None, None, :] if len(mask.shape) == 2 else blocked[:, None, :, :]
            scores = scores + blocked * _LARGE_NEGATIVE
        weights = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        return self.attention_dropout(weights, training=training)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False):
        """``mask``: (batch, steps) or (batch, steps, steps), true where a key may be attended."""
        key = self.keys(inputs)
        value = self.split_heads(self.value_dense(inputs))
        if self.learned_query:
            if mask is not None and len(mask.shape) == 3:
                raise ValueError("learned_query needs a (batch, steps) mask of real positions, not a pairwise one")
            query = self.query_heads(key.dtype)  # its weights are (batch, heads, 1, steps)
        else:
            query = self.split_heads(self.query_dense(inputs))
            if self.block_size and not return_attention_scores and (mask is None or len(mask.shape) == 2):
                return self.blocked(query, key, value, mask)
        weights = self.attention_weights(query, key, mask, training)
        if self.learned_query:
            output = self.pooled_output(ops.matmul(weights, value))
        elif self.pool_queries:
            output = self.pooled_output(ops.matmul(self.average_over_queries(weights, mask), value))
        else:
            output = self.output_dense(self.merge_heads(ops.matmul(weights, value)))
        if return_attention_scores:
            return output, weights
        return output

    def pooled_output(self, context):
        """(batch, heads, 1, depth) -> the projected (batch, embed_dim)."""
        return self.output_dense(ops.reshape(context, (ops.shape(context)[0], self.embed_dim)))

    def blocked(self, query, key, value, mask=None):
        """``call``'s output, computed a block of keys at a time (:mod:`imdb_sentiment.model.blocked`)."""
        from imdb_sentiment.model import blocked

        batch, steps = ops.shape(query)[0], ops.shape(query)[2]
        query = ops.cast(self.scaled_query(query), "float32")
        key, value = ops.cast(key, "float32"), ops.cast(value, "float32")
        bias = blocked.key_bias(mask, batch, steps)
        if self.pool_queries:
            real = ops.ones((batch, steps)) if mask is None else ops.cast(mask, "float32")
            share = (real / ops.sum(real, axis=1, keepdims=True))[:, None, None, :]
            context = blocked.pooled_attention(query, key, value, bias, share, self.block_size)
            return self.pooled_output(ops.cast(context, self.compute_dtype))
        context = ops.cast(blocked.blocked_attention(query, key, value, bias, self.block_size), self.compute_dtype)
        return self.output_dense(self.merge_heads(context))

    def average_over_queries(self, weights, mask=None):
        """(batch, heads, steps, steps) -> (batch, heads, 1, steps): the weights' mean over the
        real query positions, as ``GlobalAveragePooling1D`` averages the output rows."""
        if mask is None:
            return ops.mean(weights, axis=2, keepdims=True)
        if len(mask.shape) == 3:
            raise ValueError("pool_queries needs a (batch, steps) mask of real positions, "
                             "not a pairwise (batch, steps, steps) one")
        real = ops.cast(mask, weights.dtype)
        share = real / ops.sum(real, axis=1, keepdims=True)
        return ops.matmul(share[:, None, None, :], weights)

    @property
    def pools(self) -> bool:
        """Whether the output is one vector a review, (batch, embed_dim): the steps are gone."""
        return self.pool_queries or self.learned_query

    def compute_mask(self, inputs, mask=None):
        if self.pools:
            return None  # the steps are gone
        if mask is not None and len(mask.shape) == 3:
            return None  # a pairwise mask says nothing about which positions are real
        return mask

    def compute_output_shape(self, input_shape):
        if self.pools:
            return (input_shape[0], self.embed_dim)
        return (*input_shape[:-1], self.embed_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "pool_queries": self.pool_queries,
            "block_size": self.block_size,
            "learned_query": self.learned_query,
            "squared_keys": self.squared_keys,
            "train_query": self.train_query,
        }
