"""Where and in what precision the train stage computes: tf.distribute and Keras mixed precision.

``distribute``:

- ``none``: TensorFlow's default, one device (all CPU cores, or the first GPU).
- ``mirrored``: ``MirroredStrategy``, a replica on every local GPU (the CPU where there is none).
- ``multi_worker``: ``MultiWorkerMirroredStrategy``, one process a machine, the cluster described
  by the ``TF_CONFIG`` environment variable (docs/distributed.md).

``batch_size`` is the global batch: each of N replicas computes batch_size / N reviews of every
step and the gradients are summed across replicas, so a step is the same step on 1 or N replicas
and ``learning_rate`` needs no scaling (results agree up to the order of the floating-point sums).

``precision``: ``float32``; ``mixed_float16`` (GPUs with tensor cores); ``mixed_bfloat16`` (GPUs,
TPUs, CPUs with AVX512_BF16 or AMX). The layers compute in 16 bits and keep float32 weights; the
softmax of the attention and the output logit stay in float32.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from imdb_sentiment.errors import PipelineError

TF_CONFIG_HELP = ('expected e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                  '"task": {"type": "worker", "index": 0}}\'')


def parse_tf_config(text: str | None) -> dict:
    """The cluster spec of ``TF_CONFIG``, checked; a PipelineError names what is wrong."""
    if not text:
        raise PipelineError(f"distribute: multi_worker needs the TF_CONFIG environment variable; {TF_CONFIG_HELP}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"TF_CONFIG is not valid JSON ({exc}); {TF_CONFIG_HELP}") from exc
    workers = config.get("cluster", {}).get("worker") if isinstance(config, dict) else None
    if not isinstance(workers, list) or not workers or not all(isinstance(w, str) and ":" in w for w in workers):
        raise PipelineError(f"TF_CONFIG: cluster.worker must be a list of host:port addresses; {TF_CONFIG_HELP}")
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in ("worker", "chief"):
        raise PipelineError(f"TF_CONFIG: task.type must be \"worker\" (or \"chief\"); {TF_CONFIG_HELP}")
    index = task.get("index")
    members = len(config["cluster"].get(task["type"], []))
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < members:
        raise PipelineError(f"TF_CONFIG: task.index must be an integer from 0 to {members - 1}, got {index!r}")
    return config


def strategy_for(distribute: str) -> tf.distribute.Strategy:
    if distribute == "none":
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    parse_tf_config(os.environ.get("TF_CONFIG"))
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_batch_size(batch_size: int, strategy: tf.distribute.Strategy) -> None:
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise PipelineError(f"params.yaml: batch_size ({batch_size}) is the global batch and must be a multiple "
                            f"of the {replicas} replicas of distribute")


def use_precision(precision: str) -> None:
    """Set the Keras dtype policy for the layers built next."""
    keras.mixed_precision.set_global_policy(precision)
