"""Benchmark: this pipeline against the original script, on one machine, in one run.

Prints one table of:

1. training throughput at the original configuration (vocabulary 10,000, 250 tokens, embedding
   16, embed_dim 512, 8 heads, batch 32): the project's train step (vectorized arrays, masked,
   pooled attention) against a faithful re-implementation of the original script (its
   ``text_dataset_from_directory`` files mapped through ``TextVectorization`` in every epoch, its
   tf.matmul attention with no mask, its Sequential model), on the same reviews;
2. vectorization: reviews a second of the vectorize stage's path against the original's
   per-epoch mapping;
3. DVC's overhead: a no-op ``dvc repro`` and ``dvc status`` in a finished copy of the project;
4. peak memory and wall time of every stage, from a ``dvc repro`` of the default params;
5. accuracy per CPU-minute: test accuracy and train-stage time of the default params and of
   the original configuration (``dvc exp run`` with the original's params).

Parts 3-5 run the whole pipeline twice in a temporary clone (about 15 minutes and an hour on the
full dataset); ``--quick`` skips them.

    python benchmarks/speed.py --archive path/to/aclImdb_sample.tar.gz   # a small archive
    python benchmarks/speed.py --archive path/to/aclImdb_v1.tar.gz       # full dataset
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

from imdb_sentiment.training.distribute import use_precision  # noqa: E402
from imdb_sentiment.dataset.download import sha256_of  # noqa: E402
from imdb_sentiment.dataset.extract import extract, read_split  # noqa: E402
from imdb_sentiment.model.classifier import build_model, compile_model  # noqa: E402
from imdb_sentiment.params import ORIGINAL_CONFIGURATION, parse_params  # noqa: E402
from imdb_sentiment.features.text import (  # noqa: E402
    adapt, custom_standardization, make_vectorizer, split_train_validation, vectorize, vectorize_counting)
from imdb_sentiment.training.fit import batches, set_seed  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
ORIGINAL = {**ORIGINAL_CONFIGURATION, "precision": "float32", "distribute": "none"}


# --- the original script, re-implemented faithfully (its bugs included) ---------------------

class OriginalMultiHeadAttention(keras.layers.Layer):
    """The original's layer: tf.matmul attention, a mask argument nobody passes."""

    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.num_heads, self.embed_dim, self.depth = num_heads, embed_dim, embed_dim // num_heads
        self.wq, self.wk, self.wv = (keras.layers.Dense(embed_dim) for _ in range(3))
        self.dense = keras.layers.Dense(embed_dim)

    def split_heads(self, x, batch_size):
        x = tf.reshape(x, (batch_size, -1, self.num_heads, self.depth))
        return tf.transpose(x, perm=[0, 2, 1, 3])

    def call(self, inputs, mask=None):
        batch_size = tf.shape(inputs)[0]
        q = self.split_heads(self.wq(inputs), batch_size)
        k = self.split_heads(self.wk(inputs), batch_size)
        v = self.split_heads(self.wv(inputs), batch_size)
        logits = tf.matmul(q, k, transpose_b=True) / tf.math.sqrt(tf.cast(self.depth, tf.float32))
        if mask is not None:
            logits += mask * -1e9
        weights = tf.nn.softmax(logits, axis=-1)
        out = tf.transpose(tf.matmul(weights, v), perm=[0, 2, 1, 3])
        return self.dense(tf.reshape(out, (batch_size, -1, self.embed_dim)))


def original_model() -> keras.Model:
    model = keras.Sequential([
        keras.layers.Embedding(ORIGINAL["max_features"] + 1, ORIGINAL["embedding_dim"]),
        OriginalMultiHeadAttention(ORIGINAL["embed_dim"], ORIGINAL["num_heads"]),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dropout(ORIGINAL["dropout"]),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)])
    return model


