"""Scaled dot-product attention computed a block of keys at a time, the method of FlashAttention
(Dao et al. 2022) in TensorFlow ops: no (steps x steps) weight matrix is kept, forward or
backward.

Forward, each block of keys gives every query its scores against the block, the block's
maximum and sum of exponentials; those combine into each query's log-sum-exp (``lse``), and a
second pass over the blocks adds ``exp(scores - lse) @ values``. Only the output and ``lse`` are
kept for the backward pass, which recomputes each block's weights from them
(``tf.custom_gradient``) and gets, with ``D = rowsum(dO * O)`` (FlashAttention-2):
``dV = P^T dO``, ``dS = P * (dO V^T - D)``, ``dQ = dS K``, ``dK = dS^T Q``. The blocks run one
after another (``tf.map_fn``), so the memory of a step holds one block's (steps x block)
weights at a time instead of the whole (steps x steps) matrix.

``pooled_attention`` is the same for the mean over the real queries, what the classifier's
pooling takes: ``mean_q softmax(s_q) V`` is accumulated block by block as
``(share @ exp(s - lse)) @ V_j`` without forming the per-query outputs.
"""

from __future__ import annotations

import tensorflow as tf

_LARGE_NEGATIVE = -1e9  # as in the explicit form: exp() of it is exactly 0 in float32


