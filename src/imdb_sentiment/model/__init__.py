"""The model layer: the hand-written attention, the embeddings and the n-gram branch it is built
from (``attention``, ``embeddings``, ``naive_bayes``), the classifier (``classifier``), its
optimizer, inference batches (``batching``, free of TensorFlow) and the model on disk (``saving``).
Importing ``imdb_sentiment.model.custom_objects`` registers the custom Keras objects."""