def original_dataset(train_dir: Path):
    """The original's input pipeline: files read and vectorized again in every epoch."""
    raw_train = keras.utils.text_dataset_from_directory(
        train_dir, batch_size=ORIGINAL["batch_size"], validation_split=0.2, subset="training", seed=42, verbose=False)
    layer = keras.layers.TextVectorization(max_tokens=ORIGINAL["max_features"], standardize=custom_standardization,
                                           output_mode="int", output_sequence_length=ORIGINAL["sequence_length"])
    layer.adapt(raw_train.map(lambda text, label: text))
    return raw_train.map(lambda text, label: (layer(tf.expand_dims(text, -1)), label))


# --- measurements ----------------------------------------------------------------------------

def reviews_per_second(fit_steps, warmup: int, steps: int, batch: int) -> float:
    fit_steps(warmup)  # builds and traces the train function
    start = time.perf_counter()
    fit_steps(steps)
    return steps * batch / (time.perf_counter() - start)


def original_throughput(train_ds, warmup: int, steps: int) -> float:
    model = original_model()
    return reviews_per_second(lambda n: model.fit(train_ds.take(n), epochs=1, verbose=0),
                              warmup, steps, ORIGINAL["batch_size"])


def project_params(**overrides):
    return parse_params({**yaml.safe_load((PROJECT / "params.yaml").read_text()), **overrides})


def project_throughput(params, x: np.ndarray, y: np.ndarray, warmup: int, steps: int) -> float:
    """Reviews a second of the train stage's own step (model, batches, precision) for ``params``."""
    set_seed(params.seed)
    use_precision(params.precision)
    try:
        model = build_model(params, params.max_features)
    finally:
        use_precision("float32")
    compile_model(model, params.learning_rate, weight_decay=params.weight_decay, lazy_updates=params.lazy_updates)
    data = batches(x, y, params.batch_size, seed=params.seed, trim=params.use_mask)
    return reviews_per_second(lambda n: model.fit(data.take(n), epochs=1, verbose=0),
                              warmup, steps, params.batch_size)


def vectorized(params, texts: list[str]) -> np.ndarray:
    vectorizer = make_vectorizer(params.max_features, params.sequence_length, ngrams=params.ngrams)
    adapt(vectorizer, texts)
    return vectorize(vectorizer, texts)


