"""Training: seeding for reproducible runs, the input pipeline, the fit itself."""

from __future__ import annotations

import os
import random

import keras
import numpy as np
import tensorflow as tf

from imdb_sentiment import history
from imdb_sentiment.model import build_model, compile_model
from imdb_sentiment.params import Params


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops deterministic."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int | None = None) -> tf.data.Dataset:
    """Batches of (token ids, labels as float32 column); reshuffled every epoch when seeded."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y.astype(np.float32)[:, None]))
    if seed is not None:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train(params: Params, x_train, y_train, x_val, y_val, vocabulary_size: int):
    """Build, compile and fit the classifier; return it with its per-epoch history rows."""
    set_seed(params.seed)
    model = build_model(params, vocabulary_size)
    compile_model(model, params.learning_rate)
    fit = model.fit(
        batches(x_train, y_train, params.batch_size, seed=params.seed),
        validation_data=batches(x_val, y_val, params.batch_size),
        epochs=params.epochs,
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=2,
    )
    return model, history.from_keras(fit.history)
