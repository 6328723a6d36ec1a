"""The pretrain stage: which words it hides and asks for, and which neighbours each region is
asked for; that it learns either; that the train stage starts from its weights; and that it
costs nothing when off."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

from test_model import PROJECT, VOCAB, make_params  # noqa: E402
from imdb_sentiment.errors import PipelineError  # noqa: E402
from imdb_sentiment.features.text import OOV, PAD  # noqa: E402
from imdb_sentiment.model.body import load_body_weights, save_body_weights  # noqa: E402
from imdb_sentiment.model.classifier import build_model  # noqa: E402
from imdb_sentiment.training.fit import train  # noqa: E402
from imdb_sentiment.training.pretrain import (  # noqa: E402
    HiddenPositions, frequency_loss, mask_tokens, masked_batches, neighbour_batches, neighbour_loss, neighbour_targets,
    pretrain, pretraining_model, target_words,
)

BODY = {"encoder_blocks": 1, "encoder_heads": 2, "position_embedding": "learned", "nb_ngrams": 0,
        "pretrain_objective": "masked_words"}
REGIONS = {"region_filters": 8, "region_width": 3, "pretrain_objective": "neighbours", "pretrain_skip_common": 3,
           "nb_ngrams": 0}


def test_masking_hides_real_words_only_and_asks_only_for_frequent_ones():
    tokens = tf.constant(np.tile(np.r_[np.arange(2, 32), np.zeros(10, int)], (200, 1)), tf.int32)
    masked, targets, weights = (np.asarray(t) for t in mask_tokens(tokens, tf.constant([1, 2], tf.int64), 0.3, 20))
    hidden = masked != np.asarray(tokens)
    assert (masked[hidden] == OOV).all() and not hidden[np.asarray(tokens) == PAD].any()
    assert 0.25 < hidden[:, :30].mean() < 0.35
    asked = weights > 0
    np.testing.assert_array_equal(asked, hidden & (np.asarray(tokens) < 20))
    np.testing.assert_array_equal(targets[asked], np.asarray(tokens)[asked])
    again = np.asarray(mask_tokens(tokens, tf.constant([1, 2], tf.int64), 0.3, 20)[0])
    np.testing.assert_array_equal(again, masked)  # the same seed, the same masks


def test_the_output_layer_reads_the_asked_positions_in_the_order_of_their_targets():
    """Each review repeats one word, so the words its asked positions want are the words it still shows."""
    x = np.repeat(np.random.default_rng(3).integers(2, 20, size=(40, 1)), 16, axis=1).astype(np.int32)
    x[::3, 10:] = PAD
    params = make_params(**BODY, sequence_length=16, pretrain_epochs=1, pretrain_vocabulary=20, pretrain_mask_rate=0.3)
    (masked, asked), targets = next(iter(masked_batches(x, params)))
    masked, asked, targets = np.asarray(masked), np.asarray(asked), np.asarray(targets)
    assert asked.any() and len(targets) == asked.sum() and (masked[asked] == OOV).all()
    per_review = np.split(targets, np.cumsum(asked.sum(axis=1))[:-1])
    for shown, wanted in zip(masked, per_review):
        word = shown[(shown != OOV) & (shown != PAD)][0]
        np.testing.assert_array_equal(wanted, np.full(len(wanted), word))
    vectors = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    picked = np.array([[False, True, False], [True, False, True]])
    np.testing.assert_array_equal(HiddenPositions()(vectors, picked), vectors[picked])


def test_pretraining_learns_to_fill_in_a_word_the_rest_of_the_review_gives_away():
    """Each review repeats one word: a hidden word is told by the others only, through the encoder's attention."""
    rng = np.random.default_rng(0)
    x = np.repeat(rng.integers(2, 42, size=(256, 1)), 16, axis=1).astype(np.int32)
    x[::2, 12:] = PAD
    params = make_params(**BODY, sequence_length=16, pretrain_epochs=8, pretrain_vocabulary=VOCAB,
                         pretrain_learning_rate=0.03, encoder_dropout=0.0)
    _, rows = pretrain(params, x, VOCAB)
    assert rows[-1]["accuracy"] > 0.5  # a guess: 1 in 40
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_the_classifier_starts_from_the_pretrained_body_and_a_mismatch_is_refused(tmp_path):
    params = make_params(**BODY)
    donor = build_model(params, VOCAB)
    save_body_weights(donor, tmp_path / "pretrained", {"epochs": 1})
    x = np.random.default_rng(1).integers(2, VOCAB, size=(48, 12)).astype(np.int32)
    y = np.random.default_rng(2).integers(0, 2, size=48)
    fresh = build_model(params, VOCAB)
    assert load_body_weights(fresh, tmp_path / "pretrained") == len(donor.get_layer("embedding").weights) + len(
        donor.get_layer("positions").weights) + len(donor.get_layer("encoder_1").weights)
    np.testing.assert_array_equal(fresh.get_layer("embedding").get_weights()[0],
                                  donor.get_layer("embedding").get_weights()[0])
    calls = []
    import imdb_sentiment.training.fit as fit_module
    real = fit_module.load_body_weights
    fit_module.load_body_weights = lambda model, folder: calls.append(folder) or real(model, folder)
    try:
        train(make_params(**BODY, pseudo_label_confidence=0.0), x[:36], y[:36], x[36:], y[36:],
              VOCAB, pretrained=tmp_path / "pretrained")
    finally:
        fit_module.load_body_weights = real
    assert calls == [tmp_path / "pretrained"]
    wider = build_model(make_params(**{**BODY, "encoder_blocks": 2}), VOCAB)
    with pytest.raises(PipelineError, match="does not match the classifier's body.*dvc repro pretrain"):
        load_body_weights(wider, tmp_path / "pretrained")
    assert load_body_weights(fresh, tmp_path / "nothing") == 0


