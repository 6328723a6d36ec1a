"""The benchmarks' arithmetic: the train stage's phase line and FLOP count; the short-review
table's split of the logit into the n-gram branch and the rest."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from conftest import committed_params_text  # noqa: E402
from imdb_sentiment.features.text import Standardization  # noqa: E402
from imdb_sentiment.params import parse_params  # noqa: E402
from imdb_sentiment.training.fit import Stopwatch  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("train_stage", PROJECT / "benchmarks" / "train_stage.py")
train_stage = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_stage)


def test_the_phase_line_the_stage_prints_is_what_the_benchmark_reads():
    stopwatch = Stopwatch()
    for name, seconds in (("load", 1.04), ("fit supervised", 69.91), ("validate supervised", 3.2),
                          ("pseudo-label", 6.0), ("fit self_trained", 134.1), ("fit supervised", 1.0)):
        stopwatch.add(name, seconds)
    phases = train_stage.parse_phases(f"train: seconds: {stopwatch.line()}")
    assert phases == {"load": 1.0, "fit supervised": 70.9, "validate supervised": 3.2, "pseudo-label": 6.0,
                      "fit self_trained": 134.1}


def test_forward_flops_count_the_products_at_the_padded_length():
    raw = yaml.safe_load(committed_params_text())
    params = parse_params({**raw, "embedding_dim": 8, "embed_dim": 4, "num_heads": 2, "sequence_length": 800,
                           "pooling": "attention"})
    # 20 real tokens are padded to 32: projections 3*2*32*8*4, scores 2*32^2*4, pooled weights
    # 2*2*32^2, context 2*32*4, output 2*4*4, logit 2*4
    expected = 3 * 2 * 32 * 8 * 4 + 2 * 32 ** 2 * 4 + 2 * 2 * 32 ** 2 + 2 * 32 * 4 + 2 * 4 * 4 + 2 * 4
    assert train_stage.forward_flops(np.array([20]), params) == expected
    assert train_stage.forward_flops(np.array([20, 20]), params) == 2 * expected
    capped = parse_params({**raw, "embedding_dim": 8, "embed_dim": 4, "num_heads": 2, "sequence_length": 24,
                           "pooling": "attention"})
    assert train_stage.forward_flops(np.array([20]), capped) < expected  # never past sequence_length
    query = parse_params({**raw, "embedding_dim": 8, "embed_dim": 4, "num_heads": 2, "sequence_length": 800,
                          "pooling": "query"})
    # key, value 2*2*32*8*4; scores 2*32*4; context 2*32*4, output 2*4*4, logit 2*4: no (steps x steps) term
    assert train_stage.forward_flops(np.array([20]), query) == 2 * 2 * 32 * 8 * 4 + 2 * 32 * 4 + 2 * 32 * 4 + 2 * 4 * 4 + 2 * 4


def test_short_reviews_splits_the_logit_into_the_ngram_branch_and_the_rest(tmp_path, capsys, monkeypatch):
    import sys

    from imdb_sentiment.model.classifier import build_model
    from imdb_sentiment.model.naive_bayes import naive_bayes_ratios
    from imdb_sentiment.model.saving import save_model
    from imdb_sentiment.features.vectorized import write_split

    spec = importlib.util.spec_from_file_location("short_reviews", PROJECT / "benchmarks" / "short_reviews.py")
    short_reviews = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(short_reviews)
    raw = yaml.safe_load(committed_params_text())
    raw.update(embedding_dim=8, embed_dim=8, nb_buckets=256, sequence_length=60)
    model = build_model(parse_params(raw), vocabulary_size=50)
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 61, size=40)
    x = np.where(np.arange(60)[None, :] < lengths[:, None], rng.integers(2, 50, size=(40, 60)), 0).astype(np.int32)
    y = rng.integers(0, 2, size=40)
    branch = model.get_layer("naive_bayes")
    branch.set_ratios(naive_bayes_ratios(branch, x, y))
    branch.table.assign(np.ones((256, 1), dtype="float32"))
    save_model(model, ["", "[UNK]"] + [f"w{i}" for i in range(48)], 60, 1, tmp_path / "model")
    (tmp_path / "vectorized").mkdir()
    write_split(tmp_path / "vectorized" / "validation.npz", x, y, np.arange(40), 50)
    np.testing.assert_allclose(short_reviews.branch_logits(branch, x, chunk=7), np.asarray(branch(x))[:, 0], rtol=1e-6)
    monkeypatch.setattr(sys, "argv", ["short_reviews.py", str(tmp_path / "model"), str(tmp_path / "vectorized")])
    short_reviews.main()
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["tokens", "kept", "model", "n-gram", "branch", "the", "rest"]
    assert [row.split()[1] for row in rows[1:]] == ["5", "10", "20", "50", "60"]
    # with its weights at 1 the branch is Naive Bayes: right on most of the reviews it was counted on
    assert float(rows[-1].split()[3]) > 0.7


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, PROJECT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_challenge_set_is_labelled_by_construction_and_reported_per_category_and_branch():
    from imdb_sentiment.model.classifier import build_model

    challenge = load_benchmark("challenge")
    cases = challenge.cases()
    assert len({text for _, text, _ in cases}) == len(cases)  # no case twice
    by_category = {}
    for category, text, label in cases:
        by_category.setdefault(category, []).append((text, label))
    assert set(by_category) == {"vocabulary", "negated positive", "negated negative, then a verdict",
                                "contrast with but"}
    assert ("I did not love this movie.", 0) in by_category["negated positive"]
    assert ("The plot was not boring at all. I loved it.", 1) in by_category["negated negative, then a verdict"]
    assert ("The acting was terrible, but the movie is great.", 1) in by_category["contrast with but"]
    for category in ("vocabulary", "negated negative, then a verdict", "contrast with but"):
        assert {label for _, label in by_category[category]} == {0, 1}
    words = sorted({w.strip(".,").lower() for _, text, _ in cases for w in text.split()})
    vocabulary = ["", "[UNK]", *words]
    raw = yaml.safe_load(committed_params_text())
    raw.update(embedding_dim=8, embed_dim=8, nb_buckets=512, sequence_length=64)
    model = build_model(parse_params(raw), vocabulary_size=len(vocabulary))
    lines = challenge.accuracy_table(model, vocabulary, Standardization(), failures=2)
    assert lines[0].split() == ["category", "cases", "model", "n-gram", "branch", "the", "rest"]
    rows = {line[:36].strip(): line[36:].split() for line in lines[1:6]}
    assert set(rows) == set(by_category) | {"all"}
    assert rows["all"][0] == str(len(cases)) and all(0.0 <= float(v) <= 1.0 for row in rows.values() for v in row[1:])
    assert [line.startswith("  wrong: ") for line in lines[6:]] == [True, True]


@pytest.mark.slow  # two fresh TensorFlow processes
def test_the_heads_benchmark_times_a_training_step_and_reads_the_peak_memory_of_each_form():
    heads = load_benchmark("attention_heads")
    explicit, blocked = heads.cell(2, 0, 24, 1), heads.cell(2, 8, 24, 1)
    assert explicit["ms"] > 0 and blocked["ms"] > 0
    assert 100 < explicit["mib"] < 20_000 and 100 < blocked["mib"] < 20_000


@pytest.mark.parametrize("pooling", ["query", "attention"])
def test_head_agreement_tells_copied_heads_from_different_ones(pooling):
    from imdb_sentiment.model.classifier import build_model

    agreement = load_benchmark("head_agreement")
    assert agreement.jensen_shannon_bits(np.array([0.5, 0.5, 0.0, 0.0]), np.array([0.0, 0.0, 0.5, 0.5])) == pytest.approx(1.0)
    assert agreement.jensen_shannon_bits(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == pytest.approx(0.0, abs=1e-12)
    raw = yaml.safe_load(committed_params_text())
    raw.update(embedding_dim=8, embed_dim=8, num_heads=2, nb_ngrams=0, sequence_length=12, pooling=pooling)
    model = build_model(parse_params(raw), vocabulary_size=30)
    rng = np.random.default_rng(3)
    reviews = np.where(np.arange(12)[None, :] < np.array([[12], [7], [3]]), rng.integers(2, 30, size=(3, 12)), 0)
    embedding = model.get_layer("embedding").embeddings
    embedding.assign(rng.normal(scale=3.0, size=embedding.shape))  # large enough for peaked attention
    attention = model.get_layer("attention")
    if pooling == "query":  # it starts at zero, where every head weighs every word alike
        assert agreement.head_statistics(model, reviews)["pairs"][(0, 1)] == pytest.approx((1.0, 0.0))
        attention.query.assign(rng.normal(scale=3.0, size=8).astype("float32"))
    stats = agreement.head_statistics(model, reviews)
    assert stats["words"] == pytest.approx(22 / 3) and stats["spread"].shape == (2,)
    assert all(1.0 <= spread <= 12 for spread in stats["spread"]) and set(stats["pairs"]) == {(0, 1)}
    correlation, divergence = stats["pairs"][(0, 1)]
    assert divergence > 1e-4  # randomly initialised heads attend differently
    copied = [attention.key_dense.kernel, attention.key_dense.bias]  # head 2's query and keys made head 1's
    copied += [attention.query] if pooling == "query" else [attention.query_dense.kernel, attention.query_dense.bias]
    for weight in copied:
        weight.assign(np.concatenate([weight.numpy()[..., :4]] * 2, axis=-1))
    (copy_correlation, copy_divergence), = agreement.head_statistics(model, reviews)["pairs"].values()
    assert copy_correlation == pytest.approx(1.0) and copy_divergence == pytest.approx(0.0, abs=1e-6)
    lines = agreement.report(stats)
    assert lines[1].split() == ["head", "words", "read", "top", "word"] and lines[-1].startswith("mean")


def test_a_one_head_query_over_word_vectors_is_a_weighted_average_of_its_one_word_logits(tmp_path, capsys,
                                                                                          monkeypatch):
    import sys

    from imdb_sentiment.features.vectorized import write_split
    from imdb_sentiment.model.classifier import build_model, predict_logits
    from imdb_sentiment.model.saving import save_model

    import keras

    check = load_benchmark("attention_as_average")
    keras.utils.set_random_seed(5)  # the weights the test leaves as drawn: the same model every run
    rng = np.random.default_rng(5)

    def peaked_model(**changes):
        raw = yaml.safe_load(committed_params_text())
        raw.update(embedding_dim=8, embed_dim=8, num_heads=1, nb_ngrams=0, squared_keys=True, sequence_length=12,
                   region_filters=0)
        model = build_model(parse_params({**raw, **changes}), vocabulary_size=30)
        embedding = model.get_layer("embedding").embeddings
        embedding.assign(rng.normal(scale=2.0, size=embedding.shape))
        attention = model.get_layer("attention")
        attention.query.assign(rng.normal(scale=2.0, size=8).astype("float32"))  # with two heads, each its half
        attention.value_dense.bias.assign(rng.normal(size=8).astype("float32"))
        model.get_layer("logit").bias.assign([0.7])  # biases come inside the average
        return model

    x = np.where(np.arange(12)[None, :] < rng.integers(1, 13, size=(40, 1)), rng.integers(1, 30, size=(40, 12)), 0)
    x = x.astype(np.int32)
    y = rng.integers(0, 2, size=40)
    model = peaked_model()
    assert check.why_not_word_level(model) == ""
    one_word, score = check.word_tables(model)
    logits = predict_logits(model, x)
    np.testing.assert_allclose(check.weighted_average_logits(x, one_word, score), logits, rtol=1e-4, atol=1e-4)
    assert np.array_equal(check.average_decides_positive(x, one_word, score), logits > 0)
    plain = np.nanmean(np.where(x != 0, one_word[x], np.nan), axis=1)
    assert np.max(np.abs(plain - logits)) > 0.1  # the weights are not even: the identity is not a plain mean's

    save_model(model, ["", "[UNK]"] + [f"w{i}" for i in range(28)], 12, 1, tmp_path / "model")
    (tmp_path / "vectorized").mkdir()
    write_split(tmp_path / "vectorized" / "validation.npz", x, y, np.arange(40), 30)
    monkeypatch.setattr(sys, "argv", ["attention_as_average.py", str(tmp_path / "model"), str(tmp_path / "vectorized")])
    check.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "reviews: 40" and float(lines[1].split(":")[1].split()[0]) < 1e-4
    assert lines[2].endswith("1.0000")

    two_heads = peaked_model(num_heads=2)  # each head's weights of its own: no single weighted average
    assert "2 heads" in check.why_not_word_level(two_heads)
    one_word, score = check.word_tables(two_heads)
    assert np.max(np.abs(check.weighted_average_logits(x, one_word, score) - predict_logits(two_heads, x))) > 1e-2
    assert "word pairs (bigram_buckets)" in check.why_not_word_level(peaked_model(bigram_buckets=64))
    assert "regions (region_filters)" in check.why_not_word_level(peaked_model(region_filters=4))
