"""The classifier: Embedding (+ word pairs, + regions, + positions) (-> encoder blocks) -> a pooling
(CustomMultiheadAttention with one learned query, or its self-attention averaged over the
positions, or a plain average) -> Dropout -> Dense(1), plus the n-gram branch's logit; trained
on logits with binary cross-entropy and Adam.

The self-attention's averaging is the attention layer's ``pool_queries``: the same numbers as a
``GlobalAveragePooling1D`` after it (tests/test_attention.py checks), at a third of the cost.
"""

from __future__ import annotations

import keras
import numpy as np
from tqdm import tqdm

from imdb_sentiment.model.attention import CustomMultiheadAttention
from imdb_sentiment.model.batching import length_batches
from imdb_sentiment.model.body import BODY_OUTPUT
from imdb_sentiment.model.optimizer import LazyAdamW
from imdb_sentiment.model.naive_bayes import NaiveBayesNgrams
from imdb_sentiment.params import Params
from imdb_sentiment.model.embeddings import HashedBigramEmbedding, PositionEmbedding, RegionEmbedding
from imdb_sentiment.model.encoder import EncoderBlock
from imdb_sentiment.features.text import PAD

LENGTH_STEP = 32  # trimmed batches are cut to a multiple of this many tokens: few distinct shapes


def build_body(params: Params, vocabulary_size: int, tokens: keras.KerasTensor) -> keras.KerasTensor:
    """The vectors the pooling reads, (batch, steps, ``params.body_width``), from ``tokens``: the
    layers ``embedding``, ``bigrams`` and ``words_and_pairs``, ``regions``, ``positions``, ``encoder_1`` ...
    ``encoder_<encoder_blocks>``, as params say (the pretrain stage trains these alone), ending
    in the weightless layer :data:`BODY_OUTPUT` that marks where the body ends."""
    x = keras.layers.Embedding(
        vocabulary_size, params.embedding_dim, mask_zero=params.use_mask, name="embedding"
    )(tokens)
    if params.bigram_buckets:
        pairs = HashedBigramEmbedding(params.bigram_buckets, params.embedding_dim, mask_zero=params.use_mask,
                                      name="bigrams")(tokens)
        x = keras.layers.Add(name="words_and_pairs")([x, pairs])  # keeps the padding mask
    if params.region_filters:  # before the positions: a region is the same wherever it stands
        x = RegionEmbedding(params.region_filters, params.region_width, name="regions")(x)
    if params.position_embedding != "none":
        x = PositionEmbedding(params.sequence_length, params.position_embedding, name="positions")(x)
    for block in range(1, params.encoder_blocks + 1):
        x = EncoderBlock(params.encoder_heads, params.ff_dim, params.encoder_dropout, params.attention_block_size,
                         name=f"encoder_{block}")(x)
    return keras.layers.Identity(name=BODY_OUTPUT)(x)


def build_model(params: Params, vocabulary_size: int) -> keras.Model:
    """The classifier for token ids of any length; outputs one logit per review. Before the
    pooling: :func:`build_body`.

    With ``use_mask`` the embedding marks token id 0 as padding, the attention ignores it and
    the pooling averages over real tokens only. Without it, the original script's behaviour.
    ``pooling: average`` replaces the attention by a plain average of the token vectors;
    ``pooling: query`` pools with one learned query (``CustomMultiheadAttention``'s ``learned_query``);
    ``pooling: uniform`` with that query held at zero (every word alike, through the same projections).
    """
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = build_body(params, vocabulary_size, tokens)
    if params.pooling == "average":  # the ablation: every real token weighs the same
        x = keras.layers.GlobalAveragePooling1D(name="average")(x)
    else:  # attention: self-attention averaged over the positions; query: one learned query; uniform: held at 0
        x = CustomMultiheadAttention(
            params.embed_dim, params.num_heads, dropout=params.attention_dropout,
            pool_queries=params.pooling == "attention", learned_query=params.pooling in ("query", "uniform"),
            block_size=params.attention_block_size, squared_keys=params.squared_keys,
            train_query=params.pooling != "uniform", name="attention",
        )(x)
    x = keras.layers.Dropout(params.dropout, name="dropout")(x)
    logits = keras.layers.Dense(1, dtype="float32", name="logit")(x)  # float32 under mixed precision
    if params.nb_ngrams:
        ngrams = NaiveBayesNgrams(params.nb_buckets, params.nb_ngrams, params.nb_scale, params.nb_folds,
                                  name="naive_bayes")(tokens)
        logits = keras.layers.Add(dtype="float32", name="logits")([logits, ngrams])
    return keras.Model(tokens, logits, name="imdb_attention_classifier")


def compile_model(model: keras.Model, learning_rate: float, decay_steps: int = 0, weight_decay: float = 0.0,
                  lazy_updates: bool = False) -> None:
    """Adam on the binary cross-entropy of the logits. With ``decay_steps`` the learning rate
    follows a cosine from ``learning_rate`` down to 0 at that step (and stays there). With
    ``weight_decay`` AdamW: every step shrinks every weight by learning rate x weight_decay of
    itself, so that a word pair seen in one training review does not keep the vector it learned.
    With ``lazy_updates`` :class:`LazyAdamW`: the same, but a step touches only the embedding
    rows its batch looked up."""
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    if lazy_updates:
        optimizer = LazyAdamW(learning_rate, weight_decay=weight_decay)
    elif weight_decay:
        optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
    )


def masks_padding(model: keras.Model) -> bool:
    """Whether the classifier ignores padding (``use_mask``): then its outputs do not depend on
    how far a batch is padded, and batches can be cut to their longest review."""
    return bool(model.get_layer("embedding").mask_zero)


def predict_logits(model: keras.Model, x: np.ndarray, batch_size: int = 256, progress: str = "") -> np.ndarray:
    """The model's logits for ``x`` in its order; for a model that masks padding, computed in
    batches of similar length under a token budget (:mod:`imdb_sentiment.model.batching`), each cut to
    its longest review. ``progress``: a label for a progress bar on a terminal's stderr ("" for none)."""
    if not masks_padding(model):
        return model.predict(x, batch_size=batch_size, verbose=0).ravel()
    lengths = np.maximum(np.count_nonzero(x != PAD, axis=1), 1)
    logits = np.empty(len(x), dtype=np.float32)
    batches = length_batches(lengths.tolist())
    for rows in tqdm(batches, desc=progress, unit="batch", disable=None if progress else True, leave=False):
        width = -(-int(lengths[rows].max()) // LENGTH_STEP) * LENGTH_STEP  # few distinct shapes
        logits[rows] = np.asarray(model.predict_on_batch(x[rows, :width])).ravel()
    return logits
