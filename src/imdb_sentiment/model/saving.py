"""The trained model on disk: one TensorFlow SavedModel that serves raw review strings and holds
the classifier's weights once, beside the Keras config that rebuilds the classifier from them.

Layout of the model folder (``data/model``)::

    saved_model.pb, variables/   the SavedModel. Signature ``serving_default``: ``reviews``
                                 (string, [batch]) -> ``probability`` (float32, [batch]) of a
                                 positive review. Needs TensorFlow only, not this package.
    classifier.json              Keras config of the classifier (token ids in, logit out)

No optimizer state is saved: a saved model is for predicting, not for resuming training. The
SavedModel vectorizes as the vectorize stage does (its standardization, the training split's
vocabulary, the first ``sequence_length`` tokens) and, for a model that masks padding, pads each
batch only to its longest review, so that a batch of short reviews costs little.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import imdb_sentiment.model.custom_objects  # noqa: F401  (the classifier's config names them)
from imdb_sentiment.errors import PipelineError
from imdb_sentiment.model.classifier import masks_padding
from imdb_sentiment.outputs import atomic_path
from imdb_sentiment.features.text import Standardization, make_vectorizer

CONFIG = "classifier.json"
SIGNATURE = "serving_default"


class _Serving(tf.Module):
    """What the SavedModel holds: the vectorizer, the classifier, and two functions."""

    def __init__(self, classifier: keras.Model, vocabulary: list[str], sequence_length: int, ngrams: int,
                 standardize: Standardization):
        super().__init__(name="imdb_sentiment")
        self.vectorizer = make_vectorizer(len(vocabulary), None, vocabulary=vocabulary, ngrams=ngrams,
                                          standardize=standardize)
        self.classifier = classifier
        self.sequence_length = sequence_length
        self.trims = masks_padding(classifier)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="reviews")])
    def serve(self, reviews):
        tokens = self.vectorizer(reviews)[:, :self.sequence_length]
        if self.trims:  # one column more than the longest review: a batch of empty reviews still has a shape
            ids = tf.pad(tokens.to_tensor(), [[0, 0], [0, 1]])
        else:  # without the mask, padding takes part: pad as in training
            ids = tokens.to_tensor(shape=[None, self.sequence_length])
        logits = self.classifier(tf.cast(ids, tf.int32), training=False)
        return {"probability": tf.sigmoid(tf.cast(logits[:, 0], tf.float32))}

    @tf.function(input_signature=[])
    def classifier_weights(self):
        """The classifier's weights, in the order of :meth:`classifier_weight_paths`."""
        return [tf.identity(w.value) for w in self.classifier.weights]

    @tf.function(input_signature=[])
    def classifier_weight_paths(self):
        """Each weight's Keras path (``layer/sublayer/name``): what :func:`load_classifier`
        restores it by."""
        return tf.constant([w.path for w in self.classifier.weights])


def _config_json(model: keras.Model) -> str:
    """The model's Keras config without its compile settings (a loaded model is not compiled)."""
    config = json.loads(model.to_json())
    config.pop("compile_config", None)
    return json.dumps(config, sort_keys=True)


def _for_inference(config: dict) -> dict:
    """The classifier's config without what serves training only: the n-gram branch's fold ratios."""
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "NaiveBayesNgrams":
            layer["config"]["folds"] = 0
    return config


def _without_optimizer(model: keras.Model) -> keras.Model:
    """A copy of ``model`` built from its config for inference, with its weights and nothing else:
    a compiled model would take its optimizer (twice the weights again) into the SavedModel."""
    copy = keras.models.model_from_json(json.dumps(_for_inference(json.loads(_config_json(model)))))
    kept = {w.path for w in copy.weights}
    copy.set_weights(weights_by_path(copy, {w.path: w.numpy() for w in model.weights if w.path in kept}))
    return copy


