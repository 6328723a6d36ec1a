"""Text to token ids: standardization, vectorizer, train/validation split, token counts."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from imdb_sentiment.features.text import (  # noqa: E402
    OOV,
    PAD,
    adapt,
    Standardization,
    make_vectorizer,
    split_train_validation,
    token_counts,
    vectorize,
    vectorize_counting,
    vocabulary,
)


def _standardize(texts: list[str], negation_scope: int = 0, contrast_scope: int = 0) -> list[str]:
    return [s.decode("utf-8") for s in Standardization(negation_scope, contrast_scope)(tf.constant(texts)).numpy()]


def test_standardization_lowercases_replaces_breaks_and_drops_punctuation():
    assert _standardize(["Don't <br />STOP!"]) == ["dont  stop"]
    assert _standardize(["A<br /><br />b", "UPPER<BR />lower"]) == ["a  b", "upper lower"]
    assert _standardize(["""!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~word"""]) == ["word"]
    assert _standardize(["no change 123"]) == ["no change 123"]


@pytest.mark.parametrize("scope, text, expected", [
    (3, "I did not love this film.", "i did not not_love not_this not_film"),
    (1, "I did not love this film.", "i did not not_love this film"),
    (3, "The plot was not boring at all. I loved it.", "the plot was not not_boring not_at not_all i loved it"),
    (5, "Not bad; GOOD, and not<br />dull!", "not not_bad good and not not_dull"),
    (2, "I didn't like it, but I can't say no to the cast.",  # "no" is in a scope and starts its own
     "i didnt not_like not_it but i cant not_say not_no not_to not_the cast"),
    (1, "no no way", "no not_no way"),  # right after a negation: one of its words, no scope of its own
    (2, "no no way out", "no not_no not_way out"),
    (2, "nothing. never , at all", "nothing never  at all"),  # a negation with no word after it in its clause
    (3, "Notable knots: not_a word", "notable knots nota word"),  # whole negators only; "_" is the mark's own
])
def test_negation_marks_the_words_after_it_in_its_clause(scope, text, expected):
    assert _standardize([text], negation_scope=scope) == [expected]
    assert _standardize([text]) == [expected.replace("not_", "")]


@pytest.mark.parametrize("scope, text, expected", [
    (6, "The acting was terrible, but the movie is great.",  # a comma does not end the scope
     "butx_the butx_acting butx_was butx_terrible but the movie is great"),
    (2, "The acting was terrible, but the movie is great.", "the acting butx_was butx_terrible but the movie is great"),
    (6, "Long. Dull, but fun!", "long butx_dull but fun"),  # the sentence's start ends it
    (6, "But it works. Fine, but why", "but it works butx_fine but why"),  # nothing before: no mark
    (6, "Fine; but why", "fine but why"),  # nor after a clause end other than a comma
    (1, "good but long but fun", "butx_good but butx_long but fun"),
    (2, "good but long but fun", "butx_good butx_but butx_long but fun"),  # each word marked once
    (6, "Butter, buttons but bbut", "butx_butter butx_buttons but bbut"),  # whole "but"s only
])
def test_contrast_marks_the_words_before_a_but_in_its_sentence(scope, text, expected):
    assert _standardize([text], contrast_scope=scope) == [expected]
    assert _standardize([text]) == [expected.replace("butx_", "")]


def test_a_word_in_a_negation_and_before_a_but_has_both_marks():
    assert _standardize(["It was not bad at all, but I hated it."], negation_scope=3, contrast_scope=3) == [
        "it was not butx_not_bad butx_not_at butx_not_all but i hated it"]


def test_negation_and_contrast_add_and_remove_no_token():
    texts = ["I did not love this film, not at all, but never again!", "nothing here but", "no"]
    counts = [len(s.split()) for s in _standardize(texts)]
    for negation, contrast in ((1, 0), (2, 0), (7, 0), (0, 1), (0, 5), (3, 3)):
        assert [len(s.split()) for s in _standardize(texts, negation, contrast)] == counts


def test_standardization_is_registered_serializable():
    assert keras.saving.get_registered_object("imdb_sentiment>Standardization") is Standardization
    serialized = keras.saving.serialize_keras_object(Standardization(4, 2))
    assert "imdb_sentiment" in str(serialized)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, Standardization) and (restored.negation_scope, restored.contrast_scope) == (4, 2)


TRAIN = ["Great movie, great acting!", "Awful plot. Awful acting.", "great fun<br />really great"]
VALIDATION = ["Zebra zeppelin great"]


def test_vectorizer_adapts_on_train_texts_only():
    vectorizer = make_vectorizer(max_features=50, sequence_length=6)
    adapt(vectorizer, TRAIN)
    vocab = vocabulary(vectorizer)
    assert vocab[:2] == ["", "[UNK]"]
    assert vocab[2] == "great"  # the most frequent train word comes first
    assert {"movie", "awful", "acting", "fun", "really", "plot"} <= set(vocab)
    assert "zebra" not in vocab and "zeppelin" not in vocab
    ids = vectorize(vectorizer, VALIDATION)
    assert ids.dtype == np.int32 and ids.shape == (1, 6)
    great = vocab.index("great")
    assert ids[0].tolist() == [OOV, OOV, great, PAD, PAD, PAD]


def test_vocabulary_is_capped_at_max_features_and_sequences_truncated():
    vectorizer = make_vectorizer(max_features=4, sequence_length=3)
    adapt(vectorizer, TRAIN)
    vocab = vocabulary(vectorizer)
    assert len(vocab) == 4
    assert vocab[:3] == ["", "[UNK]", "great"]
    ids = vectorize(vectorizer, ["great great great great great", "great"], batch_size=1)
    assert ids.tolist() == [[2, 2, 2], [2, PAD, PAD]]


def test_vectorizer_from_a_saved_vocabulary_gives_the_same_ids():
    adapted = make_vectorizer(max_features=50, sequence_length=8)
    adapt(adapted, TRAIN)
    rebuilt = make_vectorizer(50, 8, vocabulary=vocabulary(adapted))
    assert vocabulary(rebuilt) == vocabulary(adapted)
    texts = TRAIN + VALIDATION
    np.testing.assert_array_equal(vectorize(rebuilt, texts), vectorize(adapted, texts))


def test_split_is_disjoint_covers_all_and_has_the_rounded_size():
    for n, share in [(100, 0.2), (7, 0.3), (10, 0.5), (3, 0.4)]:
        train, val = split_train_validation(n, share, seed=0)
        assert len(val) == round(n * share)
        assert len(train) == n - len(val)
        assert not set(train) & set(val)
        assert sorted([*train, *val]) == list(range(n))
        assert list(train) == sorted(train) and list(val) == sorted(val)


def test_split_depends_on_the_seed_only():
    a_train, a_val = split_train_validation(1000, 0.2, seed=42)
    b_train, b_val = split_train_validation(1000, 0.2, seed=42)
    c_train, c_val = split_train_validation(1000, 0.2, seed=43)
    np.testing.assert_array_equal(a_train, b_train)
    np.testing.assert_array_equal(a_val, b_val)
    assert not np.array_equal(a_val, c_val)
    assert not np.array_equal(a_train, c_train)


def test_split_by_movie_puts_each_movie_s_reviews_on_one_side_near_the_share():
    rng = np.random.default_rng(0)
    movies = [f"tt{m}" for m in rng.integers(0, 400, size=5000)] + [""] * 100  # "" : no movie known
    for seed in (1, 2, 3):
        train, val = split_train_validation(len(movies), 0.2, seed, groups=movies)
        assert sorted([*train, *val]) == list(range(len(movies))) and list(val) == sorted(val)
        assert not {movies[i] for i in train} & {movies[i] for i in val} - {""}
        assert abs(len(val) - 1020) <= 15  # within one movie (about 12 reviews) of 20 %
        assert 0 < sum(movies[i] == "" for i in val) < 100  # those without a movie: each on its own
    a, b = (split_train_validation(len(movies), 0.2, s, groups=movies)[1] for s in (1, 2))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, split_train_validation(len(movies), 0.2, 1, groups=movies)[1])


@pytest.mark.parametrize("n, share", [(3, 0.1), (2, 0.9), (1, 0.5), (10, 0.99)])
def test_split_that_leaves_a_side_empty_is_an_error(n, share):
    with pytest.raises(ValueError, match=str(share)):
        split_train_validation(n, share, seed=0)


def test_token_counts_count_words_before_truncation():
    long_review = " ".join(["word"] * 50) + "!"
    texts = ["Hello, world!", "a<br />b", "...!!!", long_review, "  spaced   out  "]
    counts = token_counts(texts, batch_size=2)
    assert counts.tolist() == [2, 2, 0, 50, 2]
    vectorizer = make_vectorizer(max_features=20, sequence_length=10)
    adapt(vectorizer, texts)
    ids = vectorize(vectorizer, texts)
    assert (ids[3] != PAD).sum() == 10  # what the model sees is cut, the count is not


def test_bigrams_follow_the_words_and_share_the_vocabulary():
    vectorizer = make_vectorizer(max_features=50, sequence_length=8, ngrams=2)
    adapt(vectorizer, TRAIN)
    vocab = vocabulary(vectorizer)
    assert "great acting" in vocab and "awful plot" in vocab
    ids = vectorize(vectorizer, ["Great movie, great acting!"])[0]
    tokens = [vocab[i] for i in ids]
    assert tokens == ["great", "movie", "great", "acting", "great movie", "movie great", "great acting", ""]


def test_token_counts_with_bigrams_count_words_and_pairs():
    np.testing.assert_array_equal(token_counts(["a b c d", "one", "x y"], ngrams=2), [7, 1, 3])
    np.testing.assert_array_equal(token_counts(["a b c d"], ngrams=3), [9])


@pytest.mark.parametrize("ngrams", [1, 2])
def test_one_pass_gives_the_ids_and_counts_of_two(ngrams):
    texts = ["Hello, world!", "a<br />b c d e f g h i j k l", "...!!!", "great movie great acting " * 5]
    fixed = make_vectorizer(max_features=30, sequence_length=6, ngrams=ngrams)
    ragged = make_vectorizer(max_features=30, sequence_length=None, ngrams=ngrams)
    adapt(fixed, TRAIN + texts)
    adapt(ragged, TRAIN + texts)
    assert vocabulary(ragged) == vocabulary(fixed)
    ids, counts = vectorize_counting(ragged, texts, sequence_length=6, batch_size=3)
    assert ids.dtype == np.int32 and ids.shape == (4, 6)
    np.testing.assert_array_equal(ids, vectorize(fixed, texts))
    np.testing.assert_array_equal(counts, token_counts(texts, ngrams=ngrams))
    assert counts.max() > 6  # truncation happened, the count saw past it


def test_on_batch_hears_of_each_batch_in_order():
    ragged = make_vectorizer(max_features=30, sequence_length=None)
    adapt(ragged, TRAIN)
    done = []
    vectorize_counting(ragged, TRAIN + VALIDATION + TRAIN, sequence_length=6, batch_size=3, on_batch=done.append)
    assert done == [3, 3, 1]
