"""The classifier and the saved model: padding invariance, the use_mask switch, saving and
loading in a fresh process (the SavedModel in one that cannot import this package), one sigmoid
in the served probability, weights saved once and without optimizer state, reproducible training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

from conftest import committed_params_text  # noqa: E402
from imdb_sentiment.model.classifier import build_model, compile_model  # noqa: E402
from imdb_sentiment.model.naive_bayes import naive_bayes_ratios  # noqa: E402
from imdb_sentiment.params import parse_params  # noqa: E402
from imdb_sentiment.model.saving import load_classifier, save_model  # noqa: E402
from imdb_sentiment.model.embeddings import HashedBigramEmbedding, PositionEmbedding, RegionEmbedding  # noqa: E402
from imdb_sentiment.training.fit import kept_epoch, train  # noqa: E402
from imdb_sentiment.features.text import Standardization, adapt, make_vectorizer, vectorize, vocabulary  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
VOCAB = 100
# The word-level model: regions and their pretraining (the defaults) are asked for by the tests about them.
TINY = {"max_features": VOCAB, "sequence_length": 40, "embedding_dim": 8, "embed_dim": 8, "num_heads": 2,
        "batch_size": 16, "epochs": 1, "bigram_buckets": 0, "nb_buckets": 512, "position_embedding": "none",
        "patience": 0, "region_filters": 0, "pretrain_epochs": 0}


def make_params(**overrides):
    raw = yaml.safe_load(committed_params_text())
    raw.update(TINY)
    raw.update(overrides)
    return parse_params(raw)


def _python(code: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> None:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, f"subprocess failed ({process.returncode})\n{stdout}\n{stderr}"


def _padded(reviews: list[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(reviews), length), dtype=np.int32)
    for row, review in enumerate(reviews):
        out[row, :len(review)] = review
    return out


def _reviews():
    rng = np.random.default_rng(0)
    return [rng.integers(2, VOCAB, size=30), rng.integers(2, VOCAB, size=12)]


def test_padding_does_not_change_logit_or_pooled_vector_with_mask():
    keras.utils.set_random_seed(1)
    model = build_model(make_params(use_mask=True), VOCAB)
    pooled = keras.Model(model.input, model.get_layer("attention").output)
    reviews = _reviews()
    unpadded = model(reviews[0][None, :].astype(np.int32), training=False).numpy()
    x250, x500 = _padded(reviews, 250), _padded(reviews, 500)
    logits250 = model(x250, training=False).numpy()
    logits500 = model(x500, training=False).numpy()
    assert logits250.shape == (2, 1)
    np.testing.assert_allclose(logits250, logits500, atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits250[:1], unpadded, atol=1e-5, rtol=0)
    np.testing.assert_allclose(pooled(x250, training=False).numpy(), pooled(x500, training=False).numpy(),
                               atol=1e-5, rtol=0)


def test_without_mask_padding_takes_part():
    keras.utils.set_random_seed(1)
    model = build_model(make_params(use_mask=False), VOCAB)
    pooled = keras.Model(model.input, model.get_layer("attention").output)
    reviews = _reviews()
    x250, x500 = _padded(reviews, 250), _padded(reviews, 500)
    logits250 = model(x250, training=False).numpy()
    logits500 = model(x500, training=False).numpy()
    assert np.abs(logits250 - logits500).max() > 1e-4
    assert np.abs(pooled(x250, training=False).numpy() - pooled(x500, training=False).numpy()).max() > 1e-4


def test_average_pooling_is_the_plain_mean_of_the_real_tokens_vectors():
    """The ablation (``pooling: average``): no attention layer; the pooled vector is the mean of
    the word (and pair) vectors over the real tokens, whatever the padding."""
    keras.utils.set_random_seed(1)
    model = build_model(make_params(pooling="average", bigram_buckets=50), VOCAB)
    names = [layer.name for layer in model.layers]
    assert "attention" not in names and "average" in names
    vectors = keras.Model(model.input, model.get_layer("words_and_pairs").output)
    pooled = keras.Model(model.input, model.get_layer("average").output)
    reviews = _reviews()
    x40, x80 = _padded(reviews, 40), _padded(reviews, 80)
    np.testing.assert_allclose(pooled(x40).numpy(), pooled(x80).numpy(), atol=1e-6, rtol=0)
    for row, review in enumerate(reviews):
        mean = vectors(x40[row:row + 1]).numpy()[0, :len(review)].mean(axis=0)
        np.testing.assert_allclose(pooled(x40).numpy()[row], mean, atol=1e-6, rtol=0)


def test_model_layers_follow_params():
    model = build_model(make_params(embed_dim=12, num_heads=3, attention_dropout=0.1, dropout=0.3), VOCAB)
    attention = model.get_layer("attention")
    assert (attention.embed_dim, attention.num_heads, attention.dropout) == (12, 3, 0.1)
    assert model.get_layer("embedding").input_dim == VOCAB
    assert model.get_layer("dropout").rate == 0.3
    assert model.output_shape == (None, 1)
    assert model.get_layer("logit").get_config()["activation"] == "linear"  # logits, no sigmoid


TEXTS = ["a great film, great cast", "an awful film, awful plot", "great fun and a great story",
         "awful, boring and long", "I loved it<br />great", "I hated it. Awful!", "not great, not fun",
         "not awful at all"]
LABELS = np.array([1, 0, 1, 0, 1, 0, 0, 1])


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A trained (compiled) classifier saved by :func:`save_model`; its outputs in this process,
    the classifier loaded in a fresh process, and the SavedModel served in a fresh process that
    cannot import this package. Its vocabulary marks negations, which the SavedModel must do too."""
    tmp = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(2)
    params = make_params(sequence_length=16)
    standardize = Standardization(negation_scope=2)
    vectorizer = make_vectorizer(params.max_features, params.sequence_length, standardize=standardize)
    adapt(vectorizer, TEXTS)
    vocab = vocabulary(vectorizer)
    assert {"not_great", "not_awful", "not_at"} <= set(vocab)
    x = vectorize(vectorizer, TEXTS)
    model = build_model(params, len(vocab))
    nb = model.get_layer("naive_bayes")  # the defaults' n-gram branch, its ratios (and so its weights) set
    nb.set_ratios(naive_bayes_ratios(nb, x, LABELS))
    compile_model(model, learning_rate=0.01)
    model.fit(x, LABELS.astype("float32")[:, None], epochs=2, batch_size=3, verbose=0)
    save_model(model, vocab, params.sequence_length, params.ngrams, tmp / "model", standardize)
    np.save(tmp / "tokens.npy", x)
    (tmp / "reviews.json").write_text(json.dumps(TEXTS))
    classifier = _python("""
        import numpy as np
        from imdb_sentiment.model.saving import load_classifier
        np.save("loaded_logits.npy", load_classifier("model").predict(np.load("tokens.npy"), verbose=0))
    """, cwd=tmp)
    served = _python("""
        import json, sys
        sys.modules["imdb_sentiment"] = None  # as on a server that has TensorFlow only
        try:
            import imdb_sentiment
        except ImportError:
            pass
        else:
            raise SystemExit("the package is importable")
        import numpy as np
        import tensorflow as tf
        serve = tf.saved_model.load("model").signatures["serving_default"]
        reviews = json.load(open("reviews.json"))
        np.save("served.npy", serve(reviews=tf.constant(reviews))["probability"].numpy())
    """, cwd=tmp)
    _finish(classifier)
    _finish(served)
    return {
        "model": model, "vectorizer": vectorizer, "x": x, "folder": tmp / "model", "weights": model.weights,
        "logits": model.predict(x, verbose=0),
        "loaded_logits": np.load(tmp / "loaded_logits.npy"),
        "served": np.load(tmp / "served.npy"),
    }


