"""Self-supervised pretraining of the classifier's body on the reviews themselves.

The body is what comes before the pooling: the word embedding, the region embedding, the
position embedding and the encoder blocks (:func:`imdb_sentiment.model.classifier.build_body`).
Here it learns from the training and unlabeled reviews, never the validation or test ones; the
train stage then starts its classifiers from these weights instead of random ones
(self-pretraining on the task's own text, Krishna et al. 2023; "Never Train from Scratch", Amos
et al. 2024). Two objectives (``pretrain_objective``), each a softmax over ``pretrain_vocabulary``
target words read at a few asked positions of each review:

``neighbours`` (Johnson and Zhang 2015's region embeddings, "tv-embedding"): the body's vector at
a word, which sees the region around it (``region_width`` words with ``region_filters``), predicts
the words ``pretrain_window`` positions either side of that region, a bag whose words it cannot
see. The target words leave out the ``pretrain_skip_common`` most frequent ones ("the", "and",
...), which lie around every region alike. ``pretrain_regions`` random words of each review are
asked, and gradients are clipped to norm 1 (at a constant learning rate and unclipped, this
objective diverged after seven epochs: docs/experiments.md).

``masked_words`` (BERT's masked-word objective, Devlin et al. 2019; needs encoder blocks, through
which the other words tell a hidden one), kept cheap for two cores:

- a share ``pretrain_mask_rate`` of each review's real tokens is replaced by the out-of-vocabulary
  id (no extra mask token, so the vocabulary and the embedding stay the classifier's);
- the output layer predicts only the ``pretrain_vocabulary`` most frequent words (the vocabulary
  is sorted by frequency): a masked rarer word is not a target;
- the output layer reads only the positions that have a target (:class:`HiddenPositions`), not
  every position: its softmax over the output vocabulary was most of the cost of a step;
- each batch's masks are drawn from ``seed`` and the batch's step within its epoch (the reviews
  are reshuffled every epoch, so a review meets other masks), and a run is reproducible; so are
  the regions ``neighbours`` asks.

The weights are saved by their Keras path (:mod:`imdb_sentiment.model.body`), which a classifier
built from the same params has too.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from imdb_sentiment.errors import PipelineError
from imdb_sentiment.features.text import OOV, PAD
from imdb_sentiment.model.classifier import build_body
from imdb_sentiment.params import Params
from imdb_sentiment.training.fit import batches, set_seed, steps_per_epoch
from imdb_sentiment.training.memory import PRETRAIN_BATCH as BATCH


def body_model(params: Params, vocabulary_size: int) -> keras.Model:
    """Token ids -> the vectors the classifier's pooling reads, (batch, steps, ``params.body_width``),
    with the classifier's layer names."""
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    return keras.Model(tokens, build_body(params, vocabulary_size, tokens), name="classifier_body")


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class HiddenPositions(keras.layers.Layer):
    """(vectors (batch, steps, width), asked (batch, steps) bool) -> the vectors at the asked
    positions, (asked positions, width), in row-major order: the order of ``targets[asked]``."""

    def call(self, vectors, asked, mask=None):  # the padding mask means nothing once positions are picked
        return tf.gather_nd(vectors, tf.where(asked))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, vectors_shape, asked_shape):
        return (None, vectors_shape[-1])


