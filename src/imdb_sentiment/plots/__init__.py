"""The reports layer: the plots stage's figures (``figures``) and what the model looked at in a
review (``explain``)."""