def test_classifier_saves_and_loads_in_a_fresh_process(saved_models):
    logits, loaded = saved_models["logits"], saved_models["loaded_logits"]
    assert loaded.shape == logits.shape == (len(TEXTS), 1)
    np.testing.assert_allclose(loaded, logits, atol=1e-6, rtol=0)
    assert np.ptp(logits) > 1e-3  # distinct outputs, so a wrongly restored model would show


def test_saved_model_serves_raw_text_without_the_package_with_one_sigmoid(saved_models):
    served = saved_models["served"]
    tokens = vectorize(saved_models["vectorizer"], TEXTS)
    np.testing.assert_array_equal(tokens, saved_models["x"])
    logits = saved_models["model"](tokens, training=False).numpy()[:, 0]
    sigmoid = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    assert served.shape == (len(TEXTS),)
    np.testing.assert_allclose(served, sigmoid, atol=1e-6, rtol=0)  # each batch padded to its longest only
    twice = 1.0 / (1.0 + np.exp(-sigmoid))
    assert np.abs(served - twice).max() > 1e-3
    assert np.all((served > 0) & (served < 1))


def test_saved_model_holds_the_weights_once_and_no_optimizer_state(saved_models):
    folder = saved_models["folder"]
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in saved_models["weights"])
    stored = tf.train.list_variables(str(folder / "variables" / "variables"))
    assert sorted(shape for _, shape in stored if shape) == sorted(list(w.shape) for w in saved_models["weights"])
    assert not any("optimizer" in name for name, _ in stored)
    # the weights, plus a few KiB describing the object graph (constant, whatever the weights' size)
    assert (folder / "variables" / "variables.data-00000-of-00001").stat().st_size < weight_bytes + 16384
    assert not (folder / "assets").exists()


