"""Training: seeding for reproducible runs, the input pipeline, the fit itself (on the devices
and in the precision of :mod:`imdb_sentiment.training.distribute`), logged epoch by epoch to dvclive."""

from __future__ import annotations

import contextlib
import os
import random
import time

import keras
import numpy as np
import tensorflow as tf

from imdb_sentiment.training.distribute import check_batch_size, strategy_for, use_precision
from imdb_sentiment.model.body import load_body_weights
from imdb_sentiment.model.classifier import LENGTH_STEP, build_model, compile_model, predict_logits
from imdb_sentiment.model.naive_bayes import ngram_counts, set_counted_ratios
from imdb_sentiment.params import Params
from imdb_sentiment.features.text import PAD

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops deterministic."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def length_boundaries(width: int) -> list[int]:
    """The review lengths at which :func:`batches` starts a new length group."""
    return list(range(LENGTH_STEP, width, LENGTH_STEP))


def steps_per_epoch(x: np.ndarray, batch_size: int, trim: bool) -> int:
    """The batches :func:`batches` yields an epoch. Trimmed, each length group fills batches of
    its own and ends with a partly filled one, whatever the shuffle: the sum over the groups of
    ceil(reviews / batch_size), not ceil(all reviews / batch_size)."""
    if not trim:
        return -(-len(x) // batch_size)
    lengths = np.count_nonzero(x != PAD, axis=1)
    groups = np.bincount(np.searchsorted(length_boundaries(x.shape[1]), lengths, side="right"))
    return int(np.sum(-(-groups // batch_size)))


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int | None = None,
            trim: bool = False) -> tf.data.Dataset:
    """Batches of (token ids, labels as float32 column); reshuffled every epoch when seeded.

    With ``trim`` (for a model that masks padding, whose outputs padding cannot change) each
    batch holds reviews of similar length and is cut to its longest one: attention costs grow
    with the square of the length, and most reviews are far shorter than ``sequence_length``.
    """
    labels = y.astype(np.float32)[:, None]
    if trim:  # each review as its real tokens only: a slice of all reviews' tokens end to end
        lengths = np.count_nonzero(x != PAD, axis=1)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        dataset = tf.data.Dataset.from_tensor_slices((starts, lengths, labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((x, labels))
    if seed is not None:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if trim:
        tokens = tf.constant(x[x != PAD])  # row by row: padding only ever trails
        dataset = dataset.map(lambda start, length, label: (tokens[start:start + length], label))
        boundaries = length_boundaries(x.shape[1])
        dataset = dataset.bucket_by_sequence_length(
            lambda tokens, _: tf.shape(tokens)[0], boundaries, [batch_size] * (len(boundaries) + 1))
        # Said up front, so that Keras need not run past the last batch to find the epoch's end
        # (which counts one optimizer step more an epoch, and would put the schedule a step off).
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps_per_epoch(x, batch_size, trim)))
    else:
        dataset = dataset.batch(batch_size)
    options = tf.data.Options()
    # In-memory arrays have no files to shard: each worker of a cluster takes its part of each batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


class Stopwatch:
    """Seconds spent in each phase of the train stage, in the order first seen: what the stage
    prints last and the benchmark (benchmarks/train_stage.py) reads."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        self.seconds.setdefault(name, 0.0)  # listed where it starts, before the phases inside it
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def line(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())


class _TimeValidation(keras.callbacks.Callback):
    """Adds the validation passes of a ``model.fit`` to ``validate <fit>`` (they are part of the fit's time too)."""

    def __init__(self, stopwatch: Stopwatch, fit: str):
        super().__init__()
        self.stopwatch, self.fit, self.start = stopwatch, fit, 0.0

    def on_test_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.stopwatch.add(f"validate {self.fit}", time.perf_counter() - self.start)


class EpochLog:
    """Where each epoch's figures go: to dvclive, under the fit's name (``supervised/val_loss``,
    ``self_trained/loss``, ...), the step being the epoch (from 1 in each fit), so that every fit
    keeps its own curves and ``dvc exp show`` shows a running fit's epoch. ``live`` None: nowhere."""

    def __init__(self, live=None, fit: str = "supervised", stopwatch: Stopwatch | None = None):
        self.live, self.fit, self.stopwatch = live, fit, stopwatch or Stopwatch()

    def start(self) -> None:
        if self.live is not None:
            self.live.step = 1

    def epoch(self, row: dict) -> None:
        if self.live is None:
            return
        for name in EPOCH_METRICS:
            if name in row:
                self.live.log_metric(f"{self.fit}/{name}", round(float(row[name]), 6))
        self.live.next_step()


class _LogEpochs(keras.callbacks.Callback):
    def __init__(self, log: EpochLog):
        super().__init__()
        self.log = log

    def on_train_begin(self, logs=None):
        self.log.start()

    def on_epoch_end(self, epoch, logs=None):
        self.log.epoch(logs or {})


def rows_of(history: dict[str, list[float]]) -> list[dict]:
    """Rows, one an epoch (counted from 1), from a Keras ``History.history`` mapping."""
    return [{"epoch": epoch + 1, **{key: float(history[key][epoch]) for key in EPOCH_METRICS}}
            for epoch in range(len(history["loss"]))]


def early_stopping(patience: int) -> list[keras.callbacks.Callback]:
    """Stop once validation loss has not improved for ``patience`` epochs and keep the weights
    of its best epoch, so more epochs never make the saved model worse; 0: train every epoch
    and keep the last weights, as the original script did."""
    if patience == 0:
        return []
    return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]


def kept_epoch(rows: list[dict], patience: int) -> int:
    """The 1-based epoch whose weights the model ends with."""
    if patience == 0:
        return len(rows)
    losses = [row["val_loss"] for row in rows]
    return losses.index(min(losses)) + 1


def fit_keras(model, train_data, val_data, epochs: int, patience: int, log: EpochLog) -> list[dict]:
    """``epochs`` of ``model.fit``; without ``val_data`` no validation, no early stopping, no rows."""
    fit = model.fit(
        train_data,
        validation_data=val_data,
        epochs=epochs,
        shuffle=False,  # the dataset shuffles itself, seeded
        callbacks=[_LogEpochs(log), _TimeValidation(log.stopwatch, log.fit),
                   *(early_stopping(patience) if val_data is not None else [])],
        verbose=2,
    )
    return rows_of(fit.history) if val_data is not None else []


def fit_multi_worker(model, strategy, train_data, val_data, epochs: int, patience: int,
                     log: EpochLog) -> list[dict]:
    """The epochs of :func:`fit_keras` as a loop of ``strategy.run`` steps.

    Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585),
    so this loop does what it would: the optimizer all-reduces (sums) the replicas' gradients of
    a loss averaged over the global batch; validation sums are reduced across workers; early
    stopping keeps the best epoch's weights.
    """
    loss_of = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)

    def sums(x, y, training):
        logits = model(x, training=training)
        losses = loss_of(y, logits)
        correct = tf.cast(tf.equal(tf.cast(logits >= 0, tf.float32), y), tf.float32)
        return losses, tf.stack([tf.reduce_sum(losses), tf.reduce_sum(correct), tf.cast(tf.size(y), tf.float32)])

    def train_replica(x, y):
        with tf.GradientTape() as tape:
            losses, totals = sums(x, y, training=True)
            loss = tf.nn.compute_average_loss(losses)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return totals

    @tf.function
    def train_step(x, y):
        return strategy.reduce("SUM", strategy.run(train_replica, args=(x, y)), axis=None)

    @tf.function
    def val_step(x, y):
        return strategy.reduce("SUM", strategy.run(lambda a, b: sums(a, b, training=False)[1], args=(x, y)), axis=None)

    def run_epoch(step, data):
        totals = sum(step(x, y) for x, y in strategy.experimental_distribute_dataset(data))
        loss, correct, count = (float(v) for v in totals)
        return loss / count, correct / count

    rows, best, best_weights, waited = [], float("inf"), None, 0
    log.start()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss, accuracy = run_epoch(train_step, train_data)
        print(f"Epoch {epoch}/{epochs} - {time.perf_counter() - start:.0f}s - accuracy: {accuracy:.4f} - "
              f"loss: {loss:.4f}", end="", flush=True)
        if val_data is None:
            print(flush=True)
            log.epoch({"loss": loss, "accuracy": accuracy})
            continue
        val_loss, val_accuracy = run_epoch(val_step, val_data)
        rows.append({"epoch": epoch, "loss": loss, "accuracy": accuracy, "val_loss": val_loss,
                     "val_accuracy": val_accuracy})
        log.epoch(rows[-1])
        print(f" - val_accuracy: {val_accuracy:.4f} - val_loss: {val_loss:.4f}", flush=True)
        if patience == 0:
            continue
        if val_loss < best:
            best, best_weights, waited = val_loss, model.get_weights(), 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    return rows


def decay_steps(params: Params, x: np.ndarray) -> int:
    """Steps over which the cosine schedule takes the learning rate to 0: every step the epochs
    over ``x`` take, so that it reaches 0 as the last one ends."""
    if params.lr_schedule == "constant":
        return 0
    return params.epochs * steps_per_epoch(x, params.batch_size, trim=params.use_mask)


def compiled_model(params: Params, vocabulary_size: int, strategy, x: np.ndarray) -> keras.Model:
    """A fresh classifier, seeded, compiled for training on ``x`` (the schedule's length)."""
    set_seed(params.seed)
    use_precision(params.precision)
    try:
        with strategy.scope():
            model = build_model(params, vocabulary_size)
            compile_model(model, params.learning_rate, decay_steps(params, x), params.weight_decay,
                          params.lazy_updates)
    finally:
        use_precision("float32")  # the layers keep theirs; what is built later is float32
    return model


def fit(model, strategy, params: Params, x, y, validation, epochs: int, patience: int,
        log: EpochLog | None = None) -> list[dict]:
    """Fit on (x, y) for ``epochs``; ``validation``: (x, y) to report on and stop early with, or None."""
    train_data = batches(x, y, params.batch_size, seed=params.seed, trim=params.use_mask)
    val_data = None if validation is None else batches(*validation, params.batch_size, trim=params.use_mask)
    log = log or EpochLog()
    if params.distribute == "multi_worker":
        return fit_multi_worker(model, strategy, train_data, val_data, epochs, patience, log)
    return fit_keras(model, train_data, val_data, epochs, patience, log)


def pseudo_labels(model, x_unlabeled: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The unlabeled reviews whose predicted class has at least ``confidence`` probability under
    ``model``, with that class as their label (int8)."""
    logits = predict_logits(model, x_unlabeled, progress="pseudo-labelling")
    sure = np.abs(logits) >= np.log(confidence / (1.0 - confidence))  # sigmoid(|logit|) >= confidence
    return x_unlabeled[sure], (logits[sure] >= 0).astype(np.int8)


def train(params: Params, x_train, y_train, x_val, y_val, vocabulary_size: int,
          strategy: tf.distribute.Strategy | None = None, x_unlabeled: np.ndarray | None = None, live=None,
          stopwatch: Stopwatch | None = None, pretrained=None):
    """Build, compile and fit the classifier; return it, its per-epoch history rows, the epoch
    whose weights it kept and the number of reviews it trained on. ``strategy``: made from
    ``params.distribute`` if not given; ``live``: a dvclive ``Live`` that gets every fit's epochs
    (``supervised``, ``self_trained``, ``refit``); ``stopwatch``: gets each phase's seconds;
    ``pretrained``: the pretrain stage's folder, whose body weights (if it holds any) every fresh
    model starts from (:mod:`imdb_sentiment.model.body`).

    With ``params.pseudo_label_confidence`` (self-training) and unlabeled reviews, that first
    model is a teacher, pooled as ``params.teacher_pooling`` says: the unlabeled reviews it is
    that sure of join the training reviews with the label it gives them, and a fresh model (same
    seed, ``params.pooling``) is fitted on them the same way, early stopping included. Its
    history and kept epoch are the ones returned.

    With ``params.nb_ngrams`` each fresh model's Naive-Bayes ratios are counted on the reviews it
    is fitted on, with their labels, pseudo-labels included: never on the validation reviews,
    except for the refit, which trains on them; with ``params.nb_folds``, cross-fitted.

    With ``params.refit`` the model returned is a last one, trained the same way (same seed,
    same schedule) on the training (and pseudo-labelled) and validation reviews together for the
    number of epochs the previous one kept: more reviews to learn from, with the epoch chosen on
    reviews it had not seen. The history rows and the kept epoch are the previous model's.
    """
    strategy = strategy or strategy_for(params.distribute)  # a cluster forms before other TF work
    check_batch_size(params.batch_size, strategy)

    stopwatch = stopwatch or Stopwatch()
    # Each fit's reviews are the previous fit's with more appended (pseudo-labelled, then
    # validation reviews), so the n-gram counts of the first `counted` need not be made again.
    counts, counted = None, 0

    def fresh_model(x, y, model_params=params):
        """A compiled classifier for training on (x, y); with ``nb_ngrams``, its n-gram ratios
        counted on them."""
        nonlocal counts, counted
        with stopwatch.phase("build"):
            model = compiled_model(model_params, vocabulary_size, strategy, x)
            if pretrained is not None:
                load_body_weights(model, pretrained)
        if params.nb_ngrams:
            with stopwatch.phase("count n-grams"):
                layer = model.get_layer("naive_bayes")
                new = ngram_counts(layer, x[counted:], y[counted:])
                counts, counted = new if counts is None else counts + new, len(x)
                set_counted_ratios(layer, counts)
        return model

    def fit_fresh_model(x, y, name, model_params=params):
        model = fresh_model(x, y, model_params)
        with stopwatch.phase(f"fit {name}"):
            rows = fit(model, strategy, params, x, y, (x_val, y_val), params.epochs, params.patience,
                       EpochLog(live, name, stopwatch))
        return model, rows, kept_epoch(rows, params.patience)

    self_training = bool(params.pseudo_label_confidence and x_unlabeled is not None and len(x_unlabeled))
    model, rows, kept = fit_fresh_model(x_train, y_train, "supervised", params.teacher() if self_training else params)
    if self_training:
        with stopwatch.phase("pseudo-label"):
            x_sure, y_sure = pseudo_labels(model, x_unlabeled, params.pseudo_label_confidence)
        print(f"train: {len(x_sure):,} of {len(x_unlabeled):,} unlabeled reviews pseudo-labelled "
              f"(probability >= {params.pseudo_label_confidence})", flush=True)
        # Fitted even when no review is pseudo-labelled: the model saved is pooled as `pooling` says.
        x_train, y_train = np.concatenate([x_train, x_sure]), np.concatenate([y_train, y_sure])
        model, rows, kept = fit_fresh_model(x_train, y_train, "self_trained")
    if params.refit:
        x_train, y_train = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
        model = fresh_model(x_train, y_train)
        with stopwatch.phase("fit refit"):
            fit(model, strategy, params, x_train, y_train, None, kept, 0, EpochLog(live, "refit", stopwatch))
    return model, rows, kept, len(x_train)
