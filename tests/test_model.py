"""The classifier and the export model: padding invariance, the use_mask switch, saving and
loading in a fresh process, one sigmoid in the export model, reproducible training."""

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

from imdb_sentiment.export import build_export_model  # noqa: E402
from imdb_sentiment.model import build_model, compile_model  # noqa: E402
from imdb_sentiment.params import parse_params  # noqa: E402
from imdb_sentiment.text import adapt, make_vectorizer, vectorize, vocabulary  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
VOCAB = 100
TINY = {"max_features": VOCAB, "sequence_length": 40, "embedding_dim": 8, "embed_dim": 8, "num_heads": 2,
        "batch_size": 16, "epochs": 1}


def make_params(**overrides):
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
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
    pooled = keras.Model(model.input, model.get_layer("pooling").output)
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
    pooled = keras.Model(model.input, model.get_layer("pooling").output)
    reviews = _reviews()
    x250, x500 = _padded(reviews, 250), _padded(reviews, 500)
    logits250 = model(x250, training=False).numpy()
    logits500 = model(x500, training=False).numpy()
    assert np.abs(logits250 - logits500).max() > 1e-4
    assert np.abs(pooled(x250, training=False).numpy() - pooled(x500, training=False).numpy()).max() > 1e-4


def test_model_layers_follow_params():
    model = build_model(make_params(embed_dim=12, num_heads=3, attention_dropout=0.1, dropout=0.3), VOCAB)
    attention = model.get_layer("attention")
    assert (attention.embed_dim, attention.num_heads, attention.dropout) == (12, 3, 0.1)
    assert model.get_layer("embedding").input_dim == VOCAB
    assert model.get_layer("dropout").rate == 0.3
    assert model.output_shape == (None, 1)
    assert model.get_layer("logit").get_config()["activation"] == "linear"  # logits, no sigmoid


TEXTS = ["a great film, great cast", "an awful film, awful plot", "great fun and a great story",
         "awful, boring and long", "I loved it<br />great", "I hated it. Awful!"]
LABELS = np.array([1, 0, 1, 0, 1, 0])


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A trained classifier and its export model, saved; their predictions in this process and
    in a fresh one that imports only the package."""
    tmp = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(2)
    params = make_params(sequence_length=16)
    vectorizer = make_vectorizer(params.max_features, params.sequence_length)
    adapt(vectorizer, TEXTS)
    vocab = vocabulary(vectorizer)
    x = vectorize(vectorizer, TEXTS)
    model = build_model(params, len(vocab))
    compile_model(model, learning_rate=0.01)
    model.fit(x, LABELS.astype("float32")[:, None], epochs=2, batch_size=3, verbose=0)
    export = build_export_model(model, vocab, params.sequence_length)
    model.save(tmp / "model.keras")
    export.save(tmp / "export.keras")
    np.save(tmp / "tokens.npy", x)
    (tmp / "reviews.json").write_text(json.dumps(TEXTS))
    _finish(_python("""
        import json
        import keras
        import imdb_sentiment.custom_objects
        import numpy as np
        import tensorflow as tf
        model = keras.saving.load_model("model.keras")
        export = keras.saving.load_model("export.keras")
        np.save("loaded_logits.npy", model.predict(np.load("tokens.npy"), verbose=0))
        reviews = json.load(open("reviews.json"))
        np.save("loaded_probabilities.npy", export.predict(tf.constant(reviews)[:, None], verbose=0))
    """, cwd=tmp))
    return {
        "model": model, "export": export, "vectorizer": vectorizer, "x": x,
        "logits": model.predict(x, verbose=0),
        "probabilities": export.predict(tf.constant(TEXTS)[:, None], verbose=0),
        "loaded_logits": np.load(tmp / "loaded_logits.npy"),
        "loaded_probabilities": np.load(tmp / "loaded_probabilities.npy"),
    }


def test_classifier_saves_and_loads_in_a_fresh_process(saved_models):
    logits, loaded = saved_models["logits"], saved_models["loaded_logits"]
    assert loaded.shape == logits.shape == (len(TEXTS), 1)
    np.testing.assert_allclose(loaded, logits, atol=1e-6, rtol=0)
    assert np.ptp(logits) > 1e-3  # distinct outputs, so a wrongly restored model would show


def test_export_model_applies_the_sigmoid_exactly_once(saved_models):
    probabilities = saved_models["probabilities"]
    tokens = vectorize(saved_models["vectorizer"], TEXTS)
    np.testing.assert_array_equal(tokens, saved_models["x"])
    logits = saved_models["model"](tokens, training=False).numpy()
    sigmoid = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    assert probabilities.shape == (len(TEXTS), 1)
    np.testing.assert_allclose(probabilities, sigmoid, atol=1e-6, rtol=0)
    twice = 1.0 / (1.0 + np.exp(-sigmoid))
    assert np.abs(probabilities - twice).max() > 1e-3
    assert np.all((probabilities > 0) & (probabilities < 1))


def test_export_model_saves_and_loads_in_a_fresh_process(saved_models):
    np.testing.assert_allclose(saved_models["loaded_probabilities"], saved_models["probabilities"],
                               atol=1e-6, rtol=0)
    assert saved_models["export"].inputs[0].dtype == "string"


def test_training_is_reproducible_across_processes(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 50, size=(64, 20)).astype(np.int32)
    x[:, 15:] = 0  # some padding
    y = rng.integers(0, 2, size=64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    code = """
        import json, sys, yaml
        import numpy as np
        from imdb_sentiment.params import parse_params
        from imdb_sentiment.training import train
        raw = yaml.safe_load(open(sys.argv[1]))
        x, y = np.load("x.npy"), np.load("y.npy")
        model, rows = train(parse_params(raw), x[:48], y[:48], x[48:], y[48:], 50)
        weights = [w.tolist() for w in model.get_weights()]
        json.dump({"history": rows, "weights": weights}, open(sys.argv[2], "w"))
    """
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    raw.update(TINY, max_features=50, sequence_length=20, epochs=2, attention_dropout=0.2, dropout=0.3, seed=7)
    parse_params(raw)  # valid before it is handed on
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    runs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), "params.yaml", f"run{i}.json"],
                             cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    for run in runs:
        _finish(run)
    first, second = (json.loads((tmp_path / f"run{i}.json").read_text()) for i in (1, 2))
    assert [row["epoch"] for row in first["history"]] == [1, 2]
    assert all(np.isfinite(row["loss"]) for row in first["history"])
    assert first["history"] == second["history"]
    assert first["weights"] == second["weights"]