def test_loading_a_folder_that_is_no_model_names_it(tmp_path):
    from imdb_sentiment.errors import PipelineError

    with pytest.raises(PipelineError, match=f"model {tmp_path} not found"):
        load_classifier(tmp_path)
    (tmp_path / "saved_model.pb").write_text("not a SavedModel\n")
    (tmp_path / "classifier.json").write_text("{}\n")
    with pytest.raises(PipelineError, match="not a valid model folder"):
        load_classifier(tmp_path)


def _permuted_first_review():
    review = _reviews()[0]
    return _padded([review, review[::-1]], 40)


def test_without_position_embedding_word_order_does_not_matter():
    keras.utils.set_random_seed(1)
    model = build_model(make_params(position_embedding="none"), VOCAB)
    logits = model(_permuted_first_review(), training=False).numpy()
    np.testing.assert_allclose(logits[0], logits[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_position_embedding_makes_word_order_matter_and_keeps_the_mask(kind):
    keras.utils.set_random_seed(1)
    # Self-attention: a learned query at zero weighs every position alike, and the average of
    # (word + position) vectors is the same in any order.
    model = build_model(make_params(position_embedding=kind, pooling="attention"), VOCAB)
    positions = model.get_layer("positions")
    assert positions.kind == kind
    if kind == "learned":  # as after training: its initial values are too small to show
        positions.positions.assign(np.random.default_rng(0).normal(size=positions.positions.shape))
    logits = model(_permuted_first_review(), training=False).numpy()
    assert abs(logits[0, 0] - logits[1, 0]) > 1e-5
    review = _reviews()[0][None, :].astype(np.int32)
    np.testing.assert_allclose(model(_padded([review[0]], 40), training=False).numpy(),
                               model(review, training=False).numpy(), atol=1e-5, rtol=0)


def test_sinusoidal_positions_are_the_transformer_formula():
    table = np.asarray(PositionEmbedding.sinusoids(7, 6))
    position, i = 5, 2  # column 2i is sin(pos / 10000^(2i/d)), column 2i + 1 the cos
    angle = position / 10000 ** (2 * i / 6)
    np.testing.assert_allclose(table[position, 2 * i:2 * i + 2], [np.sin(angle), np.cos(angle)], atol=1e-6)
    assert np.count_nonzero(table[0, 1::2] - 1.0) == 0


def test_models_with_bigrams_regions_position_embeddings_and_encoder_blocks_save_and_load_in_a_fresh_process(tmp_path):
    kinds = {"learned": {"region_filters": 4}, "sinusoidal": {"encoder_blocks": 1, "encoder_heads": 2}}
    x = _padded(_reviews(), 40)
    np.save(tmp_path / "x.npy", x)
    models = {}
    for kind, more in kinds.items():
        keras.utils.set_random_seed(4)
        models[kind] = build_model(make_params(position_embedding=kind, bigram_buckets=300, **more), VOCAB)
        save_model(models[kind], ["", "[UNK]"] + [f"w{i}" for i in range(VOCAB - 2)], 40, 1, tmp_path / kind)
    assert "encoder_1" in [layer.name for layer in models["sinusoidal"].layers]
    assert "regions" in [layer.name for layer in models["learned"].layers]
    _finish(_python("""
        import numpy as np
        from imdb_sentiment.model.saving import load_classifier
        for kind in ("learned", "sinusoidal"):
            np.save(f"{kind}.npy", load_classifier(kind).predict(np.load("x.npy"), verbose=0))
    """, cwd=tmp_path))
    for kind in kinds:
        np.testing.assert_allclose(np.load(tmp_path / f"{kind}.npy"), models[kind].predict(x, verbose=0), atol=1e-6)


def test_kept_epoch_is_the_best_validation_loss_with_patience_and_the_last_without():
    rows = [{"val_loss": v} for v in (0.5, 0.3, 0.3, 0.4)]
    assert kept_epoch(rows, patience=2) == 2
    assert kept_epoch(rows, patience=0) == 4


def test_early_stopping_restores_the_weights_of_the_best_epoch():
    """Random labels: validation loss gets worse as the model memorises the training set, so
    training stops early and the model must be the one of the best epoch, not the last."""
    rng = np.random.default_rng(5)
    x = rng.integers(2, VOCAB, size=(96, 20)).astype(np.int32)
    y = rng.integers(0, 2, size=96)
    params = make_params(sequence_length=20, epochs=30, patience=2, learning_rate=0.05, dropout=0.0,
                         lr_schedule="constant", weight_decay=0.0, refit=False)
    model, rows, kept, _ = train(params, x[:64], y[:64], x[64:], y[64:], VOCAB)
    assert len(rows) < 30 and len(rows) == kept + 2
    val_loss = model.evaluate(x[64:], y[64:].astype("float32")[:, None], verbose=0)[0]
    assert val_loss == pytest.approx(min(row["val_loss"] for row in rows), rel=1e-4)
    assert val_loss < rows[-1]["val_loss"] - 1e-3


def test_refit_trains_a_fresh_model_on_training_and_validation_reviews_for_the_epochs_kept():
    """Random labels, so only memorising helps: the refit model has seen the validation reviews
    and fits them far better than the first model, which had not; it ran the kept number of
    epochs over all 96 reviews, with its n-gram ratios counted on all of them (the training
    reviews' counts kept from the first fit, the validation reviews' added), and the first fit
    is unchanged."""
    rng = np.random.default_rng(5)
    x = rng.integers(2, VOCAB, size=(96, 20)).astype(np.int32)
    y = rng.integers(0, 2, size=96)
    common = dict(sequence_length=20, epochs=30, patience=2, learning_rate=0.05, dropout=0.0,
                  lr_schedule="constant", weight_decay=0.0)
    first, rows, kept, _ = train(make_params(**common, refit=False), x[:64], y[:64], x[64:], y[64:], VOCAB)
    refit, rows_again, kept_again, _ = train(make_params(**common, refit=True), x[:64], y[:64], x[64:], y[64:], VOCAB)
    assert (rows_again, kept_again) == (rows, kept)
    one_epoch = make_params(**{**common, "epochs": 1, "patience": 0, "refit": False})
    steps_all = int(train(one_epoch, x, y, x[64:], y[64:], VOCAB)[0].optimizer.iterations)
    steps_train = int(train(one_epoch, x[:64], y[:64], x[64:], y[64:], VOCAB)[0].optimizer.iterations)
    assert steps_all > steps_train and int(refit.optimizer.iterations) == kept * steps_all
    val_loss = [m.evaluate(x[64:], y[64:].astype("float32")[:, None], verbose=0)[0] for m in (first, refit)]
    print("kept", kept, "val loss first/refit", val_loss)
    assert val_loss[1] < val_loss[0] - 0.1
    branch = refit.get_layer("naive_bayes")
    np.testing.assert_allclose(np.asarray(branch.ratios)[:, 0], naive_bayes_ratios(branch, x, y), rtol=1e-6)
    assert not np.allclose(naive_bayes_ratios(branch, x, y), naive_bayes_ratios(branch, x[:64], y[:64]))


@pytest.mark.parametrize("weight_decay", [0.0, 10.0])
def test_weight_decay_shrinks_the_vectors_of_words_a_step_does_not_see(weight_decay):
    """AdamW: a word absent from the batch gets no gradient, so Adam leaves its vector alone and
    only the decay moves it, by learning rate x weight_decay of itself."""
    model = build_model(make_params(), VOCAB)
    compile_model(model, learning_rate=0.01, weight_decay=weight_decay)
    table = model.get_layer("embedding").embeddings
    before = np.asarray(table).copy()
    x = np.array([[2, 3, 4, 0], [5, 6, 0, 0]], dtype=np.int32)
    model.train_on_batch(x, np.array([[1.0], [0.0]], dtype=np.float32))
    after = np.asarray(table)
    shrink = 1 - 0.01 * weight_decay
    np.testing.assert_allclose(after[VOCAB - 1], before[VOCAB - 1] * shrink, rtol=1e-5)
    assert not np.allclose(after[2], before[2] * shrink, rtol=1e-3)  # a word in the batch: Adam moved it too


def test_bigram_ids_pair_each_token_with_the_next_and_skip_padding():
    layer = HashedBigramEmbedding(buckets=1000, output_dim=4)
    tokens = np.array([[5, 7, 5, 7, 0], [7, 5, 9, 0, 0]], dtype=np.int32)
    ids, is_pair = (np.asarray(a) for a in layer.pair_ids(tokens))
    np.testing.assert_array_equal(is_pair, [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    assert ids[0, 0] == ids[0, 2] and ids[0, 1] == ids[1, 0]  # (5, 7) twice; (7, 5) twice
    assert ids[0, 0] != ids[0, 1]  # order matters
    assert ids.min() >= 0 and ids.max() < 1000
    vectors = np.asarray(layer(tokens))
    assert vectors.shape == (2, 5, 4)
    assert np.all(vectors[~is_pair.astype(bool)] == 0.0)
    np.testing.assert_array_equal(vectors[0, 0], vectors[0, 2])


def test_bigrams_make_word_order_matter_and_padding_still_does_not():
    keras.utils.set_random_seed(1)
    model = build_model(make_params(bigram_buckets=500), VOCAB)
    logits = model(_permuted_first_review(), training=False).numpy()
    assert abs(logits[0, 0] - logits[1, 0]) > 1e-5
    x40, x80 = _padded(_reviews(), 40), _padded(_reviews(), 80)
    np.testing.assert_allclose(model(x40, training=False).numpy(), model(x80, training=False).numpy(), atol=1e-5)


def test_a_region_is_the_relu_of_a_convolution_of_the_real_words_around_it_beside_the_word():
    keras.utils.set_random_seed(2)
    words = np.random.default_rng(0).normal(size=(2, 7, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0, 0]], dtype=bool)
    layer = RegionEmbedding(filters=3, width=3)
    out = np.asarray(layer(words, mask=mask))
    assert out.shape == (2, 7, 7)
    np.testing.assert_array_equal(out[..., :4], words)
    kernel, bias = (np.asarray(w) for w in layer.convolution.weights)  # (width, features, filters), (filters,)
    real = words * mask[..., None]
    for row in range(2):
        for step in range(7):
            if not mask[row, step]:
                np.testing.assert_array_equal(out[row, step, 4:], 0.0)  # no region at padding
                continue
            region = bias + sum(real[row, step + k - 1] @ kernel[k] for k in range(3) if 0 <= step + k - 1 < 7)
            np.testing.assert_allclose(out[row, step, 4:], np.maximum(region, 0.0), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(words, mask)), mask)
    with pytest.raises(ValueError, match="width must be odd"):
        RegionEmbedding(filters=3, width=4)


def test_regions_make_word_order_matter_and_padding_still_does_not():
    keras.utils.set_random_seed(1)
    model = build_model(make_params(region_filters=6, region_width=3), VOCAB)
    assert model.get_layer("body").output.shape[-1] == 8 + 6
    logits = model(_permuted_first_review(), training=False).numpy()
    assert abs(logits[0, 0] - logits[1, 0]) > 1e-5
    x40, x80 = _padded(_reviews(), 40), _padded(_reviews(), 80)
    review = _reviews()[1][None, :].astype(np.int32)
    np.testing.assert_allclose(model(x40, training=False).numpy(), model(x80, training=False).numpy(), atol=1e-5)
    np.testing.assert_allclose(model(x40, training=False).numpy()[1:], model(review, training=False).numpy(), atol=1e-5)


def _ragged_data(n=100, width=64, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, width + 1, size=n)
    x = np.zeros((n, width), dtype=np.int32)
    for row, length in enumerate(lengths):
        x[row, :length] = rng.integers(2, VOCAB, size=length)
    return x, rng.integers(0, 2, size=n), lengths


def test_trimmed_batches_hold_every_review_once_cut_to_their_longest():
    from imdb_sentiment.training.fit import batches

    x, y, lengths = _ragged_data()
    epochs, dataset = [], batches(x, y, 8, seed=1, trim=True)
    for _ in range(2):  # as fit iterates it: once an epoch
        seen = []
        for tokens, labels in dataset:
            tokens, labels = tokens.numpy(), labels.numpy()
            assert tokens.shape[0] <= 8 and labels.shape == (tokens.shape[0], 1)
            assert tokens.shape[1] == np.count_nonzero(tokens, axis=1).max()  # cut to the longest
            seen += [(tuple(row[row != 0]), float(label)) for row, label in zip(tokens, labels[:, 0])]
        epochs.append(seen)
    expected = sorted((tuple(row[row != 0]), float(label)) for row, label in zip(x, y))
    assert sorted(epochs[0]) == sorted(epochs[1]) == expected
    assert epochs[0] != epochs[1]  # reshuffled every epoch
    again = [tuple(t.numpy()[0]) for t, _ in batches(x, y, 8, seed=1, trim=True).take(3)]
    assert again == [tuple(t.numpy()[0]) for t, _ in batches(x, y, 8, seed=1, trim=True).take(3)]


@pytest.mark.parametrize("use_mask", [True, False])
def test_predict_logits_equals_predicting_the_padded_rows(use_mask):
    from imdb_sentiment.model.classifier import predict_logits

    keras.utils.set_random_seed(1)
    model = build_model(make_params(use_mask=use_mask, sequence_length=64), VOCAB)
    x, _, _ = _ragged_data(n=70)
    np.testing.assert_allclose(predict_logits(model, x, batch_size=16),
                               model.predict(x, batch_size=16, verbose=0).ravel(), atol=1e-5, rtol=0)


def separable_reviews(n: int, seed: int):
    """Reviews of words 2-49 (label 1) or 50-99 (label 0): easy to be sure of."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = np.where(y[:, None] == 1, rng.integers(2, 50, size=(n, 12)), rng.integers(50, VOCAB, size=(n, 12)))
    return x.astype(np.int32), y.astype(np.int8)


def test_pseudo_labels_are_the_unlabeled_reviews_the_model_is_sure_of_with_its_class():
    from imdb_sentiment.model.classifier import predict_logits
    from imdb_sentiment.training.fit import pseudo_labels
    x, y = separable_reviews(64, 0)
    params = make_params(sequence_length=12, epochs=2, learning_rate=0.02, pseudo_label_confidence=0.0, refit=False)
    model = train(params, x[:48], y[:48], x[48:], y[48:], VOCAB)[0]
    unlabeled = np.concatenate([separable_reviews(40, 1)[0], np.full((8, 12), 7, np.int32)])
    probability = 1 / (1 + np.exp(-predict_logits(model, unlabeled)))
    confidence = float(np.median(np.maximum(probability, 1 - probability)))  # about half are surer
    assert confidence > 0.55
    x_sure, y_sure = pseudo_labels(model, unlabeled, confidence)
    sure = np.maximum(probability, 1 - probability) >= confidence
    assert 0 < sure.sum() < len(unlabeled)  # some, not all: the test must be able to fail
    np.testing.assert_array_equal(x_sure, unlabeled[sure])
    np.testing.assert_array_equal(y_sure, (probability[sure] >= 0.5).astype(np.int8))
    assert len(pseudo_labels(model, unlabeled, 0.5)[0]) == len(unlabeled)


def test_self_training_fits_a_fresh_model_on_training_and_pseudo_labelled_reviews():
    from imdb_sentiment.model.classifier import predict_logits
    from imdb_sentiment.training.fit import pseudo_labels
    x, y = separable_reviews(64, 0)
    unlabeled = separable_reviews(80, 1)[0]
    common = dict(sequence_length=12, epochs=4, patience=0, learning_rate=0.05, dropout=0.0, refit=False,
                  teacher_pooling="attention")  # the teacher, fitted alone first, is the same model
    teacher, rows, _, trained_on = train(make_params(**common, pseudo_label_confidence=0.0),
                                         x[:48], y[:48], x[48:], y[48:], VOCAB, x_unlabeled=unlabeled)
    assert trained_on == 48
    probability = 1 / (1 + np.exp(-predict_logits(teacher, unlabeled)))
    confidence = float(np.median(np.maximum(probability, 1 - probability)))  # about half are surer
    assert confidence > 0.55
    sure = len(pseudo_labels(teacher, unlabeled, confidence)[0])
    student, rows_student, kept, trained_on = train(make_params(**common, pseudo_label_confidence=confidence),
                                                    x[:48], y[:48], x[48:], y[48:], VOCAB, x_unlabeled=unlabeled)
    assert 0 < sure < len(unlabeled) and trained_on == 48 + sure  # the same teacher, the same choice
    assert len(rows_student) == kept == 4
    steps_per_epoch = int(teacher.optimizer.iterations) // 4
    assert int(student.optimizer.iterations) >= 4 * (steps_per_epoch + sure // 16)


def test_the_teacher_is_pooled_as_teacher_pooling_says_and_the_saved_model_as_pooling_says(monkeypatch):
    """An average-pooled teacher labels the unlabeled reviews; the model returned is the
    attention classifier, also when the teacher is sure of none of them (reviews of words it
    never saw, at 0.9999 confidence: the other case is the self-training test's above)."""
    import imdb_sentiment.training.fit as training
    x, y = separable_reviews(64, 0)
    params = make_params(sequence_length=12, epochs=2, learning_rate=0.05, refit=False, pooling="attention",
                         teacher_pooling="average", pseudo_label_confidence=0.9999)
    x_unlabeled = np.ones((8, 12), np.int32)  # id 1: out of the vocabulary, in no training review
    built, build = [], training.build_model
    monkeypatch.setattr(training, "build_model", lambda p, size: built.append(p.pooling) or build(p, size))
    stopwatch = training.Stopwatch()
    model, _, _, trained_on = train(params, x[:48], y[:48], x[48:], y[48:], VOCAB,
                                    x_unlabeled=x_unlabeled, stopwatch=stopwatch)
    assert built == ["average", "attention"]
    assert "attention" in [layer.name for layer in model.layers]
    assert "fit self_trained" in stopwatch.seconds
    assert trained_on == 48


@pytest.mark.parametrize("batch_size", [8, 7])
def test_steps_per_epoch_count_the_partly_filled_batch_of_every_length_group(batch_size):
    from imdb_sentiment.training.fit import batches, steps_per_epoch

    x, y, _ = _ragged_data()
    assert steps_per_epoch(x, batch_size, trim=True) == sum(1 for _ in batches(x, y, batch_size, seed=3, trim=True))
    assert steps_per_epoch(x, batch_size, trim=True) > -(-len(x) // batch_size)  # more than full batches need
    assert steps_per_epoch(x, batch_size, trim=False) == sum(1 for _ in batches(x, y, batch_size, trim=False))


def test_the_cosine_schedule_reaches_zero_as_the_last_step_of_the_last_epoch_ends():
    from imdb_sentiment.training.fit import decay_steps

    x, y, _ = _ragged_data(n=120)
    params = make_params(epochs=2, batch_size=8, lr_schedule="cosine", nb_ngrams=0, pseudo_label_confidence=0.0)
    model, *_ = train(params, x[:100], y[:100], x[100:], y[100:], VOCAB)
    steps = int(model.optimizer.iterations)
    assert steps == decay_steps(params, x[:100])  # every step taken is one the schedule counted
    assert float(model.optimizer.learning_rate) == 0.0  # where the schedule stands once they are done
    schedule = keras.optimizers.schedules.CosineDecay(params.learning_rate, steps)
    assert float(schedule(steps - 1)) > 0.0  # the last step still learned


def test_weights_are_restored_by_path_and_a_mismatch_is_refused():
    from imdb_sentiment.model.saving import weights_by_path

    model = build_model(make_params(pooling="attention"), VOCAB)
    saved = {w.path: np.asarray(w) for w in reversed(model.weights)}  # another order
    restored = weights_by_path(model, saved)
    assert all(np.array_equal(value, np.asarray(w)) for value, w in zip(restored, model.weights))
    query, key = "attention/query/kernel", "attention/key/kernel"
    assert {query, key} <= set(saved), sorted(saved)  # one shape: a match by position could swap them
    renamed = {("attention/other/kernel" if path == query else path): value for path, value in saved.items()}
    with pytest.raises(ValueError, match=r"missing \['attention/query/kernel'\], "
                                         r"unexpected \['attention/other/kernel'\]"):
        weights_by_path(model, renamed)
    with pytest.raises(ValueError, match="has shape"):
        weights_by_path(model, {**saved, query: saved[query][:, :1]})


def test_squared_keys_reach_the_pooling_attention_and_its_config():
    model = build_model(make_params(squared_keys=True), vocabulary_size=VOCAB)
    assert model.get_layer("attention").get_config()["squared_keys"]
    assert not build_model(make_params(), vocabulary_size=VOCAB).get_layer("attention").squared_keys


def test_uniform_pooling_holds_the_query_at_zero_and_averages_the_projected_values():
    """``pooling: uniform``, the ablation of the query's weighting: the attention's projections
    over a plain average of the words, the query out of training."""
    params = make_params(pooling="uniform", num_heads=1, squared_keys=True, nb_ngrams=0, learning_rate=0.05)
    x, y, _ = _ragged_data(n=64, width=20)
    model, *_ = train(params, x[:48], y[:48], x[48:], y[48:], VOCAB)
    attention = model.get_layer("attention")
    assert attention.learned_query and not attention.train_query
    assert all(weight.path != attention.query.path for weight in model.trainable_weights)
    np.testing.assert_array_equal(np.asarray(attention.query), 0.0)
    vectors = keras.Model(model.input, model.get_layer("body").output)
    review = x[:1, :int(np.count_nonzero(x[0]))]
    mean = np.asarray(vectors(review))[0].mean(axis=0, keepdims=True)
    expected = attention.output_dense(attention.value_dense(mean))
    pooled = keras.Model(model.input, attention.output)(review)
    np.testing.assert_allclose(np.asarray(pooled), np.asarray(expected), atol=1e-5)
    learned = build_model(make_params(pooling="query"), VOCAB).get_layer("attention")
    assert learned.train_query and learned.get_config()["train_query"]