def extract_for_original(archive: Path, dest: Path) -> Path:
    """aclImdb/train/{pos,neg} as files, as the original had them after deleting train/unsup."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if re.match(r"aclImdb/train/(pos|neg)/", m.name)]
        tar.extractall(dest, members=members, filter="data")
    return dest / "aclImdb" / "train"


def vectorize_rates(texts: list[str], original_train, repeats: int = 3) -> tuple[float, float, int]:
    """Reviews a second of one pass of each path, the best of ``repeats`` passes for both."""
    vectorizer = make_vectorizer(ORIGINAL["max_features"], None)  # as the stage: ids and counts, one pass
    adapt(vectorizer, texts)
    ours = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        vectorize_counting(vectorizer, texts, ORIGINAL["sequence_length"])
        ours = max(ours, len(texts) / (time.perf_counter() - start))
    original = 0.0
    for _ in range(repeats):  # one epoch of the original's input pipeline, nothing else
        start, count = time.perf_counter(), 0
        for tokens, _ in original_train:
            count += int(tokens.shape[0])
        original = max(original, count / (time.perf_counter() - start))
    return ours, original, count


def sh(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"speed: {' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result


def timed(args: list[str], cwd: Path, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        sh(args, cwd)
        best = min(best, time.perf_counter() - start)
    return best


def run_pipeline(archive: Path, workdir: Path) -> tuple[Path, dict]:
    """A temporary clone of the project pointed at ``archive``; each stage run and measured."""
    clone = workdir / "project"
    sh(["git", "clone", "-q", str(PROJECT), str(clone)], workdir)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["data"] = {"url": str(archive.resolve()), "sha256": sha256_of(archive)}
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = {}
    for stage in ("validate", "download", "extract", "vectorize", "train", "evaluate", "plots"):
        start = time.perf_counter()
        log = sh(["dvc", "repro", "--single-item", stage], clone).stdout
        peak = re.search(rf"{stage}: peak memory (\d+) MiB", log)
        stages[stage] = (time.perf_counter() - start, int(peak.group(1)) if peak else None)
    return clone, stages


def accuracy_row(clone: Path) -> str:
    metrics = json.loads((clone / "reports" / "metrics.json").read_text())["test"]
    minutes = json.loads((clone / "reports" / "train" / "metrics.json").read_text())["fit_seconds"] / 60
    kept = json.loads((clone / "reports" / "run.json").read_text())["epoch_kept"]
    return (f"test accuracy {metrics['accuracy']:.4f} (ROC AUC {metrics['roc_auc']:.4f}), train {minutes:.1f} min, "
            f"epoch kept {kept}, {metrics['accuracy'] * 100 / minutes:.1f} points/min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, required=True, help="aclImdb_v1.tar.gz or the sample archive")
    parser.add_argument("--steps", type=int, default=60, help="training steps timed for each model")
    parser.add_argument("--quick", action="store_true", help="skip the pipeline runs (parts 3-5)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
        tmp = Path(tmp)
        train_dir = extract_for_original(args.archive, tmp / "original")
        extract(args.archive, tmp / "reviews")
        texts, labels, _, _ = read_split(tmp / "reviews" / "train.jsonl")
        train_idx, _ = split_train_validation(len(texts), 0.2, 42)
        train_texts = [texts[i] for i in train_idx]
        original_train = original_dataset(train_dir)

        ours_vec, original_vec, n = vectorize_rates(train_texts, original_train)
        rows += [("vectorize: project, once per change of its params", f"{ours_vec:,.0f} reviews/s"),
                 ("vectorize: original, every epoch", f"{original_vec:,.0f} reviews/s"),
                 ("vectorize speed-up", f"{ours_vec / original_vec:.1f}x")]

        y = labels[train_idx]
        original = original_throughput(original_train, 3, args.steps)
        reference = project_params(**ORIGINAL)
        ours = project_throughput(reference, vectorized(reference, train_texts), y, 3, args.steps)
        rows += [("train step, original configuration: original script", f"{original:.1f} reviews/s"),
                 ("train step, original configuration: project", f"{ours:.1f} reviews/s"),
                 ("train step speed-up", f"{ours / original:.2f}x")]
        default = project_params()
        x = vectorized(default, train_texts)
        for variant, overrides in (("", {}), (", lazy_updates false (Keras's AdamW)", {"lazy_updates": False}),
                                   (", mixed_bfloat16", {"precision": "mixed_bfloat16"})):
            rate = project_throughput(project_params(**overrides), x, y, 3, args.steps)
            rows.append((f"train step, default params{variant}", f"{rate:.1f} reviews/s"))

        if not args.quick:
            clone, stages = run_pipeline(args.archive, tmp)
            rows.append(("no-op `dvc repro`", f"{timed(['dvc', 'repro'], clone):.2f} s"))
            rows.append(("`dvc status`", f"{timed(['dvc', 'status'], clone):.2f} s"))
            for stage, (seconds, peak) in stages.items():
                rows.append((f"stage {stage}", f"{seconds:.1f} s, peak memory {peak} MiB"))
            rows.append(("default pipeline, download excluded",
                         f"{sum(s for name, (s, _) in stages.items() if name != 'download') / 60:.1f} min"))
            rows.append(("default params", accuracy_row(clone)))
            sh(["dvc", "exp", "run", *[f"-S{k}={json.dumps(v)}" for k, v in ORIGINAL.items()]], clone)
            rows.append(("original configuration", accuracy_row(clone)))

    width = max(len(name) for name, _ in rows)
    print(f"\nbenchmark on {args.archive} ({n:,} training reviews), {os.cpu_count()} CPUs\n")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
