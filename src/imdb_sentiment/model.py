"""The classifier: Embedding -> CustomMultiheadAttention -> GlobalAveragePooling1D -> Dropout
-> Dense(1), trained on logits with binary cross-entropy and Adam."""

from __future__ import annotations

import keras

from imdb_sentiment.attention import CustomMultiheadAttention
from imdb_sentiment.params import Params


def build_model(params: Params, vocabulary_size: int) -> keras.Model:
    """The classifier for token ids of any length; outputs one logit per review.

    With ``use_mask`` the embedding marks token id 0 as padding, the attention ignores it and
    the pooling averages over real tokens only. Without it, the original script's behaviour.
    """
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(
        vocabulary_size, params.embedding_dim, mask_zero=params.use_mask, name="embedding"
    )(tokens)
    x = CustomMultiheadAttention(
        params.embed_dim, params.num_heads, dropout=params.attention_dropout, name="attention"
    )(x)
    x = keras.layers.GlobalAveragePooling1D(name="pooling")(x)
    x = keras.layers.Dropout(params.dropout, name="dropout")(x)
    logits = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(tokens, logits, name="imdb_attention_classifier")


def compile_model(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
    )
