"""Typed, validated access to params.yaml.

Every stage gets its values from :func:`load_params`, which checks the whole file once (unknown
keys, missing keys, types, ranges, ``embed_dim % num_heads``) before any work starts, and fails
with a :class:`PipelineError` that names the key and the expected value.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from imdb_sentiment.errors import PipelineError

DEFAULT_PATH = Path("params.yaml")
POSITION_EMBEDDINGS = ("none", "learned", "sinusoidal")
POOLINGS = ("attention", "query", "average", "uniform")
DISTRIBUTE = ("none", "mirrored", "multi_worker")
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SPLITS_BY = ("movie", "review")
PRETRAIN_OBJECTIVES = ("masked_words", "neighbours")
MAX_NGRAMS = 3
MAX_SCOPE = 20  # of negation_scope and contrast_scope: a regular-expression pass over every review per word


# The original script's hyperparameters (with the padding mask it meant to use; ``use_mask:
# false`` restores its bug too): the reference row of the README's results and the benchmark.
ORIGINAL_CONFIGURATION = {
    "max_features": 10000, "sequence_length": 250, "ngrams": 1, "negation_scope": 0, "contrast_scope": 0,
    "bigram_buckets": 0, "nb_ngrams": 0, "region_filters": 0, "pretrain_epochs": 0,
    "embedding_dim": 16, "position_embedding": "none", "encoder_blocks": 0, "pooling": "attention", "embed_dim": 512,
    "squared_keys": False, "num_heads": 8, "attention_dropout": 0.0, "dropout": 0.2, "use_mask": True, "batch_size": 32,
    "epochs": 10, "patience": 0, "learning_rate": 0.001, "lr_schedule": "constant", "weight_decay": 0.0,
    "lazy_updates": False, "refit": False, "pseudo_label_confidence": 0.0, "validation_split": 0.2,
}


@dataclass(frozen=True)
class DataParams:
    url: str
    sha256: str  # "" means: do not verify


@dataclass(frozen=True)
class Params:
    data: DataParams
    max_features: int
    sequence_length: int
    ngrams: int
    negation_scope: int
    contrast_scope: int
    bigram_buckets: int
    nb_ngrams: int
    nb_buckets: int
    nb_scale: float
    nb_folds: int
    embedding_dim: int
    region_filters: int
    region_width: int
    position_embedding: str
    encoder_blocks: int
    encoder_heads: int
    ff_dim: int
    encoder_dropout: float
    pretrain_epochs: int
    pretrain_objective: str
    pretrain_mask_rate: float
    pretrain_regions: int
    pretrain_window: int
    pretrain_skip_common: int
    pretrain_vocabulary: int
    pretrain_learning_rate: float
    pooling: str
    squared_keys: bool
    embed_dim: int
    num_heads: int
    dropout: float
    attention_dropout: float
    attention_block_size: int
    use_mask: bool
    batch_size: int
    epochs: int
    patience: int
    refit: bool
    pseudo_label_confidence: float
    teacher_pooling: str
    learning_rate: float
    lr_schedule: str
    weight_decay: float
    lazy_updates: bool
    distribute: str
    precision: str
    validation_split: float
    split_by: str
    seed: int

    @property
    def body_width(self) -> int:
        """The width of the vectors the pooling reads: a word's embedding and its region's."""
        return self.embedding_dim + self.region_filters

    def teacher(self) -> Params:
        """The params of the self-training teacher: these, pooled as ``teacher_pooling`` says."""
        return replace(self, pooling=self.teacher_pooling)


def _fail(key: str, problem: str) -> PipelineError:
    return PipelineError(f"params.yaml: {key} {problem}")


def _check_keys(section: dict, expected: list[str], prefix: str) -> None:
    for key in section:
        if key not in expected:
            close = difflib.get_close_matches(str(key), expected, n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise _fail(f"{prefix}{key}", f"is not a known parameter{hint}")
    for key in expected:
        if key not in section:
            raise _fail(f"{prefix}{key}", "is missing")


def _int(raw: dict, key: str, minimum: int = 1) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, f"must be an integer, got {value!r}")
    if value < minimum:
        raise _fail(key, f"must be >= {minimum}, got {value}")
    return value


def _float(raw: dict, key: str, low: float, high: float, *, low_open: bool, high_open: bool) -> float:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, f"must be a number, got {value!r}")
    above_low = value > low if low_open else value >= low
    below_high = value < high if high_open else value <= high
    if not (above_low and below_high):  # phrased so that NaN, which compares false, fails too
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise _fail(key, f"must be in {interval}, got {value}")
    return float(value)


def _choice(raw: dict, key: str, choices: tuple[str, ...]) -> str:
    value = raw[key]
    if value not in choices:
        raise _fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
    return value


def _bool(raw: dict, key: str) -> bool:
    value = raw[key]
    if not isinstance(value, bool):
        raise _fail(key, f"must be true or false, got {value!r}")
    return value


def _data(raw: Any) -> DataParams:
    if not isinstance(raw, dict):
        raise _fail("data", "must be a mapping with keys url and sha256")
    _check_keys(raw, [f.name for f in fields(DataParams)], "data.")
    url, sha256 = raw["url"], raw["sha256"]
    if not isinstance(url, str) or not url.strip():
        raise _fail("data.url", f"must be a URL or a local path, got {url!r}")
    sha256 = "" if sha256 is None else sha256
    if not isinstance(sha256, str):
        raise _fail("data.sha256", f"must be a 64-digit hex string or empty, got {sha256!r}")
    sha256 = sha256.strip().lower()
    if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise _fail("data.sha256", f"must be a 64-digit hex string or empty, got {sha256!r}")
    return DataParams(url=url.strip(), sha256=sha256)


def parse_params(raw: Any) -> Params:
    """Validate a params mapping (as read from YAML) and return it typed."""
    if not isinstance(raw, dict):
        raise PipelineError("params.yaml: expected a mapping of parameter names to values")
    _check_keys(raw, [f.name for f in fields(Params)], "")
    params = Params(
        data=_data(raw["data"]),
        max_features=_int(raw, "max_features", minimum=3),
        sequence_length=_int(raw, "sequence_length"),
        ngrams=_int(raw, "ngrams"),
        negation_scope=_int(raw, "negation_scope", minimum=0),
        contrast_scope=_int(raw, "contrast_scope", minimum=0),
        bigram_buckets=_int(raw, "bigram_buckets", minimum=0),
        nb_ngrams=_int(raw, "nb_ngrams", minimum=0),
        nb_buckets=_int(raw, "nb_buckets"),
        nb_scale=_float(raw, "nb_scale", 0.0, 100.0, low_open=True, high_open=False),
        nb_folds=_int(raw, "nb_folds", minimum=0),
        embedding_dim=_int(raw, "embedding_dim"),
        region_filters=_int(raw, "region_filters", minimum=0),
        region_width=_int(raw, "region_width"),
        position_embedding=_choice(raw, "position_embedding", POSITION_EMBEDDINGS),
        encoder_blocks=_int(raw, "encoder_blocks", minimum=0),
        encoder_heads=_int(raw, "encoder_heads"),
        ff_dim=_int(raw, "ff_dim"),
        encoder_dropout=_float(raw, "encoder_dropout", 0.0, 1.0, low_open=False, high_open=True),
        pretrain_epochs=_int(raw, "pretrain_epochs", minimum=0),
        pretrain_objective=_choice(raw, "pretrain_objective", PRETRAIN_OBJECTIVES),
        pretrain_mask_rate=_float(raw, "pretrain_mask_rate", 0.0, 1.0, low_open=True, high_open=True),
        pretrain_regions=_int(raw, "pretrain_regions"),
        pretrain_window=_int(raw, "pretrain_window"),
        pretrain_skip_common=_int(raw, "pretrain_skip_common", minimum=0),
        pretrain_vocabulary=_int(raw, "pretrain_vocabulary", minimum=3),
        pretrain_learning_rate=_float(raw, "pretrain_learning_rate", 0.0, 1.0, low_open=True, high_open=False),
        pooling=_choice(raw, "pooling", POOLINGS),
        squared_keys=_bool(raw, "squared_keys"),
        embed_dim=_int(raw, "embed_dim"),
        num_heads=_int(raw, "num_heads"),
        dropout=_float(raw, "dropout", 0.0, 1.0, low_open=False, high_open=True),
        attention_dropout=_float(raw, "attention_dropout", 0.0, 1.0, low_open=False, high_open=True),
        attention_block_size=_int(raw, "attention_block_size", minimum=0),
        use_mask=_bool(raw, "use_mask"),
        batch_size=_int(raw, "batch_size"),
        epochs=_int(raw, "epochs"),
        patience=_int(raw, "patience", minimum=0),
        refit=_bool(raw, "refit"),
        pseudo_label_confidence=_float(raw, "pseudo_label_confidence", 0.0, 1.0, low_open=False, high_open=True),
        teacher_pooling=_choice(raw, "teacher_pooling", POOLINGS),
        lr_schedule=_choice(raw, "lr_schedule", LR_SCHEDULES),
        distribute=_choice(raw, "distribute", DISTRIBUTE),
        precision=_choice(raw, "precision", PRECISIONS),
        learning_rate=_float(raw, "learning_rate", 0.0, 1.0, low_open=True, high_open=False),
        weight_decay=_float(raw, "weight_decay", 0.0, 100.0, low_open=False, high_open=False),
        lazy_updates=_bool(raw, "lazy_updates"),
        validation_split=_float(raw, "validation_split", 0.0, 1.0, low_open=True, high_open=True),
        split_by=_choice(raw, "split_by", SPLITS_BY),
        seed=_int(raw, "seed", minimum=0),
    )
    if params.pretrain_epochs and params.pretrain_objective == "masked_words" and not params.encoder_blocks:
        raise _fail("pretrain_epochs", f"must be 0 with encoder_blocks 0 and pretrain_objective masked_words (a "
                                       f"hidden word is told by the others through the encoder blocks; without "
                                       f"them choose pretrain_objective neighbours), got {params.pretrain_epochs}")
    if params.pretrain_epochs and params.pretrain_objective == "neighbours" and params.encoder_blocks:
        raise _fail("pretrain_objective", "must be masked_words with encoder_blocks > 0 (the blocks would show "
                                          "each region the neighbours it is to predict), got neighbours")
    if params.region_width % 2 == 0:
        raise _fail("region_width", f"must be odd (a region centred on its word), got {params.region_width}")
    if params.pretrain_epochs and not params.use_mask:
        raise _fail("pretrain_epochs", f"must be 0 with use_mask false (pretraining hides real words only), "
                                       f"got {params.pretrain_epochs}")
    if params.nb_folds == 1:
        raise _fail("nb_folds", "must be 0 (the same ratios in training) or at least 2 (cross-fitted), got 1")
    if params.ngrams > MAX_NGRAMS:
        raise _fail("ngrams", f"must be 1 (words), 2 (words and word pairs) or 3, got {params.ngrams}")
    for key in ("negation_scope", "contrast_scope"):
        if getattr(params, key) > MAX_SCOPE:
            raise _fail(key, f"must be at most {MAX_SCOPE} words, got {getattr(params, key)}")
    if 0.0 < params.pseudo_label_confidence < 0.5:
        raise _fail("pseudo_label_confidence", f"must be 0 (off) or in [0.5, 1), got {params.pseudo_label_confidence}")
    if params.patience and params.lr_schedule == "cosine":
        # Early stopping would keep an epoch whose learning rate the cosine had not yet taken
        # down: a model the schedule never finished. With cosine, choose `epochs` on validation.
        raise _fail("patience", f"must be 0 with lr_schedule cosine (the schedule fixes the epochs; "
                                f"choose epochs on validation accuracy instead), got {params.patience}")
    if params.attention_block_size and params.attention_dropout:
        raise _fail("attention_block_size", f"must be 0 with attention_dropout > 0 (the blocked form drops no "
                                            f"weights), got {params.attention_block_size}")
    if params.encoder_blocks and params.body_width % params.encoder_heads:
        raise _fail(
            "encoder_heads",
            f"({params.encoder_heads}) must divide embedding_dim + region_filters ({params.body_width}) with "
            f"encoder_blocks > 0 (the encoder's attention is as wide as the token vectors); choose among "
            f"{_divisors(params.body_width)}",
        )
    if params.embed_dim % params.num_heads:
        raise _fail(
            "embed_dim",
            f"({params.embed_dim}) must be divisible by num_heads ({params.num_heads}); "
            f"choose num_heads among {_divisors(params.embed_dim)}",
        )
    return params


def _divisors(n: int) -> str:
    small = [d for d in range(1, min(n, 64) + 1) if n % d == 0]
    return ", ".join(map(str, small))


def load_params(path: str | Path = DEFAULT_PATH) -> Params:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path} is not valid YAML: {exc}".replace("\n", " ")) from exc
    return parse_params(raw)
