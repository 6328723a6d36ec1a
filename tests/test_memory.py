"""The train stage's memory estimate and the check `validate` makes with it."""

from __future__ import annotations

import pytest
import yaml

from conftest import committed_params_text
from imdb_sentiment.errors import PipelineError
from imdb_sentiment.params import parse_params
from imdb_sentiment.training.memory import GIB, available_bytes, check_memory, peak_bytes


# The configurations of the measured peaks (docs/benchmarks.md): word vectors alone, self-trained.
WORDS = {"region_filters": 0, "pretrain_epochs": 0, "pseudo_label_confidence": 0.97}


def params(**changes):
    """The committed params over word vectors (the measured configurations), with the
    self-attention pooling, whose (steps x steps) weights the estimate is about, and ``changes``."""
    return parse_params({**yaml.safe_load(committed_params_text()), **WORDS, "pooling": "attention", **changes})


def test_the_estimate_matches_the_measured_peaks_from_above():
    """docs/benchmarks.md: 3.0 GiB at one head, 7.9 at four (defaults, 800 tokens, batch 128)."""
    one, four = peak_bytes(params(num_heads=1)) / GIB, peak_bytes(params(num_heads=4)) / GIB
    assert 3.0 <= one <= 3.6 and 7.9 <= four <= 9.0
    assert peak_bytes(params(pooling="average")) < peak_bytes(params()) / 2  # no attention weights
    # a learned query has (steps) scores a head, and its heads share embed_dim: no more at 8 than at 1
    assert peak_bytes(params(pooling="query", num_heads=8)) == peak_bytes(params(pooling="query", num_heads=1))
    assert peak_bytes(params(pooling="average")) < peak_bytes(params(pooling="query"))  # no keys and values
    squared = peak_bytes(params(pooling="query", squared_keys=True)) - peak_bytes(params(pooling="query"))
    assert squared == pytest.approx(2.5 * 4 * 128 * 800 * 32, rel=1e-9)  # one (batch, steps, embed_dim) more
    # a head more: its (128, 800, 800) weights; twice the batch: those and the activations too
    head = peak_bytes(params(num_heads=2)) - peak_bytes(params())
    assert head == pytest.approx(5.5 * 4 * 128 * 800 * 800, rel=1e-9)
    assert peak_bytes(params(batch_size=256)) - peak_bytes(params()) > head


def test_the_activations_match_the_measured_peaks_from_above():
    """docs/benchmarks.md: a learned query over word vectors, self-trained, peaks at 1.59 GiB; one
    encoder block peaks at 4.1 GiB with a feed-forward layer of 64 units and 5.0 GiB with one of 1,024."""
    assert 1.59 <= peak_bytes(params(pooling="query")) / GIB <= 1.9
    block = {"pooling": "query", "encoder_blocks": 1, "pseudo_label_confidence": 0}
    narrow, wide = peak_bytes(params(**block, ff_dim=64)) / GIB, peak_bytes(params(**block, ff_dim=1024)) / GIB
    assert 4.1 <= narrow <= 5.5 and 5.0 <= wide <= 6.5
    assert 0.9 <= wide - narrow <= 1.1


def test_activations_too_big_name_the_batch_and_the_widths_not_the_heads():
    wide = params(pooling="query", encoder_blocks=1, ff_dim=65_536, attention_block_size=64)
    with pytest.raises(PipelineError) as info:
        check_memory(wide, available=16 * GIB)
    assert str(info.value).endswith("is available: lower batch_size (128), sequence_length (800), ff_dim (65536) or "
                                    "encoder_blocks (1); each layer holds batch_size x sequence_length x its width "
                                    "of values"), str(info.value)


def test_a_configuration_that_does_not_fit_fails_naming_the_params_to_change():
    check_memory(params(), available=8 * GIB)
    with pytest.raises(PipelineError) as info:
        check_memory(params(num_heads=8), available=12 * GIB)
    message = str(info.value)
    assert "\n" not in message
    needed = peak_bytes(params(num_heads=8)) / GIB
    assert 14 < needed < 16  # the README's 8-head sweep: more than a 16 GB laptop has free
    assert message.startswith(f"params.yaml: the train stage would need about {needed:.1f} GiB at its peak and 12.0 "
                              "GiB is available: lower batch_size (128), num_heads (8) or sequence_length (800)"), message


def test_this_machine_s_available_memory_is_read():
    available = available_bytes()
    assert available is None or 0 < available < 1 << 50


def test_the_blocked_attention_holds_a_block_of_weights_not_the_whole_matrix():
    whole, blocked = peak_bytes(params(num_heads=8)), peak_bytes(params(num_heads=8, attention_block_size=64))
    assert blocked < whole / 4
    check_memory(params(num_heads=8, attention_block_size=64), available=12 * GIB)  # fits where whole did not


def test_tables_too_big_name_the_tables_not_the_attention():
    huge = params(pooling="query", nb_buckets=4_000_000_000)
    with pytest.raises(PipelineError) as info:
        check_memory(huge, available=16 * GIB)
    assert str(info.value).endswith(f"is available: lower nb_buckets (4000000000) or bigram_buckets (0); "
                                    "each row is kept with its two Adam moments"), str(info.value)
