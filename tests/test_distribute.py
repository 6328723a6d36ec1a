"""tf.distribute and mixed precision: TF_CONFIG checks, two workers on loopback that end with
identical weights, MirroredStrategy, bfloat16 layers with float32 logits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from conftest import committed_params_text  # noqa: E402
from imdb_sentiment.training.distribute import parse_tf_config  # noqa: E402
from imdb_sentiment.errors import PipelineError  # noqa: E402
from imdb_sentiment.params import parse_params  # noqa: E402
from imdb_sentiment.training.fit import train  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
TINY = {"max_features": 50, "sequence_length": 20, "embedding_dim": 8, "embed_dim": 8, "num_heads": 2,
        "batch_size": 8, "epochs": 1, "learning_rate": 0.01, "seed": 3, "bigram_buckets": 64,
        "nb_buckets": 256}


def tiny_raw(**overrides) -> dict:
    raw = yaml.safe_load(committed_params_text())
    raw.update(TINY, **overrides)
    return raw


def tiny_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(2, 50, size=(48, 20)).astype(np.int32)
    x[:, 14:] = 0
    return x, rng.integers(0, 2, size=48)


@pytest.mark.parametrize(("text", "expected"), [
    (None, "distribute: multi_worker needs the TF_CONFIG environment variable"),
    ("", "distribute: multi_worker needs the TF_CONFIG environment variable"),
    ("{cluster: }", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG: cluster.worker must be a list of host:port"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG: cluster.worker must be a list of host:port"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', "TF_CONFIG: task.type must be"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG: task.index must be an integer from 0 to 1, got 2"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
     "TF_CONFIG: task.index must be an integer from 0 to 0, got '0'"),
])
def test_missing_or_malformed_tf_config_is_one_clear_line(text, expected):
    with pytest.raises(PipelineError) as info:
        parse_tf_config(text)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_a_valid_tf_config_is_accepted():
    config = parse_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}')
    assert config["task"]["index"] == 1


def test_train_stage_without_tf_config_fails_before_training(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_raw(distribute="multi_worker")))
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    arguments = ["vectorized", "model", "train", "run.json"]
    result = subprocess.run([sys.executable, str(PROJECT / "stages" / "train.py"), *arguments], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        "train: error: distribute: multi_worker needs the TF_CONFIG environment variable")
    assert not (tmp_path / "model").exists()


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


WORKER = """
    import json, sys
    import numpy as np, yaml
    from imdb_sentiment.params import parse_params
    from imdb_sentiment.training.fit import train
    x, y = np.load("x.npy"), np.load("y.npy")
    model, rows, *_ = train(parse_params(yaml.safe_load(open("params.yaml"))), x[:32], y[:32], x[32:], y[32:], 50)
    np.savez(sys.argv[1], *model.get_weights())
    json.dump(rows, open(sys.argv[1] + ".json", "w"))
"""


@pytest.mark.slow  # two training processes forming a cluster: end to end, like the DVC runs
def test_two_multi_worker_processes_on_loopback_end_with_identical_weights(tmp_path):
    x, y = tiny_data()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_raw(distribute="multi_worker")))
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
        processes.append(subprocess.Popen([sys.executable, "-c", textwrap.dedent(WORKER), f"worker{index}.npz"],
                                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"{out}\n{err}"
    first, second = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert len(first.files) == len(second.files) > 0
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name])
    history = json.loads((tmp_path / "worker0.npz.json").read_text())
    assert len(history) == 1 and np.isfinite(history[0]["loss"])


def test_mirrored_strategy_trains_on_the_local_devices():
    x, y = tiny_data()
    model, rows, kept, _ = train(parse_params(tiny_raw(distribute="mirrored")), x[:32], y[:32], x[32:], y[32:], 50)
    assert kept == 1 and np.isfinite(rows[0]["loss"])


def test_global_batch_must_split_evenly_over_replicas():
    from imdb_sentiment.training.distribute import check_batch_size

    class FourReplicas:
        num_replicas_in_sync = 4

    with pytest.raises(PipelineError, match=r"batch_size \(10\) is the global batch and must be a multiple of the 4"):
        check_batch_size(10, FourReplicas())
    check_batch_size(12, FourReplicas())


def test_mixed_bfloat16_computes_in_bfloat16_with_float32_weights_and_logits():
    x, y = tiny_data()
    model, rows, *_ = train(parse_params(tiny_raw(precision="mixed_bfloat16")), x[:32], y[:32], x[32:], y[32:], 50)
    attention = model.get_layer("attention")
    assert attention.compute_dtype == "bfloat16" and attention.variable_dtype == "float32"
    assert model.get_layer("logit").compute_dtype == "float32"
    assert np.isfinite(rows[0]["loss"])
    import keras
    assert keras.mixed_precision.dtype_policy().name == "float32"  # not left behind for later models
