"""IMDB sentiment pipeline: the library that the DVC stages in ``stages/`` share.

Import ``imdb_sentiment.model.custom_objects`` to register its custom Keras objects (the attention layer
and the text standardization), so a saved model loads with plain ``keras.saving.load_model``.
"""

from imdb_sentiment.errors import PipelineError

__all__ = ["PipelineError"]
