"""Benchmark: the layer's explicit attention against Keras's fused `ops.dot_product_attention`.

Times a training step (forward and backward) of the attention layer alone at the original
configuration (batch 32, 250 tokens, 16-dim input, embed_dim 512, 8 heads, padding mask), checks
that both forms agree, and prints a table. Usage: python benchmarks/attention_kernels.py [--steps N]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from imdb_sentiment.model.attention import CustomMultiheadAttention  # noqa: E402


class FusedAttention(CustomMultiheadAttention):
    """The same layer with the scores, mask, softmax and weighted sum in one fused op."""

    def call(self, inputs, mask=None, training=None):
        batch, steps = ops.shape(inputs)[0], ops.shape(inputs)[1]
        shape = (batch, steps, self.num_heads, self.depth)  # the fused op wants (B, T, H, D)
        query = ops.reshape(self.query_dense(inputs), shape)
        key = ops.reshape(self.key_dense(inputs), shape)
        value = ops.reshape(self.value_dense(inputs), shape)
        keep = None if mask is None else ops.cast(mask, "bool")[:, None, None, :]
        attended = ops.dot_product_attention(query, key, value, mask=keep)
        return self.output_dense(ops.reshape(attended, (batch, steps, self.embed_dim)))


def make_inputs(batch: int, steps: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    lengths = rng.integers(steps // 4, steps + 1, size=batch)
    mask = np.arange(steps)[None, :] < lengths[:, None]
    return tf.constant(x), tf.constant(mask)


def step_time(layer, x, mask, steps: int) -> float:
    """Seconds per forward+backward pass, after one warm-up call that traces the function."""
    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, mask=mask, training=True)))
        return tape.gradient(loss, layer.trainable_weights)

    train_step()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=250)
    args = parser.parse_args()
    x, mask = make_inputs(args.batch, args.length, 16)
    explicit = CustomMultiheadAttention(512, 8, name="explicit")
    fused = FusedAttention(512, 8, name="fused")
    explicit(x, mask=mask), fused(x, mask=mask)
    fused.set_weights(explicit.get_weights())
    real = mask.numpy()
    difference = np.abs(explicit(x, mask=mask).numpy() - fused(x, mask=mask).numpy())[real].max()
    times = {}
    for _ in range(2):  # alternate, so that load from other processes hits both alike
        for name, layer in (("explicit", explicit), ("fused", fused)):
            times.setdefault(name, []).append(step_time(layer, x, mask, args.steps))
    print(f"attention layer, batch {args.batch} x {args.length} tokens, embed_dim 512, 8 heads, masked")
    print(f"{'form':<10}{'ms/step':>10}{'reviews/s':>12}")
    for name, runs in times.items():
        best = min(runs)
        print(f"{name:<10}{best * 1000:>10.1f}{args.batch / best:>12.0f}")
    print(f"max |explicit - fused| at real positions: {difference:.2e}")


if __name__ == "__main__":
    main()
