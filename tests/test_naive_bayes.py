"""The Naive-Bayes n-gram branch: which n-grams a review holds, the log-count ratios, the logit
it adds, and how it joins the classifier and its training."""

from __future__ import annotations

import os
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from imdb_sentiment.model.classifier import build_model  # noqa: E402
from imdb_sentiment.model.naive_bayes import NaiveBayesNgrams, naive_bayes_ratios  # noqa: E402
from imdb_sentiment.training.fit import train  # noqa: E402

from test_model import VOCAB, make_params  # noqa: E402

BUCKETS = 1 << 20  # no collisions among the few n-grams below


def layer(max_n=3, scale=1.0, buckets=BUCKETS, folds=0):
    nb = NaiveBayesNgrams(buckets, max_n, scale, folds)
    nb.build((None, None))
    return nb


def distinct_ids(nb, tokens):
    ids = np.asarray(nb.ngram_ids(np.array([tokens])))[0]
    return sorted(ids[ids >= 0].tolist())


def test_each_distinct_ngram_of_a_review_counts_once_and_padding_none():
    nb = layer()
    review = [5, 6, 5, 6, 7]  # "5 6" twice; n-grams: 3 words, 3 pairs, 3 triples (distinct)
    ids = distinct_ids(nb, review + [0, 0, 0])
    assert len(ids) == len(set(ids)) == 3 + 3 + 3
    assert ids == distinct_ids(nb, review)  # trailing padding adds nothing
    words = {t % BUCKETS for t in review}
    assert words <= set(ids)


def test_order_matters_within_an_ngram_and_orders_stay_apart():
    nb = layer(max_n=2)
    assert distinct_ids(nb, [5, 6]) != distinct_ids(nb, [6, 5])
    assert set(distinct_ids(nb, [5, 6])) - {5, 6} != set(distinct_ids(nb, [6, 5])) - {5, 6}
    assert len(distinct_ids(layer(max_n=1), [5, 6, 5])) == 2


def test_ratios_are_the_smoothed_log_count_ratios_of_reviews_holding_each_ngram():
    nb = layer(max_n=1, buckets=16)
    x = np.array([[3, 3, 4, 0], [3, 5, 0, 0], [4, 0, 0, 0]])  # word 3 twice in one review: once
    y = np.array([1, 1, 0])
    ratios = naive_bayes_ratios(nb, x, y, smoothing=1.0)
    positive = Counter({3: 2, 4: 1, 5: 1})
    negative = Counter({4: 1})
    p = np.array([1.0 + positive[i] for i in range(16)])
    q = np.array([1.0 + negative[i] for i in range(16)])
    expected = np.log((p / p.sum()) / (q / q.sum()))
    np.testing.assert_allclose(ratios, expected, rtol=1e-6)
    assert ratios[3] > ratios[5] > 0 > ratios[4]


