"""A Transformer encoder block around the hand-written attention: context for every word.

The classifier's pooling attention reads each word's vector as it comes out of the embedding, so
what a word gives depends on which words the review holds, never on their order or neighbours.
An :class:`EncoderBlock` lets every position attend every other one first (with a position
embedding, in order), so that "love" after "did not" can come out different from "love" alone:

    x = x + Dropout(CustomMultiheadAttention(LayerNorm(x)))      per position, padding masked
    x = x + Dropout(FeedForward(LayerNorm(x)))                   Dense(ff_dim, gelu) -> Dense(width)

Pre-normalization (Xiong et al. 2020): the residual path carries the word vectors through
unchanged, so at the start of training the block adds little to the bag of words the pooling
already reads well, and deeper stacks train without a learning-rate warm-up. The attention is
the project's own layer, in its per-position form (``pool_queries`` off; ``block_size`` for the
blocked computation); the normalization and the feed-forward layers are Keras's.
"""

from __future__ import annotations

import keras

from imdb_sentiment.model.attention import CustomMultiheadAttention


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class EncoderBlock(keras.layers.Layer):
    """``(batch, steps, width)`` -> the same shape; the padding mask passes through.

    Args:
        num_heads: heads of the self-attention; ``width`` (the input's last axis) a multiple of it.
        ff_dim: width of the feed-forward layer's hidden part.
        dropout: rate on each branch's output before it joins the residual path (training only).
        block_size: > 0: the attention computed this many keys at a time (no weights kept).
    """

    def __init__(self, num_heads: int, ff_dim: int, dropout: float = 0.0, block_size: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.block_size = block_size
        self.supports_masking = True

    def build(self, input_shape):
        width = input_shape[-1]
        self.attention = CustomMultiheadAttention(width, self.num_heads, block_size=self.block_size,
                                                  name="attention")
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="attention_norm")
        self.feed_forward_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="feed_forward_norm")
        self.hidden = keras.layers.Dense(self.ff_dim, activation="gelu", name="hidden")
        self.projection = keras.layers.Dense(width, name="projection")
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout")
        self.feed_forward_dropout = keras.layers.Dropout(self.dropout, name="feed_forward_dropout")
        for norm in (self.attention_norm, self.feed_forward_norm):
            norm.build(input_shape)
        self.attention.build(input_shape)
        self.hidden.build(input_shape)
        self.projection.build((*input_shape[:-1], self.ff_dim))
        self.built = True

    def call(self, inputs, mask=None, training=None):
        attended = self.attention(self.attention_norm(inputs), mask=mask, training=training)
        x = inputs + self.attention_dropout(attended, training=training)
        transformed = self.projection(self.hidden(self.feed_forward_norm(x)))
        return x + self.feed_forward_dropout(transformed, training=training)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "ff_dim": self.ff_dim,
                "dropout": self.dropout, "block_size": self.block_size}