def test_a_region_is_asked_for_the_target_words_beyond_its_reach_either_side():
    """Width 3 reaches one word either side; a window of 2 asks for the two words beyond that."""
    params = make_params(**REGIONS, pretrain_window=2, pretrain_regions=4)
    first, count = target_words(params, VOCAB)
    assert (first, count) == (5, min(params.pretrain_vocabulary, VOCAB - 5))  # PAD, OOV and 3 common words skipped
    tokens = tf.constant([[5, 6, 7, 8, 9, 10, 11, 12, 0, 0], [20, 21, 3, 0, 0, 0, 0, 0, 0, 0]], tf.int32)
    asked, targets = (np.asarray(t) for t in neighbour_targets(tokens, tf.constant([1, 2], tf.int64), params, 5, 6))
    row = np.asarray(tokens)[0]
    for step in range(10):  # positions step - 3, step - 2, step + 2, step + 3: ids 5..10 are targets 0..5
        around = [row[i] if 0 <= i < 10 else 0 for i in (step - 3, step - 2, step + 2, step + 3)]
        np.testing.assert_array_equal(targets[0, step], [w - 5 if 5 <= w < 11 else -1 for w in around])
    assert asked[0].sum() == 4 and not asked[0, 8:].any()  # four regions of eight real words
    # The second review: 3 is a common word, 20 and 21 are no targets, nothing lies two beyond: nothing asked.
    assert not asked[1].any()
    again = np.asarray(neighbour_targets(tokens, tf.constant([1, 2], tf.int64), params, 5, 6)[0])
    np.testing.assert_array_equal(again, asked)  # the same seed, the same regions
    other = np.asarray(neighbour_targets(tokens, tf.constant([1, 3], tf.int64), params, 5, 6)[0])
    assert other[0].sum() == 4 and (other != asked).any()
    wider = make_params(**{**REGIONS, "region_width": 5}, bigram_buckets=50, pretrain_window=1)
    np.testing.assert_array_equal(np.asarray(neighbour_targets(tokens, tf.constant([1, 2], tf.int64), wider, 5, 6)[1])[0, 4],
                                  [0, -1])  # reach 2 + 1 for the pair: positions 0 (word 5: target 0) and 8 (padding)


def test_the_neighbour_loss_is_the_cross_entropy_against_the_bag_of_neighbours():
    logits = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    targets = np.array([[0, 0, 2, -1], [5, -1, -1, -1], [1, 2, 3, 4]])
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    bags = np.zeros((3, 6))
    for row, ids in enumerate(targets):
        for i in ids[ids >= 0]:
            bags[row, i] += 1
    expected = -(bags / bags.sum(axis=1, keepdims=True) * log_p).sum(axis=1)
    np.testing.assert_allclose(np.asarray(neighbour_loss(tf.constant(targets), tf.constant(logits))), expected, rtol=1e-5)
    x = np.array([[5, 5, 6, 2, 0], [7, 5, 1, 0, 0]])
    share = np.array([3, 1, 1]) / 5  # ids 5, 6, 7; 2 and 1 are no targets, 0 is padding
    assert frequency_loss(x, 5, 3) == pytest.approx(-(share * np.log(share)).sum())


