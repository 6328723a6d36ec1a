"""Text to token ids: the custom standardization, the train/validation split, vectorization.

The standardization is a TensorFlow function: the SavedModel the train stage writes carries it
(with the vocabulary) and serves raw text without this package. It is also registered
serializable with Keras, for a Keras model that contains the adapted ``TextVectorization``.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf
import keras

PAD, OOV = 0, 1  # TextVectorization's reserved ids: padding, then the out-of-vocabulary token
NEGATED = "not_"  # the prefix of a word in a negation's scope
CONTRASTED = "butx_"  # the prefix of a word in the scope before a "but": what the "but" overrules
# Negations as the reviews spell them once the apostrophe is dropped ("didn't" -> "didnt").
NEGATORS = ("not", "no", "never", "nothing", "nobody", "none", "nowhere", "neither", "nor", "cannot",
            "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt",
            "shouldnt", "couldnt", "hasnt", "havent", "hadnt", "aint")
_CLAUSE_ENDS = ".,:;!?"  # where a negation's scope ends
_PUNCTUATION = f"[{re.escape(string.punctuation)}]"
_PUNCTUATION_BUT_CLAUSE_ENDS = f"[{re.escape(''.join(c for c in string.punctuation if c not in _CLAUSE_ENDS))}]"
_PUNCTUATION_BUT_MARK = f"[{re.escape(string.punctuation.replace('_', ''))}]"
_NEGATION = rf"\b({'|'.join(NEGATORS)})\s+([a-z0-9])"  # the next word's first letter: "not not" marks one
_NEGATED_THEN_WORD = rf"({NEGATED}[a-z0-9]+)\s+([a-z0-9]+)\b"  # \b: "not_x" is no word to mark again
# A word not yet marked before a "but" ("not_x" may be one): "butx_x" fails at its "_". Commas do
# not end the scope: "the acting was bad, but ..." is the case the mark is for.
_WORD_BEFORE_CONTRAST = rf"\b((?:{NEGATED})?[a-z0-9]+)([\s,]+)(but\b|{CONTRASTED})"


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class Standardization:
    """Lowercase, turn the reviews' ``<br />`` line breaks into spaces, drop ASCII punctuation.

    With ``negation_scope`` N > 0, first prefix ``not_`` to the N words after each negation, or to
    those before its clause ends (``.,:;!?``) if fewer: "I did not love it." becomes "i did not
    not_love not_it", as in Das and Chen (2001) and Pang et al. (2002). A bag of words then tells
    "love" from "not love"; without the marks both hold "love". A negation right after another is
    one of its words and starts no scope of its own.

    With ``contrast_scope`` N > 0, then prefix ``butx_`` to the N words before each "but", or to
    those after its sentence starts (``.:;!?``; a comma does not end it) if fewer: "The acting was
    bad, but the movie is good." becomes "the butx_acting butx_was butx_bad but the movie is good":
    what comes after "but" usually decides (the A-but-B rule of Hu et al. 2016), and a bag of
    words can then weigh "bad" before a "but" apart from "bad" elsewhere. A word in both scopes
    has both marks ("butx_not_bad").

    Words are never added or removed, so a review has the same number of tokens at any scope."""

    def __init__(self, negation_scope: int = 0, contrast_scope: int = 0):
        self.negation_scope = int(negation_scope)
        self.contrast_scope = int(contrast_scope)

    def __call__(self, text):
        lowercase = tf.strings.lower(text)
        text = tf.strings.regex_replace(lowercase, "<br />", " ")
        if not (self.negation_scope or self.contrast_scope):
            return tf.strings.regex_replace(text, _PUNCTUATION, "")
        text = tf.strings.regex_replace(text, _PUNCTUATION_BUT_CLAUSE_ENDS, "")  # also "_": only marks have it
        if self.negation_scope:
            text = tf.strings.regex_replace(text, _NEGATION, rf"\1 {NEGATED}\2")
        for _ in range(self.negation_scope - 1):  # each pass marks one more word of every scope
            text = tf.strings.regex_replace(text, _NEGATED_THEN_WORD, rf"\1 {NEGATED}\2")
        for _ in range(self.contrast_scope):  # each pass marks one more word, leftwards
            text = tf.strings.regex_replace(text, _WORD_BEFORE_CONTRAST, rf"{CONTRASTED}\1\2\3")
        return tf.strings.regex_replace(text, _PUNCTUATION_BUT_MARK, "")

    def get_config(self) -> dict:
        return {"negation_scope": self.negation_scope, "contrast_scope": self.contrast_scope}

    @classmethod
    def from_config(cls, config: dict) -> Standardization:
        return cls(**config)


def split_train_validation(n: int, validation_split: float, seed: int,
                           groups: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded random split of ``n`` items: (train, validation), each sorted.

    With ``groups`` (each item's movie) every group falls whole on one side: groups are drawn in
    a seeded random order until validation holds as near ``validation_split`` of the items as
    whole groups allow. An item of group "" is a group of its own. The dataset's train and test halves
    hold disjoint movies; a validation split that shares them with training would reward what
    the test split cannot: words peculiar to a movie (its title, its cast)."""
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"validation_split {validation_split} leaves no train or no validation item of {n}")
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    keys = [group or f"\0{i}" for i, group in enumerate(groups)]  # "" alone; "\0" names no movie
    names, of_item = np.unique(np.asarray(keys), return_inverse=True)
    sizes = np.bincount(of_item, minlength=len(names))
    drawn = rng.permutation(len(names))
    total = np.concatenate([[0], np.cumsum(sizes[drawn])])  # items in the first k groups drawn
    crossing = int(np.searchsorted(total, n_val))  # the first k that reach n_val
    k = crossing - 1 if n_val - total[crossing - 1] < total[crossing] - n_val else crossing  # the closer
    validation = np.isin(of_item, drawn[:max(k, 1)])
    if validation.all():
        raise ValueError(f"validation_split {validation_split} leaves no train item of {n} ({len(names)} movies)")
    return np.flatnonzero(~validation), np.flatnonzero(validation)


