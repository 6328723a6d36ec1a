"""The training layer: the fit itself, self-training and refit (``fit``), where and in what
precision it runs (``distribute``), and the software versions a run records (``environment``)."""