def save_model(model: keras.Model, vocabulary: list[str], sequence_length: int, ngrams: int, folder: Path,
               standardize: Standardization | None = None) -> None:
    """Write ``folder`` (replacing it whole, or leaving it as it was if this fails). ``standardize``:
    the vocabulary's (the default :class:`Standardization` if None)."""
    classifier = _without_optimizer(model)
    serving = _Serving(classifier, vocabulary, sequence_length, ngrams, standardize or Standardization())
    with atomic_path(folder, directory=True) as tmp:
        tf.saved_model.save(serving, str(tmp), signatures={SIGNATURE: serving.serve})
        (tmp / CONFIG).write_text(_config_json(classifier), encoding="utf-8")
        _drop_empty_assets(tmp)
        _stable_fingerprint(tmp)


def _drop_empty_assets(folder: Path) -> None:
    """TensorFlow writes an empty ``assets/`` folder, which git and DVC would not keep anyway."""
    assets = folder / "assets"
    if assets.is_dir() and not any(assets.iterdir()):
        assets.rmdir()


def _stable_fingerprint(folder: Path) -> None:
    """TensorFlow stamps a random uuid into ``fingerprint.pb``; make it a function of the saved
    graph and weights, so the same model gives the same bytes (and one DVC hash) every time."""
    from tensorflow.core.protobuf import fingerprint_pb2

    path = folder / "fingerprint.pb"
    if not path.is_file():
        return
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(path.read_bytes())
    fingerprint.uuid = str(fingerprint.saved_model_checksum ^ fingerprint.checkpoint_hash)
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def _require_model(folder: Path) -> None:
    if not (folder / "saved_model.pb").is_file():
        raise PipelineError(f"model {folder} not found (no saved_model.pb); run `dvc repro train` to train it")


def load_serving(folder: Path):
    """The SavedModel: ``.serve(reviews)`` gives ``{"probability": ...}``."""
    folder = Path(folder)
    _require_model(folder)
    try:
        return tf.saved_model.load(str(folder))
    except Exception as exc:  # TensorFlow raises several types for a damaged SavedModel
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"{folder} is not a valid model folder ({first_line})") from exc


def load_classifier(folder: Path) -> keras.Model:
    """The Keras classifier (token ids in, logit out), rebuilt from ``classifier.json`` with the
    SavedModel's weights."""
    folder = Path(folder)
    serving = load_serving(folder)  # kept referenced: its weights are freed with it
    config = folder / CONFIG
    if not config.is_file():
        raise PipelineError(f"{config} not found; run `dvc repro train` to write the model again")
    model = keras.models.model_from_json(config.read_text(encoding="utf-8"))
    if not hasattr(serving, "classifier_weight_paths"):
        raise PipelineError(f"{folder} was written by an older version (no weight names); run `dvc repro train`")
    paths = [path.decode("utf-8") for path in serving.classifier_weight_paths().numpy()]
    values = [np.asarray(w) for w in serving.classifier_weights()]
    try:
        model.set_weights(weights_by_path(model, dict(zip(paths, values))))
    except ValueError as exc:
        raise PipelineError(f"{folder}: {exc}; run `dvc repro train`") from exc
    return model


def weights_by_path(model: keras.Model, saved: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The saved values in ``model.weights``' order, matched by path and checked by shape: the
    attention's four projections have one shape, so a match by position alone could swap them."""
    wanted = {w.path: tuple(w.shape) for w in model.weights}
    if len(wanted) != len(model.weights):
        raise ValueError("the classifier has two weights of one path")
    missing, extra = sorted(set(wanted) - set(saved)), sorted(set(saved) - set(wanted))
    if missing or extra:
        raise ValueError(f"the saved weights do not match {CONFIG}: missing {missing or 'none'}, "
                         f"unexpected {extra or 'none'}")
    for path, shape in wanted.items():
        if tuple(saved[path].shape) != shape:
            raise ValueError(f"the saved weight {path} has shape {tuple(saved[path].shape)}, {CONFIG} wants {shape}")
    return [saved[w.path] for w in model.weights]
