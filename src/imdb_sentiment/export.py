"""The export model: raw review strings in, probability of a positive review out.

It chains the adapted ``TextVectorization`` (with the custom standardization), the trained
classifier and one sigmoid, since the classifier outputs logits.
"""

from __future__ import annotations

import keras

from imdb_sentiment.text import make_vectorizer


def build_export_model(model: keras.Model, vocabulary: list[str], sequence_length: int,
                       ngrams: int = 1) -> keras.Model:
    vectorizer = make_vectorizer(len(vocabulary), sequence_length, vocabulary=vocabulary, ngrams=ngrams)
    review = keras.Input(shape=(1,), dtype="string", name="review")
    logits = model(vectorizer(review))
    probability = keras.layers.Activation("sigmoid", name="probability")(logits)
    return keras.Model(review, probability, name="imdb_sentiment_export")
