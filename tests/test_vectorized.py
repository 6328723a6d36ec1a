"""The vectorized splits on disk: stored without padding in small ids, loaded back padded."""

from __future__ import annotations

import io
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

import archives  # noqa: E402
from archives import make_archive  # noqa: E402
from conftest import PROJECT, TINY_PARAMS, committed_params_text  # noqa: E402
from imdb_sentiment.dataset.extract import extract  # noqa: E402
from imdb_sentiment.errors import PipelineError  # noqa: E402
from imdb_sentiment.params import parse_params  # noqa: E402
from imdb_sentiment.features.vectorized import (  # noqa: E402
    load_ragged,
    load_split,
    load_standardization,
    token_dtype,
    vectorize_splits,
    write_split,
)

WIDTH = 5
X = np.array([
    [7, 3, 9, 0, 0],
    [2, 2, 2, 2, 2],  # full length: no padding at all
    [29_999, 0, 0, 0, 0],
    [1, 4, 0, 0, 0],
], dtype=np.int32)
Y = np.array([1, 0, 1, -1], dtype=np.int8)
IDS = np.array(["pos/1_9.txt", "neg/2_1.txt", "pos/3_8.txt", "unsup/4_0.txt"])


@pytest.mark.parametrize("vocabulary_size, dtype", [
    (2, np.uint8), (256, np.uint8), (257, np.uint16), (30_000, np.uint16),
    (65_536, np.uint16), (65_537, np.uint32), (1_000_000, np.uint32),
])
def test_token_dtype_is_the_smallest_that_holds_every_id(vocabulary_size, dtype):
    assert token_dtype(vocabulary_size) == dtype


def test_token_dtype_refuses_ids_over_32_bits():
    with pytest.raises(ValueError, match="32-bit"):
        token_dtype(2**32 + 1)


def test_round_trip_gives_back_the_padded_arrays(tmp_path):
    write_split(tmp_path / "train.npz", X, Y, IDS, vocabulary_size=30_000)
    x, y, ids = load_split(tmp_path, "train")
    for loaded, written in ((x, X), (y, Y), (ids, IDS)):
        assert loaded.dtype == written.dtype and loaded.shape == written.shape
        np.testing.assert_array_equal(loaded, written)


def test_stored_without_padding_in_small_ids(tmp_path):
    write_split(tmp_path / "train.npz", X, Y, IDS, vocabulary_size=30_000)
    with np.load(tmp_path / "train.npz") as data:
        assert data["tokens"].dtype == np.uint16
        np.testing.assert_array_equal(data["tokens"], [7, 3, 9, 2, 2, 2, 2, 2, 29_999, 1, 4])
        np.testing.assert_array_equal(data["lengths"], [3, 5, 1, 2])
        assert int(data["sequence_length"]) == WIDTH


def test_large_vocabulary_keeps_its_ids(tmp_path):
    x = X.copy()
    x[0, 0] = 70_000
    write_split(tmp_path / "test.npz", x, Y, IDS, vocabulary_size=70_001)
    with np.load(tmp_path / "test.npz") as data:
        assert data["tokens"].dtype == np.uint32
    np.testing.assert_array_equal(load_split(tmp_path, "test")[0], x)


def test_load_ragged_gives_each_review_its_tokens(tmp_path):
    write_split(tmp_path / "test.npz", X, Y, IDS, vocabulary_size=30_000)
    tokens, lengths, y, ids = load_ragged(tmp_path, "test")
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for row, start, length in zip(X, offsets, lengths):
        np.testing.assert_array_equal(tokens[start:start + length], row[row != 0])
    np.testing.assert_array_equal(y, Y)
    np.testing.assert_array_equal(ids, IDS)


def test_empty_split_round_trips(tmp_path):
    write_split(tmp_path / "unlabeled.npz", X[:0], Y[:0], IDS[:0], vocabulary_size=30_000)
    x, y, ids = load_split(tmp_path, "unlabeled")
    assert x.shape == (0, WIDTH) and x.dtype == np.int32 and len(y) == len(ids) == 0


