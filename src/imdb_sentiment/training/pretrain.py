"""Self-supervised pretraining of the classifier's body on the reviews themselves: masked words.

The body is what comes before the pooling: the word embedding, the position embedding and the
encoder blocks (:func:`imdb_sentiment.model.classifier.build_body`, ``encoder_blocks`` > 0). Here
it learns to fill in hidden words (BERT's masked-word objective, Devlin et al. 2019) on the
training and unlabeled reviews, never the validation or test ones; the train stage then starts
its classifiers from these weights instead of random ones (self-pretraining on the task's own
text, Krishna et al. 2023; "Never Train from Scratch", Amos et al. 2024).

Kept cheap for two cores:

- a share ``pretrain_mask_rate`` of each review's real tokens is replaced by the out-of-vocabulary
  id (no extra mask token, so the vocabulary and the embedding stay the classifier's);
- the output layer predicts only the ``pretrain_vocabulary`` most frequent words (the vocabulary
  is sorted by frequency): a masked rarer word is not a target;
- the output layer reads only the positions that have a target (:class:`HiddenPositions`), not
  every position: its softmax over the output vocabulary was most of the cost of a step;
- each batch's masks are drawn from ``seed`` and the batch's step within its epoch (the reviews
  are reshuffled every epoch, so a review meets other masks), and a run is reproducible.

The weights are saved by their Keras path (:mod:`imdb_sentiment.model.body`), which a classifier
built from the same params has too.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from imdb_sentiment.features.text import OOV, PAD
from imdb_sentiment.model.classifier import build_body
from imdb_sentiment.params import Params
from imdb_sentiment.training.fit import batches, set_seed, steps_per_epoch
from imdb_sentiment.training.memory import PRETRAIN_BATCH as BATCH


def body_model(params: Params, vocabulary_size: int) -> keras.Model:
    """Token ids -> the vectors the classifier's pooling reads, (batch, steps, embedding_dim),
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


def masked_word_model(params: Params, vocabulary_size: int) -> keras.Model:
    """(masked token ids, asked positions) -> logits over the ``pretrain_vocabulary`` most
    frequent words at each asked position, from the body's vectors there."""
    body = body_model(params, vocabulary_size)
    asked = keras.Input(shape=(None,), dtype="bool", name="asked")
    hidden = HiddenPositions(name="hidden_positions")(body.output, asked)
    logits = keras.layers.Dense(min(params.pretrain_vocabulary, vocabulary_size), name="word_logits")(hidden)
    return keras.Model([body.input, asked], logits, name="masked_words")


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


def masks(x: np.ndarray, params: Params) -> tf.data.Dataset:
    """Trimmed batches of ``x``, reshuffled each epoch, masked by :func:`mask_tokens` with draws
    from ``params.seed`` and the step: (masked tokens, targets, weights)."""
    data = batches(x, np.zeros(len(x), np.int8), BATCH, seed=params.seed, trim=True)
    outputs = params.pretrain_vocabulary
    rate = params.pretrain_mask_rate

    def with_masks(step, batch):
        tokens, _ = batch
        return mask_tokens(tokens, tf.stack([tf.cast(params.seed, tf.int64), step]), rate, outputs)

    return data.enumerate().map(with_masks)


def asked_only(masked: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor):
    """A batch of :func:`masks` as the masked-word model takes it: ((masked tokens, asked
    positions), the asked positions' words)."""
    asked = weights > 0
    return (masked, asked), tf.boolean_mask(targets, asked)


def masked_batches(x: np.ndarray, params: Params) -> tf.data.Dataset:
    """The batches the pretraining fits on: :func:`masks`, each as :func:`asked_only` gives it."""
    return masks(x, params).map(asked_only).prefetch(tf.data.AUTOTUNE)


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
    """Fit the masked-word model on ``x`` for ``params.pretrain_epochs``; return it and a row an
    epoch (loss, accuracy on the hidden words)."""
    set_seed(params.seed)
    model = masked_word_model(params, vocabulary_size)
    steps_each = steps_per_epoch(x, BATCH, trim=True)
    steps = params.pretrain_epochs * steps_each
    model.compile(
        optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(params.pretrain_learning_rate, steps),
                                         weight_decay=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    history = model.fit(masked_batches(x, params), epochs=params.pretrain_epochs, verbose=2, shuffle=False,
                        callbacks=[_Progress(steps_each)])
    rows = [{"epoch": i + 1, "loss": float(history.history["loss"][i]),
             "accuracy": float(history.history["accuracy"][i])} for i in range(params.pretrain_epochs)]
    return model, rows
