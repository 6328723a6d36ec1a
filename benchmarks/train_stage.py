"""Where the train stage's time goes, and how close its training steps come to the machine's
arithmetic speed.

Runs the train stage as DVC would (a fresh process: ``python stages/train.py``) on vectorized
data, with params.yaml's values and any ``-S key=value`` overrides, in a temporary folder; then
prints its wall time split into phases (process start, data loading, model building, each fit,
validation, pseudo-labelling, saving), and the GFLOP/s its training steps achieved against a
float32 matrix product's on the same machine (the compute floor)::

    python benchmarks/train_stage.py data/vectorized                  # the defaults
    python benchmarks/train_stage.py data/vectorized -S num_heads=4   # an experiment

The FLOPs are counted from the layer's matrix products at each batch's padded length (batches
hold reviews of similar length, cut to a multiple of 32 tokens): projections, scores, the
pooled weights and the output, times 3 for a training step (forward and backward); validation
and pseudo-labelling are timed, not counted. Softmax, masking and embedding lookups count no
FLOPs, so a low ratio means time spent outside the products. An average-pooled fit (the
self-training teacher's, by default) has no such products and gets no rate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from imdb_sentiment.model.classifier import LENGTH_STEP  # noqa: E402
from imdb_sentiment.params import Params, parse_params  # noqa: E402
from imdb_sentiment.features.vectorized import load_ragged  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    """Best-of-five float32 ``tf.matmul`` speed of two (size x size) matrices."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size)) / size ** 0.5  # keeps the chain's values in range

    @tf.function
    def products():
        x = a
        for _ in range(repeats):  # a chain: each product needs the last, so none can be skipped
            x = tf.matmul(x, b)
        return x

    products()  # trace
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        products().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 * repeats / best / 1e9


def forward_flops(lengths: np.ndarray, params) -> float:
    """Matrix-product FLOPs of one forward pass over reviews of these (real) lengths."""
    padded = np.minimum(-(-np.maximum(lengths, 1) // LENGTH_STEP) * LENGTH_STEP, params.sequence_length)
    padded = padded.astype(np.float64)
    e, d, h = params.embedding_dim, params.embed_dim, params.num_heads
    if params.pooling == "average":  # no attention: the mean of the vectors and the logit
        return float((padded * e + 2 * e).sum())
    if params.pooling == "query":  # one learned query: key and value projections, (steps) scores
        projections, scores = 2, 2 * padded * d
    else:  # query, key, value projections; scores, all heads; the weights averaged over the queries
        projections, scores = 3, 2 * padded ** 2 * d + 2 * h * padded ** 2
    per_review = (projections * 2 * padded * e * d + scores
                  + 2 * padded * d + 2 * d * d + 2 * d)  # context, output projection, logit
    return float(per_review.sum())


def run_stage(vectorized: Path, overrides: list[str]) -> tuple[float, dict[str, float], dict, str, Params]:
    """The train stage in a temporary folder: wall seconds, its phases, run.json, its output, its params."""
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    for item in overrides:
        key, value = item.split("=", 1)
        raw[key] = yaml.safe_load(value)
    params = parse_params(raw)  # fails here on a bad override
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        command = [sys.executable, str(PROJECT / "stages" / "train.py"), str(vectorized.resolve()),
                   "model", "live", "run.json"]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"train stage failed:\n{result.stdout}\n{result.stderr}")
        run = json.loads((folder / "run.json").read_text())
    line = next(line for line in result.stdout.splitlines() if line.startswith("train: seconds: "))
    return wall, parse_phases(line), run, result.stdout, params


def parse_phases(line: str) -> dict[str, float]:
    """The stage's ``train: seconds: load 1.0 s, fit supervised 69.9 s, ...`` as a mapping."""
    pairs = re.findall(r"([a-z_ -]+?) ([0-9.]+) s(?:,|$)", line.removeprefix("train: seconds: "))
    return {name.strip(): float(seconds) for name, seconds in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vectorized", type=Path, help="folder written by the vectorize stage")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a top-level param, as dvc exp run -S does")
    args = parser.parse_args()
    wall, phases, run, output, params = run_stage(args.vectorized, args.set)
    train_lengths = load_ragged(args.vectorized, "train")[1]
    unlabeled_lengths = load_ragged(args.vectorized, "unlabeled")[1]
    epochs_per_fit = run["epochs_run"]
    unlabeled_mean = forward_flops(unlabeled_lengths, params) / max(len(unlabeled_lengths), 1)
    # With self-training the first fit is the teacher's, pooled as teacher_pooling says.
    teacher = params.teacher() if params.pseudo_label_confidence else params
    train_flops = {}
    if teacher.pooling != "average":  # an average-pooled fit is lookups and sums: no products to rate
        train_flops["fit supervised"] = 3 * epochs_per_fit * forward_flops(train_lengths, teacher)
    if params.pseudo_label_confidence and params.pooling != "average":
        train_flops["fit self_trained"] = 3 * epochs_per_fit * (
            forward_flops(train_lengths, params) + run["pseudo_labelled_reviews"] * unlabeled_mean)
    floor = matmul_gflops()

    accounted = sum(s for name, s in phases.items() if not name.startswith("validate"))
    rows = [("process start, imports, TensorFlow set-up", wall - accounted)]
    for name, seconds in phases.items():
        if name.startswith("fit "):
            fit = name.removeprefix("fit ")
            validation = phases.get(f"validate {fit}", 0.0)
            rows.append((f"{name}: training steps", seconds - validation))
            rows.append((f"{name}: validation", validation))
        elif not name.startswith("validate"):
            rows.append((name, seconds))
    print(f"train stage, {' '.join(args.set) or 'defaults'}: {wall:.1f} s wall")
    print(f"{'phase':<46}{'seconds':>9}{'share':>8}")
    for name, seconds in rows:
        print(f"{name:<46}{seconds:>9.1f}{seconds / wall:>8.0%}")
    print(f"{'total':<46}{wall:>9.1f}")
    print()
    print(f"float32 matmul (1024 x 1024): {floor:.0f} GFLOP/s")
    for name, flops in train_flops.items():
        seconds = phases[name] - phases.get(f"validate {name.removeprefix('fit ')}", 0.0)
        achieved = flops / seconds / 1e9
        print(f"{name}: {flops / 1e12:.2f} TFLOP of matrix products in {seconds:.1f} s = "
              f"{achieved:.1f} GFLOP/s, {achieved / floor:.1%} of the matmul's")
    print(f"peak memory: {re.search(r'train: peak memory ([0-9]+) MiB', output).group(1)} MiB")


if __name__ == "__main__":
    main()
