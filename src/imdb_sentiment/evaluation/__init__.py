"""The evaluation layer: test-set metrics and the tables behind the ROC curve and the confusion
matrix, from logits (``metrics``). NumPy only."""
