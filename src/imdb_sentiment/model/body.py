"""The classifier's body, what comes before its pooling: the embeddings (words, word pairs,
positions) and the encoder blocks. The pretrain stage learns it on the reviews' own text and
saves it here; the train stage starts each classifier from it.

Its weights are stored by their Keras path (``embedding/embeddings``, ``encoder_1/...``), which
a classifier built from the same params has too, and matched by path and shape on loading.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from imdb_sentiment.errors import PipelineError
from imdb_sentiment.outputs import atomic_path, write_json

WEIGHTS = "body.npz"
BODY_OUTPUT = "body"  # the weightless layer the body ends in: every weight before it is the body's


def body_weights(model: keras.Model) -> list:
    """The weights of every layer between ``model``'s token input and its ``body`` layer."""
    tokens = model.get_layer("tokens").output
    return keras.Model(tokens, model.get_layer(BODY_OUTPUT).output).weights


def save_body_weights(model: keras.Model, folder: Path, summary: dict) -> None:
    """``folder/body.npz``: the body's weights by Keras path (the output layer's left out), and
    ``folder/pretraining.json``: ``summary``."""
    weights = {w.path: np.asarray(w) for w in body_weights(model)}
    with atomic_path(folder, directory=True) as tmp:
        np.savez(tmp / WEIGHTS, **weights)
        write_json(tmp / "pretraining.json", summary)


def load_body_weights(model: keras.Model, folder: Path) -> int:
    """Set the body weights of ``model`` (a classifier) from ``folder``; the number set, 0 where
    the folder holds none (pretraining off)."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        return 0
    saved = dict(np.load(path))
    body = body_weights(model)
    missing = sorted({w.path for w in body} - set(saved))
    if missing or len(saved) != len(body):
        raise PipelineError(f"{path} does not match the classifier's body (missing {missing or 'none'}); "
                            f"run `dvc repro pretrain`")
    for weight in body:
        if tuple(saved[weight.path].shape) != tuple(weight.shape):
            raise PipelineError(f"{path}: {weight.path} has shape {saved[weight.path].shape}, the classifier "
                                f"wants {tuple(weight.shape)}; run `dvc repro pretrain`")
        weight.assign(saved[weight.path])
    return len(body)
