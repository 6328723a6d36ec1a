"""The train-stage benchmark's arithmetic: it reads the stage's phase line and counts FLOPs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from imdb_sentiment.params import parse_params  # noqa: E402
from imdb_sentiment.training import Stopwatch  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("train_stage", PROJECT / "benchmarks" / "train_stage.py")
train_stage = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_stage)


def test_the_phase_line_the_stage_prints_is_what_the_benchmark_reads():
    stopwatch = Stopwatch()
    for name, seconds in (("load", 1.04), ("fit supervised", 69.91), ("validate supervised", 3.2),
                          ("pseudo-label", 6.0), ("fit self_trained", 134.1), ("fit supervised", 1.0)):
        stopwatch.add(name, seconds)
    phases = train_stage.parse_phases(f"train: seconds: {stopwatch.line()}")
    assert phases == {"load": 1.0, "fit supervised": 70.9, "validate supervised": 3.2, "pseudo-label": 6.0,
                      "fit self_trained": 134.1}


def test_forward_flops_count_the_products_at_the_padded_length():
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    params = parse_params({**raw, "embedding_dim": 8, "embed_dim": 4, "num_heads": 2, "sequence_length": 800})
    # 20 real tokens are padded to 32: projections 3*2*32*8*4, scores 2*32^2*4, pooled weights
    # 2*2*32^2, context 2*32*4, output 2*4*4, logit 2*4
    expected = 3 * 2 * 32 * 8 * 4 + 2 * 32 ** 2 * 4 + 2 * 2 * 32 ** 2 + 2 * 32 * 4 + 2 * 4 * 4 + 2 * 4
    assert train_stage.forward_flops(np.array([20]), params) == expected
    assert train_stage.forward_flops(np.array([20, 20]), params) == 2 * expected
    capped = parse_params({**raw, "embedding_dim": 8, "embed_dim": 4, "num_heads": 2, "sequence_length": 24})
    assert train_stage.forward_flops(np.array([20]), capped) < expected  # never past sequence_length
