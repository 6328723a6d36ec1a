"""Will the train stage fit in memory? An estimate of its peak, checked by ``validate`` before any
stage runs, so that a configuration too big for the machine fails at once with a message that
names the params to change, instead of being killed by the kernel an hour in.

Two parts grow with a batch. The attention layer materializes its (batch, heads, steps, steps)
scores and weights, several times over forward and backward. Measured peaks of the train stage
(batch 128, 800 tokens, self-attention pooling, docs/benchmarks.md): 3.0 GiB at one head and
7.9 GiB at four, 2.5 and 7.2 GiB without self-training, 3.6 and 8.3 GiB with a million-row pair
table: about 1.6 GiB a head, that is 5.2 float32 copies of 128 x 800 x 800 weights. The
estimate takes 5.5 copies, the widest batch at ``sequence_length`` (the longest length group).
Every layer also holds (batch, steps, width) activations: an encoder block's feed-forward layer
of 1,024 against 64 units measured 0.90 GiB more (5.0 against 4.1 GiB, one block, batch 128,
800 tokens), 2.5 float32 copies a unit, which the estimate takes for every width a token has.
A fixed part covers TensorFlow, the padded splits and the embedding tables with their Adam
moments; with it the estimate is 1.61 GiB for the defaults, whose measured peaks are 1.56-1.61
GiB.
"""

from __future__ import annotations

from dataclasses import replace

from pathlib import Path

from imdb_sentiment.errors import PipelineError
from imdb_sentiment.params import Params

GIB = 1 << 30
ATTENTION_COPIES = 5.5  # (batch, heads, steps, steps) float32 tensors alive at a step's peak
ACTIVATION_COPIES = 2.5  # float32 copies of each (batch, steps) unit of width: values, gradients
BASE = 1.2 * GIB  # TensorFlow, Python, the model's small weights, dvclive
REVIEWS = 75_000  # training, validation and unlabeled reviews, held padded as int32
_MEMINFO = Path("/proc/meminfo")
_CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")  # cgroup v2: a container's limit
_CGROUP_USED = Path("/sys/fs/cgroup/memory.current")


def _steps(params: Params) -> int:
    """Tokens of the longest review."""
    return params.sequence_length * (2 if params.ngrams == 2 else 1)


def _attention_bytes(params: Params, batch: int, heads: int) -> float:
    """The (batch, heads, steps, keys) weights alive at a step's peak; the blocked form holds one
    block's keys."""
    steps = _steps(params)
    keys = min(params.attention_block_size or steps, steps)
    return ATTENTION_COPIES * 4 * batch * heads * steps * keys


def _body_values(params: Params) -> int:
    """The float32 values a token holds through the body: its embeddings, its region (the masked
    input, the convolution and the two side by side), each encoder block's projections, residual
    sums, norms and feed-forward layer."""
    e = params.embedding_dim
    width = e * (1 + 2 * bool(params.bigram_buckets) + (params.position_embedding != "none"))
    width += (e + 2 * params.region_filters) if params.region_filters else 0
    return width + params.encoder_blocks * (8 * params.body_width + params.ff_dim)


def _token_width(params: Params) -> int:
    """The float32 values a token holds through the classifier's layers: the body's, the
    pooling's keys (and their squares, with ``squared_keys``) and values, the n-gram branch's
    ratios and weights."""
    width = _body_values(params)
    if params.pooling != "average":
        keys_and_values = {"query": 2, "uniform": 2, "attention": 5}[params.pooling] + params.squared_keys
        width += keys_and_values * params.embed_dim
    return width + 2 * params.nb_ngrams


def _activation_bytes(params: Params, batch: int | None = None, width: int | None = None) -> float:
    """(batch, steps, width) values, ``ACTIVATION_COPIES`` times: the classifier's at ``batch_size``
    unless told otherwise."""
    batch = params.batch_size if batch is None else batch
    width = _token_width(params) if width is None else width
    return ACTIVATION_COPIES * 4 * batch * _steps(params) * width


