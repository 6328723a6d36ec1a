"""Import this module before loading a saved model of the project: importing it registers the
custom Keras objects (the attention layer, the bigram and position embeddings, the text standardization,
the optimizer), so that
``keras.saving.load_model`` needs no ``custom_objects`` argument::

    import keras
    import imdb_sentiment.custom_objects  # noqa: F401

    model = keras.saving.load_model("data/model/export.keras")

The package's ``__init__`` does not do this itself, so that the download and extract stages (and
DVC's record of what they import) stay free of TensorFlow and of the model code.
"""

from imdb_sentiment.attention import CustomMultiheadAttention
from imdb_sentiment.embeddings import HashedBigramEmbedding, PositionEmbedding
from imdb_sentiment.optimizer import LazyAdamW
from imdb_sentiment.text import custom_standardization

__all__ = [
    "CustomMultiheadAttention", "HashedBigramEmbedding", "LazyAdamW", "PositionEmbedding", "custom_standardization",
]
