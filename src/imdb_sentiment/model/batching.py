"""Batches for inference: reviews of similar length, each batch under a budget of tokens.

Attention's memory grows with a batch's reviews x the square of its longest review, so a fixed
number of reviews a batch is either slow on short reviews or gigabytes on long ones (256 reviews
of 800 tokens: a 2.6 GB tensor a layer at 4 heads, whose first touch alone costs seconds). A
budget of reviews x longest review keeps each batch's tensors about the same size. TensorFlow
is not imported here, so ``predict`` can plan its batches before loading it.
"""

from __future__ import annotations

from collections.abc import Sequence

TOKENS_PER_BATCH = 16_384  # a batch's reviews x its longest review
MAX_BATCH = 512


def length_batches(lengths: Sequence[int], tokens_per_batch: int = TOKENS_PER_BATCH,
                   max_batch: int = MAX_BATCH) -> list[list[int]]:
    """Indices of the reviews in batches of similar length, shortest first, each at most
    ``tokens_per_batch`` tokens once padded to its longest review (a longer review alone)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches, batch = [], []
    for index in order:
        if batch and ((len(batch) + 1) * lengths[index] > tokens_per_batch or len(batch) == max_batch):
            batches.append(batch)
            batch = []
        batch.append(index)
    return batches + [batch] if batch else batches