def target_words(params: Params, vocabulary_size: int) -> tuple[int, int]:
    """(first id, count) of the words the objective predicts, as the output's indices 0 to count
    - 1: the vocabulary is sorted by frequency after padding and out-of-vocabulary, so these are
    the most frequent words; for ``masked_words`` the ids themselves (padding and out-of-vocabulary
    are never asked for), for ``neighbours`` those after the ``pretrain_skip_common`` most frequent
    (at most half the words: a small vocabulary keeps targets)."""
    if params.pretrain_objective == "masked_words":
        return 0, min(params.pretrain_vocabulary, vocabulary_size)
    words = vocabulary_size - OOV - 1
    if words < 2:
        raise PipelineError(f"the vocabulary holds {max(words, 0)} words: too few to predict; raise max_features")
    first = OOV + 1 + min(params.pretrain_skip_common, words // 2)
    return first, min(params.pretrain_vocabulary, vocabulary_size - first)


def pretraining_model(params: Params, vocabulary_size: int) -> keras.Model:
    """(token ids, asked positions) -> logits over the :func:`target_words` at each asked
    position, from the body's vectors there."""
    body = body_model(params, vocabulary_size)
    asked = keras.Input(shape=(None,), dtype="bool", name="asked")
    hidden = HiddenPositions(name="hidden_positions")(body.output, asked)
    logits = keras.layers.Dense(target_words(params, vocabulary_size)[1], name="word_logits")(hidden)
    return keras.Model([body.input, asked], logits, name=f"pretrain_{params.pretrain_objective}")


def mask_tokens(tokens: tf.Tensor, seed: tf.Tensor, rate: float, outputs: int):
    """(masked tokens, targets, weights) for a batch of token ids: a share ``rate`` of the real
    tokens (stateless draw from ``seed``) replaced by OOV; the target is the hidden word where it
    is among the ``outputs`` most frequent (weight 1), nothing elsewhere (weight 0)."""
    draw = tf.random.stateless_uniform(tf.shape(tokens), seed=seed)
    hidden = (draw < rate) & (tokens != PAD)
    masked = tf.where(hidden, tf.cast(OOV, tokens.dtype), tokens)
    counted = hidden & (tokens < outputs) & (tokens != OOV)
    targets = tf.where(counted, tokens, tf.zeros_like(tokens))
    return masked, targets, tf.cast(counted, tf.float32)


def drawn_batches(x: np.ndarray, params: Params, draw) -> tf.data.Dataset:
    """Trimmed batches of ``x``, reshuffled each epoch, each as ``draw(tokens, seed)`` makes it,
    the seed made of ``params.seed`` and the batch's step within its epoch."""
    data = batches(x, np.zeros(len(x), np.int8), BATCH, seed=params.seed, trim=True)
    return data.enumerate().map(lambda step, batch: draw(batch[0], tf.stack([tf.cast(params.seed, tf.int64), step])))


def masks(x: np.ndarray, params: Params) -> tf.data.Dataset:
    """Batches of ``x`` masked by :func:`mask_tokens`: (masked tokens, targets, weights)."""
    outputs = params.pretrain_vocabulary  # the ids below it are the most frequent words (and PAD, OOV)
    return drawn_batches(x, params, lambda tokens, seed: mask_tokens(tokens, seed, params.pretrain_mask_rate, outputs))


def asked_only(masked: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor):
    """A batch of :func:`masks` as the masked-word model takes it: ((masked tokens, asked
    positions), the asked positions' words)."""
    asked = weights > 0
    return (masked, asked), tf.boolean_mask(targets, asked)


def masked_batches(x: np.ndarray, params: Params) -> tf.data.Dataset:
    """The batches the pretraining fits on: :func:`masks`, each as :func:`asked_only` gives it."""
    return masks(x, params).map(asked_only).prefetch(tf.data.AUTOTUNE)


def body_reach(params: Params) -> int:
    """How many positions either side of a word the body's vector at it sees (without encoder
    blocks): half a region, and the next word's pair with ``bigram_buckets``."""
    return (params.region_width // 2 if params.region_filters else 0) + bool(params.bigram_buckets)


def neighbour_targets(tokens: tf.Tensor, seed: tf.Tensor, params: Params, first: int, count: int):
    """(asked (batch, steps) bool, targets (batch, steps, 2 x pretrain_window) int32) for a batch
    of token ids: ``pretrain_regions`` real words of each review asked (a stateless draw from
    ``seed``; every real word of a shorter review), each for the words 1 to ``pretrain_window``
    positions beyond the reach of the body's vector at it, either side, as target indices
    (id - ``first``), -1 where there is no target word (past the review's ends, padding, a word
    not among the ``count`` targets). A word none of whose neighbours is a target is not asked."""
    reach, window = body_reach(params), params.pretrain_window
    steps = tf.shape(tokens)[1]
    real = tokens != PAD
    draw = tf.where(real, tf.random.stateless_uniform(tf.shape(tokens), seed=seed), -1.0)
    kth = tf.math.top_k(draw, tf.minimum(params.pretrain_regions, steps)).values[:, -1:]
    far = reach + window
    padded = tf.pad(tokens, [[0, 0], [far, far]])  # PAD beyond both ends
    offsets = [*range(-far, -reach), *range(reach + 1, far + 1)]
    around = tf.stack([padded[:, far + offset:far + offset + steps] for offset in offsets], axis=-1)
    index = tf.cast(around, tf.int32) - first
    targets = tf.where((index >= 0) & (index < count), index, -1)
    asked = real & (draw >= kth) & tf.reduce_any(targets >= 0, axis=-1)
    return asked, targets


def neighbour_loss(targets, logits):
    """Cross-entropy of the softmax over the target words against each asked word's bag of
    neighbours (its targets, -1 for none, counted as often as they occur), one value a row."""
    targets = tf.cast(targets, tf.int32)
    log_p = tf.nn.log_softmax(logits)
    present = tf.cast(targets >= 0, log_p.dtype)
    picked = tf.gather(log_p, tf.maximum(targets, 0), batch_dims=1)
    return -tf.reduce_sum(picked * present, axis=-1) / tf.reduce_sum(present, axis=-1)


def neighbour_batches(x: np.ndarray, params: Params, first: int, count: int) -> tf.data.Dataset:
    """The batches the ``neighbours`` objective fits on: ((token ids, asked positions), the asked
    words' :func:`neighbour_targets`)."""

    def asked_only(tokens, seed):
        asked, targets = neighbour_targets(tokens, seed, params, first, count)
        return (tokens, asked), tf.boolean_mask(targets, asked)

    return drawn_batches(x, params, asked_only).prefetch(tf.data.AUTOTUNE)


def frequency_loss(x: np.ndarray, first: int, count: int) -> float:
    """About what :func:`neighbour_loss` comes to for a model that knows only how often each target
    word occurs (the entropy of their frequencies): the baseline a region has to beat."""
    targets = x[(x >= first) & (x < first + count)] - first
    counts = np.bincount(targets, minlength=count).astype(np.float64)
    share = counts[counts > 0] / counts.sum()
    return float(-(share * np.log(share)).sum())


class _Progress(keras.callbacks.Callback):
    """A bar of the steps of each epoch on a terminal's stderr (none in a log): an epoch takes minutes."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.bar = steps, None

    def on_epoch_begin(self, epoch, logs=None):
        self.bar = tqdm(total=self.steps, desc=f"pretrain epoch {epoch + 1}", unit="step", disable=None, leave=False)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()


def pretrain(params: Params, x: np.ndarray, vocabulary_size: int) -> tuple[keras.Model, list[dict]]:
    """Fit the body on ``x`` by ``params.pretrain_objective`` for ``params.pretrain_epochs``;
    return the model and a row an epoch: its loss, and for ``masked_words`` the accuracy on the
    hidden words, for ``neighbours`` the :func:`frequency_loss` to compare the loss with."""
    set_seed(params.seed)
    model = pretraining_model(params, vocabulary_size)
    steps_each = steps_per_epoch(x, BATCH, trim=True)
    steps = params.pretrain_epochs * steps_each
    schedule = keras.optimizers.schedules.CosineDecay(params.pretrain_learning_rate, steps)
    if params.pretrain_objective == "neighbours":
        first, count = target_words(params, vocabulary_size)
        data = neighbour_batches(x, params, first, count)
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.01, global_clipnorm=1.0)
        model.compile(optimizer=optimizer, loss=neighbour_loss)
    else:
        data = masked_batches(x, params)
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
    history = model.fit(data, epochs=params.pretrain_epochs, verbose=2, shuffle=False,
                        callbacks=[_Progress(steps_each)])
    rows = [{"epoch": i + 1, **{key: float(values[i]) for key, values in history.history.items()}}
            for i in range(params.pretrain_epochs)]
    if params.pretrain_objective == "neighbours":
        baseline = frequency_loss(x, first, count)
        rows = [{**row, "frequency_loss": baseline} for row in rows]
    return model, rows