def _blocks(key, value, bias, block: int):
    """Keys, values and the additive key mask padded to a multiple of ``block`` and split:
    (blocks, batch, heads, block, depth) twice and (blocks, batch, 1, 1, block)."""
    steps = tf.shape(key)[2]
    padded = -(-steps // block) * block
    pad = padded - steps
    key = tf.pad(key, [[0, 0], [0, 0], [0, pad], [0, 0]])
    value = tf.pad(value, [[0, 0], [0, 0], [0, pad], [0, 0]])
    bias = tf.pad(bias, [[0, 0], [0, 0], [0, 0], [0, pad]], constant_values=_LARGE_NEGATIVE)

    def split(x, last):
        shape = tf.shape(x)
        x = tf.reshape(x, tf.concat([shape[:2], [padded // block, block], [last]], axis=0))
        return tf.transpose(x, [2, 0, 1, 3, 4])

    depth = tf.shape(key)[3]
    bias = tf.transpose(tf.reshape(bias, tf.concat([tf.shape(bias)[:3], [padded // block, block]], 0)),
                        [3, 0, 1, 2, 4])
    return split(key, depth), split(value, depth), bias


def _scores(query, key_block, bias_block):
    return tf.matmul(query, key_block, transpose_b=True) + bias_block


def _log_sum_exp(query, keys, biases):
    """(batch, heads, queries, 1): each query's log of the sum of exp(score) over every key."""
    def stats(args):
        s = _scores(query, *args)
        m = tf.reduce_max(s, axis=-1, keepdims=True)
        return m, tf.reduce_sum(tf.exp(s - m), axis=-1, keepdims=True)

    maxima, sums = tf.map_fn(stats, (keys, biases), fn_output_signature=(query.dtype, query.dtype),
                             parallel_iterations=1)
    top = tf.reduce_max(maxima, axis=0)
    return top + tf.math.log(tf.reduce_sum(sums * tf.exp(maxima - top), axis=0))


def key_bias(mask, batch_size, steps):
    """The additive mask of the keys, (batch, 1, 1, steps): 0 where a key may be attended."""
    if mask is None:
        return tf.zeros(tf.stack([batch_size, 1, 1, steps]))
    return (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * _LARGE_NEGATIVE


def blocked_attention(query, key, value, bias, block: int):
    """softmax(query key^T + bias) value, (batch, heads, queries, depth), a block of keys at a
    time. ``query`` is already scaled; ``bias``: (batch, 1, 1, keys) from :func:`key_bias`."""

    @tf.custom_gradient
    def attend(query, key, value):
        keys, values, biases = _blocks(key, value, bias, block)
        lse = _log_sum_exp(query, keys, biases)
        parts = tf.map_fn(lambda args: tf.matmul(tf.exp(_scores(query, args[0], args[2]) - lse), args[1]),
                          (keys, values, biases), fn_output_signature=query.dtype, parallel_iterations=1)
        output = tf.reduce_sum(parts, axis=0)

        def grad(d_output):
            total = tf.reduce_sum(d_output * output, axis=-1, keepdims=True)  # D

            def block_grads(args):
                key_block, value_block, bias_block = args
                p = tf.exp(_scores(query, key_block, bias_block) - lse)
                d_scores = p * (tf.matmul(d_output, value_block, transpose_b=True) - total)
                return (tf.matmul(d_scores, key_block), tf.matmul(d_scores, query, transpose_a=True),
                        tf.matmul(p, d_output, transpose_a=True))

            d_query, d_keys, d_values = tf.map_fn(block_grads, (keys, values, biases), parallel_iterations=1,
                                                  fn_output_signature=(query.dtype, query.dtype, query.dtype))
            return tf.reduce_sum(d_query, axis=0), _merge(d_keys, key), _merge(d_values, value)

        return output, grad

    return attend(query, key, value)


def pooled_attention(query, key, value, bias, share, block: int):
    """``share @ softmax(query key^T + bias) value``, (batch, heads, 1, depth): the attention's
    output averaged over the queries with weights ``share`` (batch, 1, 1, queries), a block of
    keys at a time."""

    @tf.custom_gradient
    def attend(query, key, value):
        keys, values, biases = _blocks(key, value, bias, block)
        lse = _log_sum_exp(query, keys, biases)

        def received(key_block, bias_block):  # (batch, heads, 1, block): the block's pooled weights
            return tf.matmul(share, tf.exp(_scores(query, key_block, bias_block) - lse))

        parts = tf.map_fn(lambda args: tf.matmul(received(args[0], args[2]), args[1]), (keys, values, biases),
                          fn_output_signature=query.dtype, parallel_iterations=1)
        output = tf.reduce_sum(parts, axis=0)

        def grad(d_output):  # d_output: (batch, heads, 1, depth)
            # dP[q, k] = share[q] * (dO . v_k); D[q] = sum_k P[q, k] dP[q, k] = share[q] * (P[q] V) . dO
            def row_totals(args):
                key_block, value_block, bias_block = args
                p = tf.exp(_scores(query, key_block, bias_block) - lse)
                return tf.matmul(p, tf.matmul(value_block, d_output, transpose_b=True))  # (b, h, q, 1)

            total = tf.reduce_sum(tf.map_fn(row_totals, (keys, values, biases), fn_output_signature=query.dtype,
                                            parallel_iterations=1), axis=0)
            weight = tf.transpose(share, [0, 1, 3, 2])  # (batch, 1, queries, 1)

            def block_grads(args):
                key_block, value_block, bias_block = args
                p = tf.exp(_scores(query, key_block, bias_block) - lse)
                d_p = weight * tf.matmul(d_output, value_block, transpose_b=True)  # (b, h, q, block)
                d_scores = p * (d_p - weight * total)
                return (tf.matmul(d_scores, key_block), tf.matmul(d_scores, query, transpose_a=True),
                        tf.matmul(tf.matmul(share, p), d_output, transpose_a=True))

            d_query, d_keys, d_values = tf.map_fn(block_grads, (keys, values, biases), parallel_iterations=1,
                                                  fn_output_signature=(query.dtype, query.dtype, query.dtype))
            return tf.reduce_sum(d_query, axis=0), _merge(d_keys, key), _merge(d_values, value)

        return output, grad

    return attend(query, key, value)


def _merge(blocks, like):
    """(blocks, batch, heads, block, depth) -> (batch, heads, steps, depth), the padding cut off."""
    shape = tf.shape(blocks)
    merged = tf.reshape(tf.transpose(blocks, [1, 2, 0, 3, 4]),
                        tf.stack([shape[1], shape[2], shape[0] * shape[3], shape[4]]))
    return merged[:, :, :tf.shape(like)[2]]
