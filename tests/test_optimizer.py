"""LazyAdamW: the embedding rows a step looked up get AdamW's update, the others nothing (not
even their moments' decay); every other weight gets exactly AdamW's update; in a model, the rows
of words and word pairs a batch does not contain stay as they were."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from imdb_sentiment.model.classifier import build_model, compile_model  # noqa: E402
from imdb_sentiment.model.optimizer import LazyAdamW, check_keras_internals  # noqa: E402
from test_model import VOCAB, make_params  # noqa: E402

BUCKETS = 512
# Token 2 twice in a review and in both: its gradient rows must be summed before Adam sees them.
BATCH = np.array([[2, 3, 2, 4, 0], [5, 2, 6, 0, 0]], dtype=np.int32)
LABELS = np.array([[1.0], [0.0]], dtype=np.float32)
SEEN_WORDS = [2, 3, 4, 5, 6]


def trained_on_batch(lazy: bool, weight_decay: float) -> keras.Model:
    """A seeded model after one step on ``BATCH`` (which also builds the optimizer's moments)."""
    keras.utils.set_random_seed(3)
    model = build_model(make_params(bigram_buckets=BUCKETS, dropout=0.0), VOCAB)
    compile_model(model, learning_rate=0.01, weight_decay=weight_decay, lazy_updates=lazy)
    model.train_on_batch(BATCH, LABELS)
    return model


@pytest.mark.parametrize("weight_decay", [0.0, 1.0])
def test_rows_looked_up_get_adamw_updates_of_their_summed_gradient(weight_decay):
    """Against Keras's AdamW on the same gradients made dense: rows looked up at every step agree
    with it, rows never looked up stay as they were (AdamW decays them), and a row looked up
    only in the first step stops there (AdamW lets it drift on its momentum). Row 1 is looked
    up twice a step: its gradients are summed, as in the dense gradient."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 3)).astype("float32")
    steps = [([1, 1, 3, 5], rng.normal(size=(4, 3))), ([1, 3, 1], rng.normal(size=(3, 3))),
             ([3, 1], rng.normal(size=(2, 3)))]
    lazy_table, dense_table = keras.Variable(start), keras.Variable(start)
    lazy, dense = LazyAdamW(0.01, weight_decay=weight_decay), keras.optimizers.AdamW(0.01, weight_decay=weight_decay)
    for rows, values in steps:
        gradient = tf.IndexedSlices(tf.constant(values, "float32"), tf.constant(rows), tf.constant([6, 3]))
        lazy.apply([gradient], [lazy_table])
        dense.apply([tf.convert_to_tensor(gradient)], [dense_table])
        if rows == [1, 1, 3, 5]:
            after_first = np.asarray(lazy_table)[5].copy()
    lazy_table, dense_table = np.asarray(lazy_table), np.asarray(dense_table)
    np.testing.assert_allclose(lazy_table[[1, 3]], dense_table[[1, 3]], rtol=1e-5)
    np.testing.assert_array_equal(lazy_table[[0, 2, 4]], start[[0, 2, 4]])
    np.testing.assert_array_equal(lazy_table[5], after_first)
    assert not np.allclose(dense_table[5], after_first)
    if weight_decay:
        np.testing.assert_allclose(dense_table[[0, 2, 4]], start[[0, 2, 4]] * (1 - 0.01 * weight_decay) ** 3, rtol=1e-5)


@pytest.mark.parametrize("weight_decay", [0.0, 1.0])
def test_weights_with_dense_gradients_get_exactly_adamw_updates(weight_decay):
    rng = np.random.default_rng(1)
    start = rng.normal(size=(4, 3)).astype("float32")
    a, b = keras.Variable(start), keras.Variable(start)
    lazy, dense = LazyAdamW(0.01, weight_decay=weight_decay), keras.optimizers.AdamW(0.01, weight_decay=weight_decay)
    for _ in range(3):
        gradient = tf.constant(rng.normal(size=(4, 3)), "float32")
        lazy.apply([gradient], [a])
        dense.apply([gradient], [b])
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


@pytest.mark.parametrize("weight_decay", [0.0, 1.0])
def test_rows_not_looked_up_keep_their_values_and_moments(weight_decay):
    """AdamW would move them (decay, and momentum from earlier steps); the lazy update does not."""
    model = trained_on_batch(True, weight_decay)
    words, table = model.get_layer("embedding").embeddings, model.get_layer("bigrams").table
    moments = {v.path: v for v in model.optimizer.variables if "embeddings" in v.path or "table" in v.path}
    before = {name: np.asarray(v).copy() for name, v in [("words", words), ("pairs", table), *moments.items()]}
    other = np.array([[7, 8, 9, 0, 0], [10, 11, 0, 0, 0]], dtype=np.int32)
    model.train_on_batch(other, LABELS)

    untouched_words = [w for w in range(VOCAB) if w not in (0, 7, 8, 9, 10, 11)]  # 0: padding, looked up too
    ids, _ = model.get_layer("bigrams").pair_ids(other)  # every step's row is looked up, pair or not
    untouched_pairs = np.setdiff1d(np.arange(BUCKETS), np.asarray(ids))
    np.testing.assert_array_equal(np.asarray(words)[untouched_words], before["words"][untouched_words])
    np.testing.assert_array_equal(np.asarray(table)[untouched_pairs], before["pairs"][untouched_pairs])
    for name, variable in moments.items():
        rows = untouched_pairs if "table" in name else untouched_words
        np.testing.assert_array_equal(np.asarray(variable)[rows], before[name][rows], err_msg=name)
    assert not np.allclose(np.asarray(words)[[7, 8]], before["words"][[7, 8]])  # the batch's words moved
    # AdamW moves what the lazy update leaves: the first batch's rows drift on their momentum.
    dense = trained_on_batch(False, weight_decay)
    drifting = np.asarray(dense.get_layer("embedding").embeddings)[SEEN_WORDS].copy()
    dense.train_on_batch(other, LABELS)
    assert not np.allclose(np.asarray(dense.get_layer("embedding").embeddings)[SEEN_WORDS], drifting)


def test_config_round_trip_keeps_the_weight_decay():
    optimizer = LazyAdamW(0.003, weight_decay=0.5, epsilon=1e-6)
    again = LazyAdamW.from_config(optimizer.get_config())
    assert (again.decoupled_weight_decay, again.epsilon) == (0.5, 1e-6)
    assert again.weight_decay is None  # Keras's own, whole-table decay stays off
    assert float(again.learning_rate) == pytest.approx(0.003)


def test_amsgrad_is_refused():
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdamW(amsgrad=True)


def test_the_keras_internals_lazy_updates_rely_on_are_there():
    """LazyAdamW reads Adam's private moments and is handed row-wise gradients by Keras's
    training step: if a Keras release changes either, this says so by name instead of training
    silently differently (requirements.lock pins the Keras it was tested with)."""
    seen = []
    original = LazyAdamW._update_rows

    def record(self, gradient, variable, learning_rate):
        seen.append(tuple(variable.shape))  # once a trace, not once a step
        original(self, gradient, variable, learning_rate)

    LazyAdamW._update_rows = record  # before the training step is traced
    try:
        model = trained_on_batch(True, 1.0)  # builds the optimizer: the check in build() passed
    finally:
        LazyAdamW._update_rows = original
    check_keras_internals(model.optimizer, model.trainable_variables)
    tables = [tuple(v.shape) for v in (model.get_layer("embedding").embeddings, model.get_layer("bigrams").table,
                                       model.get_layer("naive_bayes").table)]
    assert set(seen) == set(tables), (
        f"Keras {keras.__version__} no longer hands the embedding tables' gradients to "
        f"update_step as tf.IndexedSlices (row-wise updates saw {seen}): LazyAdamW would update "
        "every row, like AdamW")


def test_a_keras_without_those_internals_gets_a_clear_error():
    optimizer = LazyAdamW(0.01)
    variable = keras.Variable(np.zeros((3, 2), "float32"))
    optimizer.build([variable])
    del optimizer._velocities
    with pytest.raises(RuntimeError, match=r"relies on keras.optimizers.Adam's _velocities, which Keras .* "
                                           r"install the versions in requirements.lock"):
        check_keras_internals(optimizer, [variable])
