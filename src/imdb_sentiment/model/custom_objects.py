"""Importing this module registers the project's custom Keras objects (the attention layer, the
encoder block, the bigram, region and position embeddings, the text standardization, the optimizer), so that a Keras config
that names them deserializes without a ``custom_objects`` argument; ``imdb_sentiment.model.saving``
imports it to rebuild the classifier::

    from imdb_sentiment.model.saving import load_classifier

    model = load_classifier("data/model")

The package's ``__init__`` does not do this itself, so that the download and extract stages (and
DVC's record of what they import) stay free of TensorFlow and of the model code.
"""

from imdb_sentiment.model.attention import CustomMultiheadAttention
from imdb_sentiment.model.embeddings import HashedBigramEmbedding, PositionEmbedding, RegionEmbedding
from imdb_sentiment.model.encoder import EncoderBlock
from imdb_sentiment.model.naive_bayes import NaiveBayesNgrams
from imdb_sentiment.model.optimizer import LazyAdamW
from imdb_sentiment.features.text import Standardization

__all__ = [
    "CustomMultiheadAttention", "EncoderBlock", "HashedBigramEmbedding", "LazyAdamW", "NaiveBayesNgrams", "PositionEmbedding",
    "RegionEmbedding", "Standardization",
]
