"""The attention figures' inputs: which reviews are shown, and the weights drawn for them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from conftest import committed_params_text  # noqa: E402
from conftest import PROJECT
from imdb_sentiment.plots.explain import attention_maps, pick_examples, token_importance
from imdb_sentiment.model.classifier import build_model
from imdb_sentiment.params import parse_params


def padded(lengths: list[int], width: int = 80) -> np.ndarray:
    x = np.zeros((len(lengths), width), dtype=np.int32)
    for row, n in enumerate(lengths):
        x[row, :n] = np.arange(2, n + 2)
    return x


def test_picks_the_most_confident_short_reviews_of_each_kind():
    x = padded([20, 30, 70, 25, 40, 16])
    actual = np.array([1, 0, 1, 1, 0, 0])
    probability = np.array([0.9, 0.1, 0.99, 0.2, 0.3, 0.75])
    # row 2 is the most confident correct positive but too long to draw; row 3 is the most
    # confidently misclassified (0.2 for a positive)
    assert pick_examples(x, actual, probability) == {"correct_positive": 0, "correct_negative": 1, "misclassified": 3}


def test_falls_back_to_long_reviews_and_skips_a_kind_that_does_not_exist():
    x = padded([70, 75])
    assert pick_examples(x, np.array([1, 0]), np.array([0.8, 0.3])) == {"correct_positive": 0, "correct_negative": 1}


def test_attention_maps_cover_the_real_tokens_and_importance_sums_to_one():
    raw = yaml.safe_load(committed_params_text())
    raw.update(embedding_dim=8, embed_dim=8, num_heads=2, bigram_buckets=0, nb_buckets=256, position_embedding="none",
               pooling="attention")
    model = build_model(parse_params(raw), vocabulary_size=50)
    tokens = padded([12], width=40)[0]
    weights = attention_maps(model, tokens)
    assert weights.shape == (2, 12, 12)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
    importance = token_importance(weights)
    assert importance.shape == (12,) and abs(importance.sum() - 1.0) < 1e-6 and (importance > 0).all()


def test_attention_maps_see_the_pair_and_position_vectors_the_model_adds():
    raw = yaml.safe_load(committed_params_text())
    raw.update(embedding_dim=8, embed_dim=8, num_heads=2, sequence_length=40, bigram_buckets=0, nb_buckets=256,
               position_embedding="none", pooling="attention")
    plain = build_model(parse_params(raw), vocabulary_size=50)
    raw.update(bigram_buckets=64, position_embedding="learned")
    enriched = build_model(parse_params(raw), vocabulary_size=50)
    enriched.get_layer("embedding").set_weights(plain.get_layer("embedding").get_weights())
    enriched.get_layer("attention").set_weights(plain.get_layer("attention").get_weights())
    tokens = padded([12], width=40)[0]
    weights = attention_maps(enriched, tokens)
    assert weights.shape == (2, 12, 12)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.abs(weights - attention_maps(plain, tokens)).max() > 1e-4


@pytest.mark.parametrize("pooling", ["attention", "query", "average"])
def test_plots_draws_each_word_s_part_of_the_logit_and_attention_only_where_there_is_some(tmp_path, capsys, pooling):
    import importlib.util

    from imdb_sentiment.features.vectorized import write_split
    from imdb_sentiment.model.saving import save_model

    raw = yaml.safe_load(committed_params_text())
    raw.update(embedding_dim=8, embed_dim=8, bigram_buckets=0, nb_buckets=256, pooling=pooling, sequence_length=40)
    model = build_model(parse_params(raw), vocabulary_size=50)
    vocabulary = ["", "[UNK]"] + [f"w{i}" for i in range(48)]
    save_model(model, vocabulary, 40, 1, tmp_path / "model")
    (tmp_path / "vectorized").mkdir()
    x = padded([20, 18, 25], width=40)
    write_split(tmp_path / "vectorized" / "test.npz", x, np.array([1, 0, 1]), np.array(["a", "b", "c"]), 50)
    (tmp_path / "vectorized" / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n")
    predictions = [{"id": i, "probability": p} for i, p in (("a", "0.9"), ("b", "0.2"), ("c", "0.3"))]
    spec = importlib.util.spec_from_file_location("plots_stage", PROJECT / "stages" / "plots.py")
    plots_stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plots_stage)
    figures = tmp_path / "figures"
    figures.mkdir()
    plots_stage.review_figures(tmp_path / "model", tmp_path / "vectorized", predictions, figures)
    kinds = ("correct_positive", "correct_negative", "misclassified")
    expected = {f"contributions_{kind}.png" for kind in kinds}
    if pooling != "average":
        expected |= {f"attention_{kind}.png" for kind in kinds}
    else:
        assert "no attention figures" in capsys.readouterr().out
    assert {path.name for path in figures.iterdir()} == expected
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in figures.iterdir())
    # A model right on every review still writes every figure dvc.yaml declares (one says so).
    for path in figures.iterdir():
        path.unlink()
    predictions[2]["probability"] = "0.8"
    plots_stage.review_figures(tmp_path / "model", tmp_path / "vectorized", predictions, figures)
    assert {path.name for path in figures.iterdir()} == expected


@pytest.mark.parametrize("overrides", [
    {"num_heads": 2, "position_embedding": "learned"},
    {"num_heads": 1, "nb_ngrams": 0},
    {"num_heads": 1, "nb_ngrams": 0, "region_filters": 0},
    {"pooling": "average"},
    {"num_heads": 2, "encoder_blocks": 2, "encoder_heads": 2, "position_embedding": "learned", "pretrain_epochs": 0},
    {"num_heads": 2, "pooling": "query"},
], ids=["two heads, positions, n-grams", "attention alone", "attention over words alone", "average", "encoder blocks",
        "learned query"])
def test_the_words_contributions_add_up_to_the_logit(overrides):
    """The classifier is linear after its pooling: the split over the words is exact."""
    from imdb_sentiment.model.naive_bayes import naive_bayes_ratios
    from imdb_sentiment.plots.explain import logit_contributions

    raw = yaml.safe_load(committed_params_text())
    raw.update(embedding_dim=8, embed_dim=8, sequence_length=40, bigram_buckets=0, nb_buckets=256, **overrides)
    model = build_model(parse_params(raw), vocabulary_size=50)
    rng = np.random.default_rng(0)
    x = padded([12, 20, 7], width=40)
    x[x > 0] = rng.integers(2, 50, size=int((x > 0).sum()))
    x[0, 3:5] = x[0, 6:8]  # a repeated pair: its n-grams count once
    model.get_layer("logit").bias.assign([0.3])
    if overrides.get("pooling") == "query":  # from zero (every word alike) to a query that picks
        model.get_layer("attention").query.assign(rng.normal(scale=3.0, size=8).astype("float32"))
    if raw["nb_ngrams"]:
        branch = model.get_layer("naive_bayes")
        branch.set_ratios(naive_bayes_ratios(branch, x, np.array([1, 0, 1])))
        branch.table.assign(rng.normal(size=(256, 1)).astype("float32"))
    for row in x:
        parts = logit_contributions(model, row)
        n = int((row > 0).sum())
        assert parts.attention.shape == (n,)
        expected = float(np.asarray(model(row[None, :n]))[0, 0])
        assert parts.logit == pytest.approx(expected, abs=1e-5)
        if raw["nb_ngrams"]:
            branch_logit = float(np.asarray(model.get_layer("naive_bayes")(row[None, :n]))[0, 0])
            assert parts.ngrams.sum() == pytest.approx(branch_logit, abs=1e-5) and parts.ngrams.shape == (n,)
        else:
            assert parts.ngrams is None
        if overrides.get("pooling") == "average":
            assert parts.heads is None
        else:
            assert parts.heads.shape == (overrides["num_heads"], n)
            np.testing.assert_allclose(parts.weights, attention_maps(model, row), rtol=1e-6)  # what plots draws
            np.testing.assert_allclose(parts.heads.sum(axis=0), parts.attention, rtol=1e-6)
