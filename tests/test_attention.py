"""CustomMultiheadAttention: equivalence with Keras' MultiHeadAttention, masking, dropout,
gradients, configuration and registration."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from imdb_sentiment.model.attention import CustomMultiheadAttention  # noqa: E402

E, H = 16, 2  # embed_dim, num_heads
D = E // H
F = 5  # input width, deliberately != E


def _inputs(batch=3, steps=7, width=F, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, width)).astype("float32")


def _key_mask():
    """(3, 7): full, 4 real tokens then padding, 1 real token then padding."""
    lengths = np.array([7, 4, 1])
    return np.arange(7)[None, :] < lengths[:, None]


def _layer(dropout=0.0, seed=1, width=F, pool_queries=False, learned_query=False, squared_keys=False):
    layer = CustomMultiheadAttention(E, H, dropout=dropout, pool_queries=pool_queries, learned_query=learned_query,
                                     squared_keys=squared_keys)
    layer.build((None, None, width))
    rng = np.random.default_rng(seed)
    projections = (layer.query_dense, layer.key_dense, layer.value_dense, layer.output_dense)
    for dense in (dense for dense in projections if dense.built):  # a learned query's query_dense is not
        dense.kernel.assign(rng.normal(scale=0.5, size=dense.kernel.shape).astype("float32"))
        dense.bias.assign(rng.normal(scale=0.5, size=dense.bias.shape).astype("float32"))
    return layer


def _keras_mha_with_weights_of(layer):
    mha = keras.layers.MultiHeadAttention(num_heads=H, key_dim=D, output_shape=E)
    x = _inputs()
    mha(x, x, x)  # builds it
    pairs = [(mha._query_dense, layer.query_dense), (mha._key_dense, layer.key_dense),
             (mha._value_dense, layer.value_dense)]
    for theirs, ours in pairs:
        theirs.kernel.assign(np.reshape(ours.kernel.numpy(), (F, H, D)))
        theirs.bias.assign(np.reshape(ours.bias.numpy(), (H, D)))
    mha._output_dense.kernel.assign(np.reshape(layer.output_dense.kernel.numpy(), (H, D, E)))
    mha._output_dense.bias.assign(layer.output_dense.bias.numpy())
    return mha


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "padding-mask"])
def test_matches_keras_multi_head_attention_with_the_same_weights(masked):
    layer = _layer()
    mha = _keras_mha_with_weights_of(layer)
    x = _inputs()
    key_mask = _key_mask() if masked else None
    ours, our_scores = layer(x, mask=key_mask, return_attention_scores=True)
    pairwise = None if key_mask is None else np.broadcast_to(key_mask[:, None, :], (3, 7, 7))
    theirs, their_scores = mha(x, x, x, attention_mask=pairwise, return_attention_scores=True)
    assert ours.shape == theirs.shape == (3, 7, E)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(our_scores), np.asarray(their_scores), atol=1e-6, rtol=0)
    # The biases matter: the comparison would not be meaningful if they were zero.
    assert np.abs(layer.output_dense.bias.numpy()).min() > 0
    assert np.abs(layer.query_dense.bias.numpy()).min() > 0


def test_pairwise_mask_gives_the_same_result_as_the_key_mask():
    layer = _layer()
    x, key_mask = _inputs(), _key_mask()
    pairwise = np.broadcast_to(key_mask[:, None, :], (3, 7, 7))
    np.testing.assert_allclose(np.asarray(layer(x, mask=pairwise)), np.asarray(layer(x, mask=key_mask)),
                               atol=1e-6, rtol=0)


def test_appended_padding_does_not_change_outputs_at_real_positions():
    layer = _layer()
    x, key_mask = _inputs(), _key_mask()
    garbage = np.random.default_rng(9).normal(scale=10.0, size=(3, 5, F)).astype("float32")
    longer_x = np.concatenate([x, garbage], axis=1)
    longer_mask = np.concatenate([key_mask, np.zeros((3, 5), bool)], axis=1)

    short = np.asarray(layer(x, mask=key_mask))
    long = np.asarray(layer(longer_x, mask=longer_mask))
    np.testing.assert_allclose(long[:, :7][key_mask], short[key_mask], atol=1e-6, rtol=0)
    # Without the mask the garbage would take part (so the comparison above can fail).
    unmasked = np.asarray(layer(longer_x))
    assert not np.allclose(unmasked[:, :7][key_mask], short[key_mask], atol=1e-3)


def test_padded_keys_get_exactly_zero_attention_weight():
    layer = _layer()
    x, key_mask = _inputs(), _key_mask()
    x[~key_mask] = 1e3  # large values in padded positions must not leak through
    _, weights = layer(x, mask=key_mask, return_attention_scores=True)
    weights = np.asarray(weights)
    assert weights.shape == (3, H, 7, 7)
    padded_keys = np.broadcast_to(~key_mask[:, None, None, :], weights.shape)
    assert np.all(weights[padded_keys] == 0.0)
    real_pairs = np.broadcast_to((key_mask[:, None, :, None] & key_mask[:, None, None, :]), weights.shape)
    assert np.all(weights[real_pairs] > 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)


def test_the_mask_is_passed_on_and_a_pairwise_mask_is_not():
    layer = _layer()
    key_mask = tf.constant(_key_mask())
    assert layer.compute_mask(_inputs(), key_mask) is key_mask
    pairwise = tf.constant(np.broadcast_to(_key_mask()[:, None, :], (3, 7, 7)))
    assert layer.compute_mask(_inputs(), pairwise) is None


def test_dropout_only_acts_in_training():
    layer = _layer(dropout=0.5)
    x = _inputs()
    first, second = layer(x, training=False), layer(x, training=False)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))

    train_a, weights_a = layer(x, training=True, return_attention_scores=True)
    train_b, weights_b = layer(x, training=True, return_attention_scores=True)
    assert not np.allclose(np.asarray(train_a), np.asarray(train_b))
    # Dropout acts on the attention weights: some are zeroed, the rest scaled by 1 / (1 - rate).
    _, clean = layer(x, training=False, return_attention_scores=True)
    weights_a, clean = np.asarray(weights_a), np.asarray(clean)
    dropped = weights_a == 0.0
    assert 0.2 < dropped.mean() < 0.8
    np.testing.assert_allclose(weights_a[~dropped], clean[~dropped] * 2.0, rtol=1e-5)


def test_zero_dropout_in_training_equals_inference():
    layer = _layer(dropout=0.0)
    x = _inputs()
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), np.asarray(layer(x, training=False)))


def test_inference_with_dropout_equals_the_same_weights_without_dropout():
    with_dropout, without = _layer(dropout=0.5, seed=3), _layer(dropout=0.0, seed=3)
    x = _inputs()
    np.testing.assert_allclose(np.asarray(with_dropout(x, training=False)), np.asarray(without(x)),
                               atol=1e-7, rtol=0)


def test_every_trainable_weight_gets_a_gradient():
    layer = _layer()
    x, key_mask = tf.constant(_inputs()), tf.constant(_key_mask())
    target = tf.constant(np.random.default_rng(4).normal(size=(3, 7, E)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((layer(x, mask=key_mask, training=True) - target) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(layer.trainable_weights) == 8  # 4 kernels and 4 biases
    for weight, grad in zip(layer.trainable_weights, grads):
        assert grad is not None, weight.path
        grad = np.asarray(grad)
        assert np.all(np.isfinite(grad)), weight.path
        if weight is layer.key_dense.bias:
            # Adding the same vector to every key shifts each query's scores by a constant,
            # which the softmax ignores: the key bias's gradient is zero up to rounding.
            assert np.abs(grad).max() < 1e-3 * max(np.abs(g).max() for g in map(np.asarray, grads))
        else:
            assert np.abs(grad).max() > 1e-4, weight.path


def _pooled_pair(seed=1):
    """The same weights in a sequence-output layer and in a pool_queries layer."""
    sequence, pooled = _layer(seed=seed), _layer(seed=seed, pool_queries=True)
    for ours, theirs in zip(sequence.weights, pooled.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    return sequence, pooled


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "padding-mask"])
def test_pool_queries_equals_global_average_pooling_of_the_sequence_output(masked):
    sequence, pooled = _pooled_pair()
    x = _inputs()
    key_mask = _key_mask() if masked else None
    expected = keras.layers.GlobalAveragePooling1D()(sequence(x, mask=key_mask), mask=key_mask)
    ours, weights = pooled(x, mask=key_mask, return_attention_scores=True)
    assert ours.shape == (3, E)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), atol=1e-5, rtol=0)
    _, sequence_weights = sequence(x, mask=key_mask, return_attention_scores=True)
    np.testing.assert_array_equal(np.asarray(weights), np.asarray(sequence_weights))
    if masked:  # the padded rows would change the average: the comparison can fail
        unmasked_average = keras.layers.GlobalAveragePooling1D()(np.asarray(sequence(x, mask=key_mask)))
        assert not np.allclose(np.asarray(ours), np.asarray(unmasked_average), atol=1e-3)


def test_pool_queries_gives_the_same_gradients_as_pooling_afterwards():
    sequence, pooled = _pooled_pair()
    x, key_mask = tf.constant(_inputs()), tf.constant(_key_mask())
    target = tf.constant(np.random.default_rng(4).normal(size=(3, E)).astype("float32"))
    gradients = []
    for layer, pool in ((sequence, keras.layers.GlobalAveragePooling1D()), (pooled, None)):
        with tf.GradientTape() as tape:
            out = layer(x, mask=key_mask, training=True)
            out = pool(out, mask=key_mask) if pool else out
            loss = tf.reduce_sum((out - target) ** 2)
        gradients.append(tape.gradient(loss, layer.trainable_weights))
    for expected, ours in zip(*gradients):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), atol=1e-4, rtol=1e-4)


def test_pool_queries_shapes_mask_and_config():
    layer = _layer(pool_queries=True)
    assert tuple(layer.compute_output_shape((3, 7, F))) == (3, E)
    assert layer.compute_mask(_inputs(), tf.constant(_key_mask())) is None
    assert CustomMultiheadAttention.from_config(layer.get_config()).pool_queries is True
    with pytest.raises(ValueError, match="pool_queries needs a .batch, steps. mask"):
        layer(_inputs(), mask=np.broadcast_to(_key_mask()[:, None, :], (3, 7, 7)))


def test_embed_dim_not_divisible_by_num_heads_names_both_values():
    with pytest.raises(ValueError, match=r"embed_dim \(10\).*num_heads \(3\)"):
        CustomMultiheadAttention(10, 3)


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_dropout_outside_the_unit_interval_is_rejected(rate):
    with pytest.raises(ValueError, match="dropout"):
        CustomMultiheadAttention(8, 2, dropout=rate)


def test_get_config_round_trip():
    layer = CustomMultiheadAttention(12, 3, dropout=0.25, name="attn")
    config = layer.get_config()
    assert (config["embed_dim"], config["num_heads"], config["dropout"]) == (12, 3, 0.25)
    clone = CustomMultiheadAttention.from_config(config)
    assert clone.get_config() == config
    assert (clone.embed_dim, clone.num_heads, clone.depth, clone.dropout) == (12, 3, 4, 0.25)


def test_compute_output_shape_and_actual_shape():
    layer = _layer()
    assert tuple(layer.compute_output_shape((3, 7, F))) == (3, 7, E)
    assert tuple(layer.compute_output_shape((None, None, F))) == (None, None, E)
    assert layer(_inputs()).shape == (3, 7, E)


def test_layer_is_registered_serializable():
    registered = keras.saving.get_registered_object("imdb_sentiment>CustomMultiheadAttention")
    assert registered is CustomMultiheadAttention
    layer = CustomMultiheadAttention(8, 2)
    serialized = keras.saving.serialize_keras_object(layer)
    assert "imdb_sentiment" in serialized["registered_name"]
    clone = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(clone, CustomMultiheadAttention)
    assert clone.get_config() == layer.get_config()


# --- the blocked form ----------------------------------------------------------------------------


def _pair(pool_queries, block_size, seed=1, width=F):
    explicit = _layer(seed=seed, width=width, pool_queries=pool_queries)
    blocked = CustomMultiheadAttention(E, H, pool_queries=pool_queries, block_size=block_size)
    blocked.build((None, None, width))
    for theirs, ours in zip(blocked.weights, explicit.weights):
        theirs.assign(ours)
    return explicit, blocked


def _output_and_gradients(layer, x, mask, probe):
    """The output at real positions, and the gradients of its dot product with ``probe`` with
    respect to the inputs and every weight."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, mask=None if mask is None else tf.constant(mask))
        if not layer.pool_queries and mask is not None:  # padded positions' rows are no output
            y = y * tf.cast(mask, y.dtype)[:, :, None]
        loss = tf.reduce_sum(y * probe)
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights])]