def make_vectorizer(max_features: int, sequence_length: int | None, vocabulary: list[str] | None = None,
                    ngrams: int = 1, standardize: Standardization | None = None):
    """With ``ngrams`` 2 a review of n words gives its n words, then its n - 1 word pairs, all
    drawn from one vocabulary of the ``max_features`` most frequent of either kind.

    ``sequence_length`` None: each review keeps all its tokens, as a ragged row. ``standardize``:
    the default :class:`Standardization` if None."""
    return keras.layers.TextVectorization(
        max_tokens=max_features,
        standardize=standardize or Standardization(),
        output_mode="int",
        output_sequence_length=sequence_length,
        ngrams=None if ngrams == 1 else ngrams,
        vocabulary=vocabulary,
        ragged=sequence_length is None,
        name="vectorizer",
    )


def adapt(vectorizer, texts: list[str], batch_size: int = 2048) -> None:
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(batch_size))


def vocabulary(vectorizer) -> list[str]:
    return list(vectorizer.get_vocabulary())


def vectorize(vectorizer, texts: list[str], batch_size: int = 2048) -> np.ndarray:
    """Token ids, int32, shape (len(texts), sequence_length), 0 where padded."""
    batches = [np.asarray(vectorizer(tf.constant(texts[i:i + batch_size])), dtype=np.int32)
               for i in range(0, len(texts), batch_size)]
    return np.concatenate(batches)


def vectorize_counting(vectorizer, texts: list[str], sequence_length: int, batch_size: int = 2048,
                       on_batch: Callable[[int], object] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For a ragged ``vectorizer``: token ids as :func:`vectorize` gives them at
    ``sequence_length``, and each review's number of tokens before truncation, in one pass.
    ``on_batch`` is called with the number of reviews of each batch done, in order.

    Batches run on every core at once: TensorFlow's string ops release the GIL, and one batch
    at a time keeps one core busy (2 threads: 2x the reviews a second on 2 cores)."""
    def one_batch(start: int) -> tuple[np.ndarray, np.ndarray]:
        rows = vectorizer(tf.constant(texts[start:start + batch_size]))
        ids = rows.to_tensor(shape=(rows.nrows(), sequence_length)).numpy().astype(np.int32)
        return ids, rows.row_lengths().numpy()

    batches = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for ids, counts in pool.map(one_batch, range(0, len(texts), batch_size)):
            batches.append((ids, counts))
            if on_batch is not None:
                on_batch(len(ids))
    if not batches:  # no review (an archive without train/unsup, say)
        return np.zeros((0, sequence_length), dtype=np.int32), np.zeros(0, dtype=np.int64)
    return np.concatenate([ids for ids, _ in batches]), np.concatenate([counts for _, counts in batches])


def token_counts(texts: list[str], batch_size: int = 2048, ngrams: int = 1) -> np.ndarray:
    """Number of tokens of each review after standardization, before truncation: its words,
    plus its runs of 2..``ngrams`` words (the same at every ``negation_scope`` and
    ``contrast_scope``: their marks prefix words and never add any)."""
    counts = []
    for i in range(0, len(texts), batch_size):
        tokens = tf.strings.split(Standardization()(tf.constant(texts[i:i + batch_size])))
        words = tokens.row_lengths().numpy()
        counts.append(sum(np.maximum(words - n + 1, 0) for n in range(1, ngrams + 1)))
    return np.concatenate(counts)
