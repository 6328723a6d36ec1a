"""The vectorized dataset on disk: token ids and labels per split, the vocabulary, statistics.

Layout of the folder: ``{train,validation,test,unlabeled}.npz``, ``vocabulary.txt`` (one token
a line, id = line) and ``standardization.json`` (the text standardization's config, which
whatever vectorizes new text with this vocabulary must apply too). Each ``.npz`` (uncompressed, so it loads as fast as it reads) holds

- ``tokens``: the reviews' token ids end to end, without padding, in the smallest unsigned
  integer type that holds every id of the vocabulary (uint16 for up to 65,536 tokens);
- ``lengths``: int32, each review's number of tokens (at most ``sequence_length``), so review
  ``i`` is ``tokens[sum(lengths[:i]):sum(lengths[:i + 1])]``;
- ``sequence_length``: the width :func:`load_split` pads every review to;
- ``y``: int8 labels, -1 for the unlabeled reviews of ``train/unsup``;
- ``ids``: the review ids.

The mean review is about a quarter of ``sequence_length`` tokens long, so this is several times
smaller than the padded int32 matrix that :func:`load_split` rebuilds from it. The vocabulary
comes from the training split only; the other splits are only looked up in it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from imdb_sentiment.dataset.extract import UNLABELED, read_split
from imdb_sentiment.errors import PipelineError
from imdb_sentiment.outputs import atomic_path
from imdb_sentiment.params import Params
from imdb_sentiment.features.text import (
    OOV, PAD, Standardization, adapt, make_vectorizer, split_train_validation, vectorize_counting, vocabulary)

VOCABULARY = "vocabulary.txt"
STANDARDIZATION = "standardization.json"
_TOKEN_TYPES = (np.uint8, np.uint16, np.uint32)


def token_dtype(vocabulary_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds the ids 0 .. ``vocabulary_size`` - 1."""
    needed = np.min_scalar_type(max(vocabulary_size - 1, 0))
    for dtype in _TOKEN_TYPES:
        if np.can_cast(needed, dtype):
            return np.dtype(dtype)
    raise ValueError(f"a vocabulary of {vocabulary_size:,} tokens does not fit 32-bit token ids")


def _real_tokens(lengths: np.ndarray, width: int) -> np.ndarray:
    """Where a padded matrix holds real tokens: the first ``lengths[row]`` columns of each row."""
    return np.arange(width) < lengths[:, None]


def write_split(path: Path, x: np.ndarray, y: np.ndarray, ids: np.ndarray, vocabulary_size: int) -> None:
    """Store padded token ids ``x`` (0 only after a review's last token) compactly at ``path``."""
    real = x != PAD
    lengths = real.sum(axis=1, dtype=np.int32)
    if not np.array_equal(real, _real_tokens(lengths, x.shape[1])):
        raise ValueError("token id 0 (padding) inside a review: only trailing padding can be dropped")
    np.savez(path, tokens=x[real].astype(token_dtype(vocabulary_size)), lengths=lengths,
             sequence_length=np.int64(x.shape[1]), y=y, ids=ids)


def _drop_empty(name: str, x: np.ndarray, y: np.ndarray, ids: np.ndarray):
    """Reviews with no token left after standardization cannot be classified: drop them."""
    keep = (x != PAD).any(axis=1)
    if not keep.all():
        tqdm.write(f"vectorize: warning: {int((~keep).sum())} {name} reviews have no words; dropped", file=sys.stderr)
    return x[keep], y[keep], ids[keep]


def _progress(total: int) -> tqdm:
    return tqdm(total=total, unit=" reviews", desc="vectorize", file=sys.stderr, disable=None, mininterval=1.0)


def _not_in_test(texts: list[str], test_texts: set[str]) -> np.ndarray:
    """Indices of the reviews whose text is no test review's: the archive holds a few reviews
    twice, once in test/ and once in train/ or train/unsup (123 and 270 of them); a model that
    trained on one would be tested on what it saw."""
    return np.asarray([i for i, text in enumerate(texts) if text not in test_texts], dtype=np.int64)