@pytest.mark.parametrize("pool_queries", [False, True], ids=["per-position", "pooled"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "padding-mask"])
@pytest.mark.parametrize("block_size", [1, 3, 64])  # 64: one block, larger than the review
def test_the_blocked_form_equals_the_explicit_one_in_outputs_and_gradients(pool_queries, masked, block_size):
    explicit, blocked = _pair(pool_queries, block_size)
    x, mask = _inputs(), (_key_mask() if masked else None)
    probe = np.random.default_rng(5).normal(size=(3, E) if pool_queries else (3, 7, E)).astype("float32")
    want_y, want_grads = _output_and_gradients(explicit, x, mask, probe)
    got_y, got_grads = _output_and_gradients(blocked, x, mask, probe)
    np.testing.assert_allclose(got_y, want_y, rtol=1e-5, atol=1e-5)
    scale = max(np.abs(g).max() for g in want_grads)  # some are exactly 0 (the key bias's)
    for got, want in zip(got_grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


def test_the_blocked_form_matches_keras_multi_head_attention():
    explicit, blocked = _pair(False, 2)
    mha = _keras_mha_with_weights_of(explicit)
    x, mask = _inputs(), _key_mask()
    ours = blocked(x, mask=mask).numpy()
    theirs = mha(x, x, x, attention_mask=np.repeat(mask[:, None, :], 7, axis=1)).numpy()
    np.testing.assert_allclose(ours[mask], theirs[mask], rtol=1e-5, atol=1e-5)


def test_the_blocked_form_keeps_its_block_in_the_config_and_refuses_dropout():
    layer = CustomMultiheadAttention(E, H, block_size=128)
    assert CustomMultiheadAttention.from_config(layer.get_config()).block_size == 128
    with pytest.raises(ValueError, match="block_size must be 0 or, without dropout, positive"):
        CustomMultiheadAttention(E, H, dropout=0.1, block_size=128)
    _, weights = _pair(False, 2)[1](_inputs(), return_attention_scores=True)  # the explicit form's weights
    assert weights.shape == (3, H, 7, 7)


def _query_layer(seed=1, width=F, query_scale=1.0, squared_keys=False):
    layer = _layer(seed=seed, width=width, learned_query=True, squared_keys=squared_keys)
    layer.query.assign(np.random.default_rng(seed + 1).normal(scale=query_scale, size=E).astype("float32"))
    return layer


def test_a_learned_query_weights_each_real_word_by_the_softmax_of_its_keys():
    layer, x, mask = _query_layer(), _inputs(), _key_mask()
    output, weights = layer(x, mask=mask, return_attention_scores=True)
    output, weights = np.asarray(output), np.asarray(weights)
    assert output.shape == (3, E) and weights.shape == (3, H, 1, 7)
    keys = np.asarray(layer.key_dense(x)).reshape(3, 7, H, D)
    values = np.asarray(layer.value_dense(x)).reshape(3, 7, H, D)
    query = np.asarray(layer.query).reshape(H, D)
    layer_scores = np.asarray(layer.query_scores(x))  # before the softmax: (batch, heads, steps)
    for review, real in enumerate(mask):
        scores = np.einsum("khd,hd->hk", keys[review, real], query) / np.sqrt(D)
        np.testing.assert_allclose(layer_scores[review][:, real], scores, rtol=1e-5, atol=1e-5)
        expected = np.exp(scores - scores.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(weights[review, :, 0, real.nonzero()[0]].T, expected, rtol=1e-5, atol=1e-6)
        assert np.all(weights[review, :, 0, ~real] == 0.0)
        context = np.einsum("hk,khd->hd", expected, values[review, real]).reshape(E)
        pooled = context @ np.asarray(layer.output_dense.kernel) + np.asarray(layer.output_dense.bias)
        np.testing.assert_allclose(output[review], pooled, rtol=1e-4, atol=1e-5)
    padded = np.concatenate([x, np.zeros((3, 4, F), "float32")], axis=1)
    longer = np.concatenate([mask, np.zeros((3, 4), bool)], axis=1)
    np.testing.assert_allclose(np.asarray(layer(padded, mask=longer)), output, rtol=1e-5, atol=1e-6)


def test_a_learned_query_starts_at_zero_where_every_word_weighs_the_same():
    layer = CustomMultiheadAttention(E, H, learned_query=True)
    x, mask = _inputs(), _key_mask()
    _, weights = layer(x, mask=mask, return_attention_scores=True)
    expected = mask / mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(weights)[:, :, 0, :], np.repeat(expected[:, None], H, axis=1), rtol=1e-6)
    assert not np.asarray(layer.query).any() and layer.compute_mask(x, mask) is None
    assert not layer.query_dense.built  # no per-position queries: no query projection
    with pytest.raises(ValueError, match="query_scores needs learned_query"):
        CustomMultiheadAttention(E, H, pool_queries=True).query_scores(x)


def test_a_learned_query_gets_a_gradient_from_zero_and_keeps_its_kind_in_the_config():
    layer, x, mask = _query_layer(query_scale=0.0), _inputs(), _key_mask()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, mask=mask) ** 2)
    grads = dict(zip([w.path.split("/", 1)[1] for w in layer.trainable_weights],
                     tape.gradient(loss, layer.trainable_weights)))
    assert set(grads) == {"query", "key/kernel", "key/bias", "value/kernel", "value/bias", "output/kernel", "output/bias"}
    moving = {name for name, grad in grads.items() if np.abs(np.asarray(grad)).max() > 0}
    # At zero the weights are uniform whatever the keys: the keys learn once the query has moved.
    assert moving == {"query", "value/kernel", "value/bias", "output/kernel", "output/bias"}
    rebuilt = CustomMultiheadAttention.from_config(layer.get_config())
    assert rebuilt.learned_query and rebuilt.compute_output_shape((3, 7, F)) == (3, E)