def _fixed_bytes(params: Params) -> float:
    """What the stage holds at any batch size: the base, the padded reviews, the tables."""
    tables = 4 * (params.nb_buckets * 2 if params.nb_ngrams else 0) + 4 * params.bigram_buckets * params.embedding_dim
    # the fold ratios, and the fold-by-fold counts (two classes each) they are made from
    folds = 4 * params.nb_buckets * 3 * params.nb_folds if params.nb_ngrams else 0
    return BASE + 4 * REVIEWS * _steps(params) + 3 * tables + folds  # a table, its two Adam moments


def peak_bytes(params: Params) -> int:
    """The estimated peak resident memory of the train stage under ``params``."""
    # pooling: query has (steps) scores a head, not (steps x steps): nothing to count
    heads = params.encoder_blocks * params.encoder_heads + (params.num_heads if params.pooling == "attention" else 0)
    attention = _attention_bytes(params, params.batch_size, heads)  # each encoder block attends too
    return int(_fixed_bytes(params) + _activation_bytes(params) + attention)


PRETRAIN_COPIES = 4  # (asked positions, pretrain_vocabulary) float32 tensors: logits, softmax, their gradients
PRETRAIN_BATCH = 128  # reviews a pretraining step; not batch_size, so that a sweep of the classifier's does not re-run it


def pretrain_peak_bytes(params: Params) -> int:
    """The estimated peak resident memory of the pretrain stage (0 when it is off); it errs high:
    5.6 GiB for masked words over one encoder block of two heads at 800 tokens and a 2,000-word
    output, whose measured peak is 4.7 GiB (docs/experiments.md); 1.7 GiB for neighbours over 64
    region filters, measured 1.4 GiB."""
    if not params.pretrain_epochs:
        return 0
    steps = _steps(params)
    attention = _attention_bytes(params, PRETRAIN_BATCH, params.encoder_blocks * params.encoder_heads)
    body = _activation_bytes(params, PRETRAIN_BATCH, _body_values(params))
    # the output layer reads the asked positions only
    asked = PRETRAIN_BATCH * (params.pretrain_regions if params.pretrain_objective == "neighbours"
                              else steps * params.pretrain_mask_rate)
    logits = PRETRAIN_COPIES * 4 * asked * params.pretrain_vocabulary
    return int(BASE + 4 * REVIEWS * steps + attention + body + logits)


def available_bytes() -> int | None:
    """Memory a new process can use without swapping: MemAvailable, or less where a cgroup
    limit leaves less; None where neither can be read."""
    found = []
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = _CGROUP_LIMIT.read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(_CGROUP_USED.read_text().strip()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_memory(params: Params, available: int | None = None) -> None:
    """Fail with one line naming the params to change when the estimate exceeds ``available``
    (default: :func:`available_bytes`; unknown: no check)."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    pretraining = pretrain_peak_bytes(params)
    if pretraining > available:
        raise PipelineError(
            f"params.yaml: the pretrain stage would need about {pretraining / GIB:.1f} GiB at its peak and "
            f"{available / GIB:.1f} GiB is available: lower pretrain_vocabulary ({params.pretrain_vocabulary}) "
            f"or sequence_length ({params.sequence_length}), or set attention_block_size")
    needed = peak_bytes(params)
    if needed <= available:
        return
    start = (f"params.yaml: the train stage would need about {needed / GIB:.1f} GiB at its peak and "
             f"{available / GIB:.1f} GiB is available: ")
    if peak_bytes(replace(params, nb_buckets=1, bigram_buckets=0)) <= available:  # the tables make it too big
        raise PipelineError(start + f"lower nb_buckets ({params.nb_buckets}) or bigram_buckets "
                                    f"({params.bigram_buckets}); each row is kept with its two Adam moments")
    if _fixed_bytes(params) + _activation_bytes(params) > available:  # too big even without the attention weights
        widths = f", ff_dim ({params.ff_dim}) or encoder_blocks ({params.encoder_blocks})" if params.encoder_blocks else ""
        raise PipelineError(
            start + f"lower batch_size ({params.batch_size}), sequence_length ({params.sequence_length}){widths}; "
            f"each layer holds batch_size x sequence_length x its width of values")
    raise PipelineError(
        start + f"lower batch_size ({params.batch_size}), num_heads ({params.num_heads}) or sequence_length "
        f"({params.sequence_length}), or set attention_block_size; the attention holds batch_size x num_heads "
        f"x sequence_length^2 weights several times over")
