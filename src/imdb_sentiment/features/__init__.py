"""The features layer: reviews to token ids (``text``: the custom standardization, the split,
``TextVectorization``) and the vectorized splits on disk (``vectorized``)."""