def test_squared_keys_weigh_each_word_by_the_squares_of_its_key_projections_whatever_their_sign():
    layer, x, mask = _query_layer(squared_keys=True), _inputs(), _key_mask()
    _, weights = layer(x, mask=mask, return_attention_scores=True)
    keys = (np.asarray(layer.key_dense(x)) ** 2).reshape(3, 7, H, D)
    scores = np.einsum("bkhd,hd->bhk", keys, np.asarray(layer.query).reshape(H, D)) / np.sqrt(D)
    np.testing.assert_allclose(np.asarray(layer.query_scores(x)), scores, rtol=1e-5, atol=1e-5)
    expected = np.where(mask[:, None, :], np.exp(scores - scores.max(axis=2, keepdims=True)), 0.0)
    np.testing.assert_allclose(np.asarray(weights)[:, :, 0, :], expected / expected.sum(axis=2, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    # With no key bias, a word and its opposite (-x) weigh the same; linear keys tell them apart.
    linear = _query_layer()
    for dense in (layer.key_dense, linear.key_dense):
        dense.bias.assign(np.zeros(E, "float32"))
    opposite = np.concatenate([x[:1, :1], -x[:1, :1]], axis=1)  # one review: a word, then its opposite
    for squared, model in ((True, layer), (False, linear)):
        pair = np.asarray(model(opposite, return_attention_scores=True)[1])[0, :, 0, :]
        assert np.allclose(pair[:, 0], pair[:, 1]) == squared
    assert CustomMultiheadAttention.from_config(layer.get_config()).squared_keys