def test_neighbour_pretraining_learns_what_a_region_says_of_the_words_around_it():
    """Each review's words come from one of four topics of 20 words: a region tells its topic and so
    which words lie around it (a guess among 20, not 80)."""
    rng = np.random.default_rng(0)
    topics = rng.integers(0, 4, size=512)
    x = (5 + 20 * topics[:, None] + rng.integers(0, 20, size=(512, 24))).astype(np.int32)
    x[::3, 18:] = PAD
    params = make_params(**REGIONS, sequence_length=24, pretrain_epochs=20, pretrain_vocabulary=80,
                         pretrain_learning_rate=0.03)
    first, count = target_words(params, VOCAB)
    (tokens, asked), targets = next(iter(neighbour_batches(x, params, first, count)))
    assert len(targets) == np.asarray(asked).sum() <= 16 * len(tokens)
    _, rows = pretrain(params, x, VOCAB)
    assert rows[-1]["frequency_loss"] == pytest.approx(np.log(80), abs=0.02)
    assert rows[-1]["loss"] < np.log(20) + 0.3 < rows[0]["frequency_loss"] - 1.0


def test_the_classifier_starts_from_the_pretrained_words_and_regions(tmp_path):
    params = make_params(**REGIONS, pretrain_epochs=1)
    donor = pretraining_model(params, VOCAB)
    save_body_weights(donor, tmp_path / "pretrained", {"epochs": 1})
    fresh = build_model(params, VOCAB)
    assert load_body_weights(fresh, tmp_path / "pretrained") == 3  # the embedding, the convolution's kernel and bias
    for name in ("embedding", "regions"):
        for got, wanted in zip(fresh.get_layer(name).get_weights(), donor.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, wanted)


def test_pretraining_needs_encoder_blocks_and_the_mask():
    with pytest.raises(PipelineError, match="pretrain_epochs must be 0 with encoder_blocks 0 and pretrain_objective "
                                            "masked_words .* choose pretrain_objective neighbours"):
        make_params(pretrain_epochs=1, encoder_blocks=0, pretrain_objective="masked_words")
    with pytest.raises(PipelineError, match="pretrain_objective must be masked_words with encoder_blocks > 0"):
        make_params(**{**BODY, "pretrain_objective": "neighbours"}, pretrain_epochs=1)
    with pytest.raises(PipelineError, match="region_width must be odd"):
        make_params(region_filters=4, region_width=4)
    # a vocabulary smaller than the common words to skip keeps half its words as targets
    assert target_words(make_params(**{**REGIONS, "pretrain_skip_common": 200}), VOCAB) == (51, 49)
    with pytest.raises(PipelineError, match="the vocabulary holds 1 words: too few to predict; raise max_features"):
        target_words(make_params(**REGIONS), 3)
    with pytest.raises(PipelineError, match="pretrain_epochs must be 0 with use_mask false"):
        make_params(**BODY, pretrain_epochs=1, use_mask=False)


def test_the_stage_off_writes_no_weights_and_imports_no_tensorflow(tmp_path):
    from conftest import committed_params_text

    (tmp_path / "params.yaml").write_text(re.sub(r"(?m)^pretrain_epochs: \d+", "pretrain_epochs: 0",
                                                 committed_params_text()))
    code = ("import runpy, sys; sys.argv = ['pretrain.py', 'vectorized', 'pretrained', 'pretrain.json']; "
            f"runpy.run_path({str(PROJECT / 'stages' / 'pretrain.py')!r}, run_name='__main__'); "
            "assert 'tensorflow' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "pretrain: off (pretrain_epochs 0)"
    assert sorted(p.name for p in (tmp_path / "pretrained").iterdir()) == ["pretraining.json"]
    assert json.loads((tmp_path / "pretrain.json").read_text()) == {"epochs": 0}


def test_a_pretraining_too_big_for_the_machine_is_refused_naming_its_params():
    from imdb_sentiment.training.memory import GIB, check_memory

    params = make_params(**BODY, sequence_length=800, pretrain_epochs=1, pretrain_vocabulary=20000)
    with pytest.raises(PipelineError, match=r"the pretrain stage would need about .* GiB .* lower pretrain_vocabulary "
                                            r"\(20000\) or sequence_length \(800\)"):
        check_memory(params, available=8 * GIB)
    check_memory(make_params(**BODY, sequence_length=800, pretrain_epochs=0, pretrain_vocabulary=20000),
                 available=8 * GIB)  # off: nothing to check for it
    # neighbours: the output layer reads pretrain_regions positions a review, not a share of them
    check_memory(make_params(**REGIONS, sequence_length=800, pretrain_epochs=1, pretrain_vocabulary=20000),
                 available=8 * GIB)
