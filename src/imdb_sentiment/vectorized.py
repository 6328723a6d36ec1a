"""The vectorized dataset on disk: token ids and labels per split, the vocabulary, statistics.

Layout of the folder: ``{train,validation,test,unlabeled}.npz`` (``x`` int32 token ids padded
with 0, ``y`` int8 labels, -1 for the unlabeled reviews of ``train/unsup``, ``ids`` review ids) and
``vocabulary.txt`` (one token a line, id = line). The vocabulary comes from the training split
only; the other splits are only looked up in it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from imdb_sentiment.data import UNLABELED, read_split
from imdb_sentiment.errors import PipelineError
from imdb_sentiment.outputs import atomic_path
from imdb_sentiment.params import Params
from imdb_sentiment.text import OOV, PAD, adapt, make_vectorizer, split_train_validation, vectorize_counting, vocabulary

VOCABULARY = "vocabulary.txt"


def _drop_empty(name: str, x: np.ndarray, y: np.ndarray, ids: np.ndarray):
    """Reviews with no token left after standardization cannot be classified: drop them."""
    keep = (x != PAD).any(axis=1)
    if not keep.all():
        print(f"vectorize: warning: {int((~keep).sum())} {name} reviews have no words; dropped", file=sys.stderr)
    return x[keep], y[keep], ids[keep]


def vectorize_splits(params: Params, reviews: Path, out_dir: Path) -> dict:
    """Write the vectorized splits to ``out_dir``; return their statistics."""
    texts, labels, ids = read_split(reviews / "train.jsonl")
    test_texts, test_labels, test_ids = read_split(reviews / "test.jsonl")
    unlabeled_texts, unlabeled_labels, unlabeled_ids = read_split(reviews / f"{UNLABELED}.jsonl")
    try:
        train_idx, val_idx = split_train_validation(len(texts), params.validation_split, params.seed)
    except ValueError as exc:
        raise PipelineError(f"validation_split: {exc}") from exc
    train_texts = [texts[i] for i in train_idx]
    # Ragged: every review's full token count (for the truncation statistic) comes with its ids.
    vectorizer = make_vectorizer(params.max_features, None, ngrams=params.ngrams)
    adapt(vectorizer, train_texts)  # the training part only: validation and test stay unseen
    vocab = vocabulary(vectorizer)

    splits = {
        "train": (train_texts, labels[train_idx], np.asarray(ids)[train_idx]),
        "validation": ([texts[i] for i in val_idx], labels[val_idx], np.asarray(ids)[val_idx]),
        "test": (test_texts, test_labels, np.asarray(test_ids)),
        "unlabeled": (unlabeled_texts, unlabeled_labels, np.asarray(unlabeled_ids)),
    }
    stats = {"vocabulary_size": len(vocab), "reviews": {}}
    real_tokens = oov_tokens = truncated = total = 0
    with atomic_path(out_dir, directory=True) as tmp:
        for name, (split_texts, split_labels, split_ids) in splits.items():
            x, counts = vectorize_counting(vectorizer, split_texts, params.sequence_length)
            if name != "unlabeled":  # the statistics describe the labeled reviews, as before
                real_tokens += int((x != PAD).sum())
                oov_tokens += int((x == OOV).sum())
                truncated += int((counts > params.sequence_length).sum())
                total += len(split_texts)
            x, y, kept_ids = _drop_empty(name, x, split_labels, split_ids)
            np.savez(tmp / f"{name}.npz", x=x, y=y, ids=kept_ids)
            stats["reviews"][name] = int(len(y))
        (tmp / VOCABULARY).write_text("\n".join(vocab) + "\n", encoding="utf-8")
    stats["oov_share"] = round(oov_tokens / max(real_tokens, 1), 6)
    stats["truncated_share"] = round(truncated / max(total, 1), 6)
    return stats


def load_split(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(token ids, labels, review ids) of one split."""
    path = folder / f"{name}.npz"
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the vectorize stage first")
    with np.load(path) as data:
        return data["x"], data["y"], data["ids"]


def load_vocabulary(folder: Path) -> list[str]:
    path = folder / VOCABULARY
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the vectorize stage first")
    return path.read_text(encoding="utf-8").split("\n")[:-1]
