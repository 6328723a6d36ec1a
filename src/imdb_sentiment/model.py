"""The classifier: Embedding -> CustomMultiheadAttention -> GlobalAveragePooling1D -> Dropout
-> Dense(1), trained on logits with binary cross-entropy and Adam."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras

from imdb_sentiment.attention import CustomMultiheadAttention
from imdb_sentiment.params import Params


def build_model(params: Params, vocabulary_size: int) -> keras.Model:
    """The classifier for token ids of any length; outputs one logit per review.

    With ``use_mask`` the embedding marks token id 0 as padding, the attention ignores it and
    the pooling averages over real tokens only. Without it, the original script's behaviour.
    """
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(
        vocabulary_size, params.embedding_dim, mask_zero=params.use_mask, name="embedding"
    )(tokens)
    x = CustomMultiheadAttention(
        params.embed_dim, params.num_heads, dropout=params.attention_dropout, name="attention"
    )(x)
    x = keras.layers.GlobalAveragePooling1D(name="pooling")(x)
    x = keras.layers.Dropout(params.dropout, name="dropout")(x)
    logits = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(tokens, logits, name="imdb_attention_classifier")


def compile_model(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
    )


def _renumber_shared_objects(node, ids: dict) -> None:
    """Replace each ``shared_object_id`` (a Python ``id()``, new in every process) by its rank."""
    if isinstance(node, dict):
        if "shared_object_id" in node:
            node["shared_object_id"] = ids.setdefault(node["shared_object_id"], len(ids))
        for value in node.values():
            _renumber_shared_objects(value, ids)
    elif isinstance(node, list):
        for value in node:
            _renumber_shared_objects(value, ids)


def save_model(model: keras.Model, path: Path) -> None:
    """Save as .keras with the same bytes for the same model, whenever and wherever it is saved.

    Keras stamps the save time into the archive (``date_saved``, the zip entries' dates) and
    memory addresses into the config (``shared_object_id``); without this, two identical
    training runs would give files with different DVC hashes.
    """
    model.save(path)
    with zipfile.ZipFile(path) as saved:
        entries = [(info, saved.read(info)) for info in saved.infolist()]
    with zipfile.ZipFile(path, "w") as fixed:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                config = json.loads(data)
                _renumber_shared_objects(config, {})
                data = json.dumps(config).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
            fixed.writestr(entry, data)