def vectorize_splits(params: Params, reviews: Path, out_dir: Path) -> dict:
    """Write the vectorized splits to ``out_dir``; return their statistics."""
    texts, labels, ids, movies = read_split(reviews / "train.jsonl")
    test_texts, test_labels, test_ids, test_movies = read_split(reviews / "test.jsonl")
    unlabeled_texts, unlabeled_labels, unlabeled_ids, _ = read_split(reviews / f"{UNLABELED}.jsonl")
    in_test = set(test_texts)
    labeled, unlabeled = _not_in_test(texts, in_test), _not_in_test(unlabeled_texts, in_test)
    dropped = {"train": len(texts) - len(labeled), "unlabeled": len(unlabeled_texts) - len(unlabeled)}
    texts, labels, ids, movies = ([texts[i] for i in labeled], labels[labeled], [ids[i] for i in labeled],
                                  [movies[i] for i in labeled])
    unlabeled_texts, unlabeled_labels, unlabeled_ids = ([unlabeled_texts[i] for i in unlabeled],
                                                        unlabeled_labels[unlabeled], [unlabeled_ids[i] for i in unlabeled])
    try:
        train_idx, val_idx = split_train_validation(len(texts), params.validation_split, params.seed,
                                                    groups=movies if params.split_by == "movie" else None)
    except ValueError as exc:
        raise PipelineError(f"validation_split: {exc}") from exc
    train_texts = [texts[i] for i in train_idx]
    # Ragged: every review's full token count (for the truncation statistic) comes with its ids.
    standardize = Standardization(params.negation_scope, params.contrast_scope)
    vectorizer = make_vectorizer(params.max_features, None, ngrams=params.ngrams, standardize=standardize)
    adapt(vectorizer, train_texts)  # the training part only: validation and test stay unseen
    vocab = vocabulary(vectorizer)

    splits = {
        "train": (train_texts, labels[train_idx], np.asarray(ids)[train_idx]),
        "validation": ([texts[i] for i in val_idx], labels[val_idx], np.asarray(ids)[val_idx]),
        "test": (test_texts, test_labels, np.asarray(test_ids)),
        "unlabeled": (unlabeled_texts, unlabeled_labels, np.asarray(unlabeled_ids)),
    }
    shared = {movies[i] for i in train_idx} & {movies[i] for i in val_idx} - {""}
    stats = {"vocabulary_size": len(vocab), "reviews": {},
             "movies": {"validation": len({movies[i] for i in val_idx} - {""}),
                        "shared_by_train_and_validation": len(shared),
                        "shared_by_train_and_test": len(set(movies) & set(test_movies) - {""})},
             "dropped_as_test_reviews": dropped}
    real_tokens = oov_tokens = truncated = total = 0
    with (atomic_path(out_dir, directory=True) as tmp,
          _progress(sum(len(split[0]) for split in splits.values())) as bar):
        for name, (split_texts, split_labels, split_ids) in splits.items():
            bar.set_postfix_str(name)
            x, counts = vectorize_counting(vectorizer, split_texts, params.sequence_length, on_batch=bar.update)
            if name != "unlabeled":  # the statistics describe the labeled reviews, as before
                real_tokens += int((x != PAD).sum())
                oov_tokens += int((x == OOV).sum())
                truncated += int((counts > params.sequence_length).sum())
                total += len(split_texts)
            x, y, kept_ids = _drop_empty(name, x, split_labels, split_ids)
            write_split(tmp / f"{name}.npz", x, y, kept_ids, len(vocab))
            stats["reviews"][name] = int(len(y))
        (tmp / VOCABULARY).write_text("\n".join(vocab) + "\n", encoding="utf-8")
        (tmp / STANDARDIZATION).write_text(json.dumps(standardize.get_config()) + "\n", encoding="utf-8")
    stats["oov_share"] = round(oov_tokens / max(real_tokens, 1), 6)
    stats["truncated_share"] = round(truncated / max(total, 1), 6)
    return stats


def _read_split(folder: Path, name: str) -> dict[str, np.ndarray]:
    path = folder / f"{name}.npz"
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the vectorize stage first")
    with np.load(path) as data:
        if "tokens" not in data:
            raise PipelineError(f"{path} has an older layout; run the vectorize stage again")
        return {key: data[key] for key in data.files}


def load_split(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(token ids, labels, review ids) of one split; token ids int32, one row a review,
    ``sequence_length`` columns, padded with 0 after each review's last token."""
    data = _read_split(folder, name)
    lengths = data["lengths"]
    x = np.zeros((len(lengths), int(data["sequence_length"])), dtype=np.int32)
    x[_real_tokens(lengths, x.shape[1])] = data["tokens"]
    return x, data["y"], data["ids"]


def load_ragged(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, lengths, labels, review ids) of one split, without padding: ``tokens`` holds
    every review's token ids end to end in the small unsigned type they are stored in, review
    ``i`` being the ``lengths[i]`` ids that start at ``offsets[i]``, with
    ``offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])``."""
    data = _read_split(folder, name)
    return data["tokens"], data["lengths"], data["y"], data["ids"]


def load_vocabulary(folder: Path) -> list[str]:
    path = folder / VOCABULARY
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the vectorize stage first")
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def load_standardization(folder: Path) -> Standardization:
    """The standardization the folder's vocabulary was made with."""
    path = folder / STANDARDIZATION
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the vectorize stage again")
    return Standardization.from_config(json.loads(path.read_text(encoding="utf-8")))
