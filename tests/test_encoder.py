"""The encoder blocks: each position's vector then depends on its context and, with positions,
on word order; padding still changes nothing; the memory check counts their attention. (Saving
and loading them: tests/test_model.py.)"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from test_model import VOCAB, _padded, make_params  # noqa: E402
from imdb_sentiment.errors import PipelineError  # noqa: E402
from imdb_sentiment.model.attention import CustomMultiheadAttention  # noqa: E402
from imdb_sentiment.model.classifier import build_model  # noqa: E402
from imdb_sentiment.model.encoder import EncoderBlock  # noqa: E402
from imdb_sentiment.training.memory import peak_bytes  # noqa: E402


def block_and_inputs(**kwargs):
    keras.utils.set_random_seed(3)
    block = EncoderBlock(num_heads=2, ff_dim=16, **kwargs)
    x = np.random.default_rng(0).normal(size=(3, 10, 8)).astype("float32")
    return block, x


def test_a_block_is_the_pre_norm_residual_formula_around_the_custom_attention():
    block, x = block_and_inputs()
    out = np.asarray(block(x))
    attended = x + np.asarray(block.attention(block.attention_norm(x)))
    expected = attended + np.asarray(block.projection(block.hidden(block.feed_forward_norm(attended))))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert isinstance(block.attention, CustomMultiheadAttention) and not block.attention.pool_queries


def test_a_position_s_output_depends_on_the_other_positions_and_not_on_padding():
    block, x = block_and_inputs()
    mask = np.ones((3, 10), bool)
    mask[1, 6:] = False
    out = np.asarray(block(x, mask=mask))
    changed = x.copy()
    changed[:, 5] = np.random.default_rng(1).normal(size=8)  # another word at position 5
    assert np.abs(np.asarray(block(changed, mask=mask))[:, 0] - out[:, 0]).max() > 1e-3  # context reaches position 0
    padded = x.copy()
    padded[1, 6:] = 99.0  # what sits under the mask
    np.testing.assert_allclose(np.asarray(block(padded, mask=mask))[1, :6], out[1, :6], atol=1e-5)


def test_the_blocked_attention_gives_the_same_block_outputs():
    explicit, x = block_and_inputs()
    blocked = EncoderBlock(num_heads=2, ff_dim=16, block_size=4)
    blocked.build(x.shape)
    explicit.build(x.shape)
    blocked.set_weights(explicit.get_weights())
    mask = np.ones((3, 10), bool)
    mask[2, 3:] = False
    np.testing.assert_allclose(np.asarray(blocked(x, mask=mask))[mask], np.asarray(explicit(x, mask=mask))[mask],
                               atol=1e-5)


def test_with_encoder_blocks_and_positions_word_order_matters_and_padding_does_not():
    model = build_model(make_params(encoder_blocks=2, encoder_heads=2, position_embedding="learned",
                                    nb_ngrams=0), VOCAB)
    assert [layer.name for layer in model.layers if layer.name.startswith("encoder_")] == ["encoder_1", "encoder_2"]
    review = np.array([[5, 6, 7, 8, 9, 10]])
    reordered = review[:, ::-1]
    assert abs(float(np.asarray(model(review))[0, 0]) - float(np.asarray(model(reordered))[0, 0])) > 1e-5
    np.testing.assert_allclose(np.asarray(model(_padded([review[0]], 40))), np.asarray(model(review)), atol=1e-5)


def test_encoder_heads_must_divide_the_token_vectors_width():
    with pytest.raises(PipelineError, match=r"encoder_heads \(3\) must divide embedding_dim \+ region_filters \(8\)"):
        make_params(encoder_blocks=1, encoder_heads=3)
    make_params(encoder_blocks=0, encoder_heads=3)  # no encoder: no constraint


def test_the_memory_estimate_counts_each_encoder_block_s_heads():
    """Two heads more in one block cost two heads' (steps x steps) weights, as the pooling's do;
    the heads share the block's width, so its activations stay the same."""
    def peak(**changes):
        return peak_bytes(make_params(sequence_length=800, batch_size=128, nb_ngrams=0, pooling="attention",
                                      **{"num_heads": 1, "encoder_blocks": 0, **changes}))
    head = peak(num_heads=2) - peak(num_heads=1)
    assert head > 1 << 30
    assert peak(encoder_blocks=1, encoder_heads=4) - peak(encoder_blocks=1, encoder_heads=2) == pytest.approx(
        2 * head, rel=1e-6)
    assert peak(encoder_blocks=2, encoder_heads=2) - peak(encoder_blocks=1, encoder_heads=2) > 2 * head