def test_padding_inside_a_review_is_refused(tmp_path):
    x = X.copy()
    x[0, 1] = 0
    with pytest.raises(ValueError, match="inside a review"):
        write_split(tmp_path / "train.npz", x, Y, IDS, vocabulary_size=30_000)
    assert not (tmp_path / "train.npz").exists()


def test_missing_or_older_files_name_the_stage_to_run(tmp_path):
    with pytest.raises(PipelineError, match="run the vectorize stage first"):
        load_split(tmp_path, "train")
    np.savez(tmp_path / "train.npz", x=X, y=Y, ids=IDS)  # the padded layout of earlier releases
    with pytest.raises(PipelineError, match="run the vectorize stage again"):
        load_split(tmp_path, "train")
    with pytest.raises(PipelineError, match="standardization.json does not exist; run the vectorize stage again"):
        load_standardization(tmp_path)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_vectorize_splits_writes_what_load_split_reads_and_shows_progress(tmp_path, monkeypatch):
    extract(make_archive(tmp_path / "aclImdb_v1.tar.gz"), tmp_path / "reviews")
    params = parse_params({**yaml.safe_load(committed_params_text()), **TINY_PARAMS, "negation_scope": 2,
                           "contrast_scope": 4})
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    stats = vectorize_splits(params, tmp_path / "reviews", tmp_path / "vectorized")
    assert "vectorize: 100%" in terminal.getvalue()
    for name, reviews in stats["reviews"].items():
        x, y, ids = load_split(tmp_path / "vectorized", name)
        assert x.shape == (reviews, params.sequence_length) and len(y) == len(ids) == reviews
        tokens, lengths, _, _ = load_ragged(tmp_path / "vectorized", name)
        assert tokens.dtype == np.uint8 and lengths.sum() == tokens.size == (x != 0).sum()
    standardization = load_standardization(tmp_path / "vectorized")
    assert (standardization.negation_scope, standardization.contrast_scope) == (2, 4)


def vectorized_ids(folder, name) -> list[str]:
    return [str(i) for i in load_split(folder, name)[2]]


@pytest.mark.parametrize("split_by", ["movie", "review"])
def test_validation_holds_whole_movies_and_no_review_of_the_test_split(tmp_path, split_by):
    """The archive holds a few test reviews twice (in train/ and train/unsup): dropped there."""
    reviews = archives.default_reviews(12)
    reviews["train/pos"][5] = reviews["test/neg"][2]  # the same text, as the archive has 123 times
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz", reviews, unsup=0,
                           extra_members=[archives.file_member("aclImdb/train/unsup/0_0.txt", reviews["test/pos"][1])])
    extract(archive, tmp_path / "reviews")
    params = parse_params({**yaml.safe_load(committed_params_text()), **TINY_PARAMS, "split_by": split_by})
    stats = vectorize_splits(params, tmp_path / "reviews", tmp_path / "vectorized")
    assert stats["dropped_as_test_reviews"] == {"train": 1, "unlabeled": 1}
    train, validation = (vectorized_ids(tmp_path / "vectorized", name) for name in ("train", "validation"))
    assert "pos/5_8.txt" not in train + validation and stats["reviews"]["unlabeled"] == 0
    assert len(train) + len(validation) == 23  # 2 x 12, less the duplicate
    movie = {f"{cls}/{archives.review_name(cls, i)}": archives.movie_of("train", cls, i)
             for cls in ("neg", "pos") for i in range(12)}
    shared = {movie[i] for i in train} & {movie[i] for i in validation}
    assert stats["movies"]["shared_by_train_and_validation"] == len(shared)
    assert stats["movies"]["shared_by_train_and_test"] == 0
    if split_by == "movie":
        assert shared == set() and abs(len(validation) - round(23 * params.validation_split)) <= 1
