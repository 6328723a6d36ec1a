"""The dataset layer: the IMDB archive downloaded and verified (``download``), its reviews
extracted to one JSON Lines file a split and read back (``extract``). No TensorFlow here."""