def test_logit_is_the_scaled_sum_of_ratio_times_weight_over_distinct_ngrams_over_their_root_count():
    nb = layer(max_n=2, scale=2.5, buckets=64)
    rng = np.random.default_rng(0)
    nb.set_ratios(rng.normal(size=64))
    nb.table.assign(rng.normal(size=(64, 1)).astype("float32"))
    tokens = np.array([[7, 8, 7, 8, 0, 0], [9, 0, 0, 0, 0, 0]])
    ratios, weights = np.asarray(nb.ratios)[:, 0], np.asarray(nb.table)[:, 0]
    expected = [2.5 * sum(ratios[i] * weights[i] for i in distinct_ids(nb, row)) / len(distinct_ids(nb, row)) ** 0.5
                for row in tokens]
    np.testing.assert_allclose(np.asarray(nb(tokens))[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(nb(tokens[:, :4])), np.asarray(nb(tokens)), rtol=1e-6)


def test_the_branch_joins_the_classifier_only_when_asked():
    with_branch = build_model(make_params(nb_ngrams=2, nb_buckets=128, nb_scale=3.0), VOCAB)
    branch = with_branch.get_layer("naive_bayes")
    assert (branch.buckets, branch.max_n, branch.scale) == (128, 2, 3.0)
    assert with_branch.get_layer("logits").output.shape == (None, 1)
    without = build_model(make_params(nb_ngrams=0), VOCAB)
    assert "naive_bayes" not in [layer.name for layer in without.layers]


def test_training_counts_the_ratios_on_the_labelled_training_reviews_and_learns_the_weights():
    """Word 3 marks the positive reviews, word 4 the negative ones; the branch's ratios say so
    (counted on the training reviews only) and training moves its weights from 0."""
    rng = np.random.default_rng(1)
    x = rng.integers(5, VOCAB, size=(64, 12)).astype(np.int32)
    y = rng.integers(0, 2, size=64)
    x[:, 0] = np.where(y == 1, 3, 4)
    params = make_params(nb_ngrams=1, nb_buckets=VOCAB, sequence_length=12, pseudo_label_confidence=0.0)
    model = train(params, x[:48], y[:48], x[48:], y[48:], VOCAB)[0]
    branch = model.get_layer("naive_bayes")
    expected = naive_bayes_ratios(branch, x[:48], y[:48])
    np.testing.assert_allclose(np.asarray(branch.ratios)[:, 0], expected, rtol=1e-6)
    assert expected[3] > 1 and expected[4] < -1
    assert np.abs(np.asarray(branch.table)).max() > 0


@pytest.mark.parametrize("bad", [{"nb_ngrams": -1}, {"nb_buckets": 0}, {"nb_scale": 0}])
def test_bad_branch_params_fail_naming_the_key(bad):
    from imdb_sentiment.errors import PipelineError

    with pytest.raises(PipelineError, match=next(iter(bad))):
        make_params(**bad)


def test_self_trained_model_counts_its_ratios_on_the_pseudo_labelled_reviews_too():
    """Word 2 occurs in unlabeled reviews only: the first model's ratios know nothing of it,
    the self-trained model's (counted on training and pseudo-labelled reviews) do."""
    rng = np.random.default_rng(2)
    x = rng.integers(5, VOCAB, size=(48, 12)).astype(np.int32)
    y = rng.integers(0, 2, size=48)
    x[:, 0] = np.where(y == 1, 3, 4)
    unlabeled = rng.integers(5, VOCAB, size=(32, 12)).astype(np.int32)
    unlabeled[:, 0], unlabeled[:, 1] = 3, 2  # all pseudo-labelled positive, with word 2
    params = make_params(nb_ngrams=1, nb_buckets=VOCAB, sequence_length=12, epochs=3, learning_rate=0.05,
                         pseudo_label_confidence=0.5)
    self_trained, _, _, trained_on = train(params, x[:36], y[:36], x[36:], y[36:], VOCAB, x_unlabeled=unlabeled)
    assert trained_on > 36
    branch = self_trained.get_layer("naive_bayes")
    before = naive_bayes_ratios(branch, x[:36], y[:36])  # what the first model was given
    after = np.asarray(branch.ratios)[:, 0]
    assert before[2] == pytest.approx(before[1])  # word 2: as unseen as word 1, which no review holds
    assert after[2] > after[1] + 0.5  # seen, in pseudo-labelled positive reviews


def test_cross_fitted_training_ratios_are_counted_without_the_review_s_fold():
    """With folds, a training review meets the ratios of the other folds' reviews (so n-grams
    seen only in it say nothing of its label); inference uses the ratios of all reviews."""
    from imdb_sentiment.model.naive_bayes import cross_fitted_ratios, ngram_counts

    rng = np.random.default_rng(3)
    x = rng.integers(5, VOCAB, size=(60, 10)).astype(np.int32)
    x[::3, 7:] = 0  # some shorter reviews
    y = rng.integers(0, 2, size=60)
    folded, plain = layer(max_n=2, buckets=128, folds=3), layer(max_n=2, buckets=128)
    folds = np.asarray(folded.fold_of(x))
    assert set(folds) == {0, 1, 2}
    np.testing.assert_array_equal(np.asarray(folded.fold_of(x[::3, :7])), folds[::3])  # padding cut off: same fold
    counts = ngram_counts(folded, x, y)
    assert counts.shape == (3, 2, 128)
    ratios, fold_ratios = cross_fitted_ratios(counts)
    np.testing.assert_allclose(ratios, naive_bayes_ratios(plain, x, y), rtol=1e-6)
    for k in range(3):
        np.testing.assert_allclose(fold_ratios[k], naive_bayes_ratios(plain, x[folds != k], y[folds != k]), rtol=1e-6)
    folded.set_ratios(ratios, fold_ratios)
    folded.table.assign(rng.normal(size=(128, 1)).astype("float32"))
    for k in range(3):
        plain.set_ratios(fold_ratios[k])
        plain.table.assign(np.asarray(folded.table))
        np.testing.assert_allclose(np.asarray(folded(x[folds == k], training=True)),
                                   np.asarray(plain(x[folds == k])), rtol=1e-5, atol=1e-6)
    plain.set_ratios(ratios)
    np.testing.assert_allclose(np.asarray(folded(x, training=False)), np.asarray(plain(x)), rtol=1e-5, atol=1e-6)


def test_training_cross_fits_and_the_saved_classifier_keeps_no_fold_ratios(tmp_path):
    from imdb_sentiment.model.saving import load_classifier, save_model

    rng = np.random.default_rng(4)
    x = rng.integers(5, VOCAB, size=(64, 12)).astype(np.int32)
    y = rng.integers(0, 2, size=64)
    x[:, 0] = np.where(y == 1, 3, 4)
    params = make_params(nb_ngrams=1, nb_buckets=VOCAB, nb_folds=4, sequence_length=12, pseudo_label_confidence=0.0)
    model = train(params, x[:48], y[:48], x[48:], y[48:], VOCAB)[0]
    branch = model.get_layer("naive_bayes")
    np.testing.assert_allclose(np.asarray(branch.ratios)[:, 0], naive_bayes_ratios(branch, x[:48], y[:48]), rtol=1e-6)
    assert np.asarray(branch.fold_ratios).shape == (VOCAB, 4)
    save_model(model, ["", "[UNK]"] + [f"w{i}" for i in range(VOCAB - 2)], 12, 1, tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")
    assert loaded.get_layer("naive_bayes").folds == 0
    assert not any("fold_ratios" in w.path for w in loaded.weights)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_one_fold_is_refused_naming_the_key():
    from imdb_sentiment.errors import PipelineError

    with pytest.raises(PipelineError, match="nb_folds must be 0 .* or at least 2"):
        make_params(nb_folds=1)
