"""The pretrain stage: which words it hides and asks for, that it learns to fill them in, that
the train stage starts from its weights, and that it is off (and cheap) by default."""

from __future__ import annotations

import json
import os
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
from imdb_sentiment.training.pretrain import HiddenPositions, mask_tokens, masked_batches, pretrain  # noqa: E402

BODY = {"encoder_blocks": 1, "encoder_heads": 2, "position_embedding": "learned", "nb_ngrams": 0}


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


def test_pretraining_needs_encoder_blocks_and_the_mask():
    with pytest.raises(PipelineError, match="pretrain_epochs must be 0 with encoder_blocks 0"):
        make_params(pretrain_epochs=1, encoder_blocks=0)
    with pytest.raises(PipelineError, match="pretrain_epochs must be 0 with use_mask false"):
        make_params(pretrain_epochs=1, encoder_blocks=1, encoder_heads=2, use_mask=False)


def test_the_stage_is_off_by_default_writes_no_weights_and_imports_no_tensorflow(tmp_path):
    from conftest import committed_params_text

    (tmp_path / "params.yaml").write_text(committed_params_text())
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
