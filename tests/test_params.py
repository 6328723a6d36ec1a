"""params.yaml validation: every mistake is one PipelineError line that names the key to fix."""

from __future__ import annotations

import copy
import math
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from imdb_sentiment.errors import PipelineError
from imdb_sentiment.params import ORIGINAL_CONFIGURATION, DataParams, Params, load_params, parse_params

from conftest import PROJECT, committed_params_text

_RAW = yaml.safe_load(committed_params_text())
GOOD_SHA = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"


def raw(**changes) -> dict:
    """The repository's params as a fresh mapping, with top-level ``changes`` applied."""
    params = copy.deepcopy(_RAW)
    params.update(changes)
    return params


def with_data(**changes) -> dict:
    params = raw()
    params["data"].update(changes)
    return params


def error(params) -> str:
    """The message parse_params raises for ``params``; it must be a single line."""
    with pytest.raises(PipelineError) as info:
        parse_params(params)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --- the repository's own params.yaml ----------------------------------------------------------


def test_repo_params_yaml_is_valid():
    """The committed file, whatever a user's runs left in the working copy."""
    params = parse_params(copy.deepcopy(_RAW))
    assert isinstance(params, Params)
    assert params.data == DataParams(
        url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz", sha256=GOOD_SHA
    )
    assert params.use_mask and (params.distribute, params.precision) == ("none", "float32")
    assert isinstance(params.dropout, float) and isinstance(params.learning_rate, float)


def test_the_original_configuration_is_valid_and_differs_from_the_defaults():
    original = parse_params(raw(**ORIGINAL_CONFIGURATION))
    assert (original.embed_dim, original.num_heads, original.sequence_length) == (512, 8, 250)
    assert set(ORIGINAL_CONFIGURATION) < set(_RAW)
    assert any(_RAW[key] != value for key, value in ORIGINAL_CONFIGURATION.items())


def test_the_readmes_original_command_sets_the_original_configuration():
    """The README's `dvc exp run --name original -S ...` runs what ORIGINAL_CONFIGURATION says,
    whatever the defaults are now (a default that changes must be set back there)."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"dvc exp run --name original (.*?)\n```", readme, re.S).group(1)
    changes = {key: yaml.safe_load(value) for key, value in re.findall(r"-S (\w+)=(\S+)", command)}
    assert parse_params(raw(**changes)) == parse_params(raw(**ORIGINAL_CONFIGURATION))


def test_every_hyperparameter_is_a_top_level_key():
    """`dvc exp run -S num_heads=4` reaches a parameter only by its bare top-level name."""
    assert set(_RAW) == {f.name for f in fields(Params)}
    assert set(_RAW["data"]) == {f.name for f in fields(DataParams)}


def test_load_params_reads_params_yaml_in_the_working_directory(monkeypatch, tmp_path):
    (tmp_path / "params.yaml").write_text(committed_params_text(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_params() == parse_params(raw())


def test_the_checks_of_the_repository_s_params_ignore_a_user_s_working_copy(tmp_path):
    """A clone whose params.yaml a run from a local archive changed (and a failed experiment left
    a value in) passes these tests: they check what is committed."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True, capture_output=True)
    shutil.copytree(PROJECT / "tests", clone / "tests", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))  # these tests, not the committed ones
    text = (clone / "params.yaml").read_text(encoding="utf-8")
    text = re.sub(r"url: \S+", f"url: {tmp_path / 'aclImdb_v1.tar.gz'}", text)
    (clone / "params.yaml").write_text(text.replace("epochs: 2", "epochs: 0"), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/test_params.py", "-k", "not ignore_a_user"],
                            cwd=clone, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["num_heads", "seed", "learning_rate", "data"])
def test_missing_key_is_named(key):
    params = raw()
    del params[key]
    assert error(params) == f"params.yaml: {key} is missing"


def test_missing_data_key_is_named():
    params = raw()
    del params["data"]["sha256"]
    assert error(params) == "params.yaml: data.sha256 is missing"


def test_typo_suggests_the_known_parameter():
    params = raw()
    params["num_head"] = params.pop("num_heads")
    message = error(params)
    assert "num_head is not a known parameter" in message
    assert "did you mean 'num_heads'?" in message


def test_typo_in_data_section_suggests_the_dotted_name():
    params = raw()
    params["data"]["sha265"] = params["data"].pop("sha256")
    message = error(params)
    assert "data.sha265 is not a known parameter" in message
    assert "did you mean 'data.sha256'?" in message


def test_unknown_key_without_a_close_match_has_no_suggestion():
    message = error(raw(colour="blue"))
    assert "colour is not a known parameter" in message
    assert "did you mean" not in message


@pytest.mark.parametrize("document", [None, [], "num_heads: 8", 42])
def test_not_a_mapping(document):
    assert "expected a mapping" in error(document)


# --- types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("num_heads", "eight", "num_heads must be an integer, got 'eight'"),
        ("epochs", True, "epochs must be an integer, got True"),
        ("batch_size", 32.0, "batch_size must be an integer, got 32.0"),
        ("seed", None, "seed must be an integer, got None"),
        ("use_mask", 1, "use_mask must be true or false, got 1"),
        ("use_mask", "yes", "use_mask must be true or false, got 'yes'"),
        ("refit", "no", "refit must be true or false, got 'no'"),
        ("lazy_updates", 0, "lazy_updates must be true or false, got 0"),
        ("dropout", "0.2", "dropout must be a number, got '0.2'"),
        ("learning_rate", True, "learning_rate must be a number, got True"),
        ("data", "https://example.com/a.tar.gz", "data must be a mapping with keys url and sha256"),
    ],
)
def test_wrong_type_names_key_and_value(key, value, expected):
    assert error(raw(**{key: value})) == f"params.yaml: {expected}"


def test_yaml_spellings_of_types():
    """What a user actually writes in the file: a quoted number is a string, not an integer."""
    text = re.sub(r"num_heads: \d+", 'num_heads: "2"', committed_params_text())
    assert "num_heads must be an integer, got '2'" in error(yaml.safe_load(text))
    params = parse_params(yaml.safe_load(committed_params_text().replace(
        "lazy_updates: true", "lazy_updates: false")))
    assert params.lazy_updates is False


# --- ranges --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "minimum"),
    [("batch_size", 0, 1), ("epochs", -1, 1), ("sequence_length", 0, 1), ("embedding_dim", 0, 1),
     ("num_heads", 0, 1), ("embed_dim", -8, 1), ("max_features", 2, 3), ("seed", -1, 0),
     ("ngrams", 0, 1), ("bigram_buckets", -1, 0), ("patience", -1, 0),
     ("negation_scope", -1, 0), ("contrast_scope", -1, 0)],
)
def test_sizes_below_their_minimum(key, value, minimum):
    assert error(raw(**{key: value})) == f"params.yaml: {key} must be >= {minimum}, got {value}"


@pytest.mark.parametrize("key", ["negation_scope", "contrast_scope"])
def test_scopes_above_twenty_words(key):
    assert error(raw(**{key: 21})) == f"params.yaml: {key} must be at most 20 words, got 21"


@pytest.mark.parametrize(
    ("key", "value", "interval"),
    [
        ("validation_split", 0, "(0.0, 1.0)"),
        ("validation_split", 1, "(0.0, 1.0)"),
        ("validation_split", 1.5, "(0.0, 1.0)"),
        ("dropout", 1.0, "[0.0, 1.0)"),
        ("dropout", -0.1, "[0.0, 1.0)"),
        ("attention_dropout", 1.0, "[0.0, 1.0)"),
        ("learning_rate", 0.0, "(0.0, 1.0]"),
        ("learning_rate", 2, "(0.0, 1.0]"),
        ("weight_decay", -0.1, "[0.0, 100.0]"),
        ("weight_decay", float("nan"), "[0.0, 100.0]"),
    ],
)
def test_fractions_outside_their_interval(key, value, interval):
    assert error(raw(**{key: value})) == f"params.yaml: {key} must be in {interval}, got {value}"


@pytest.mark.parametrize("key", ["validation_split", "dropout", "attention_dropout", "learning_rate"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(key, value):
    """YAML's .nan/.inf are floats; NaN compares false with everything, so it must still fail."""
    message = error(raw(**{key: value}))
    assert message.startswith(f"params.yaml: {key} must be in ")
    assert message.endswith(f"got {value}")


def test_boundaries_that_are_allowed():
    params = parse_params(raw(dropout=0.0, attention_dropout=0.0, learning_rate=1, seed=0,
                              max_features=3, validation_split=0.999, sequence_length=1))
    assert (params.dropout, params.learning_rate, params.seed, params.max_features) == (0.0, 1.0, 0, 3)
    assert isinstance(params.learning_rate, float)


def test_ngrams_above_three_is_refused():
    assert error(raw(ngrams=4)) == "params.yaml: ngrams must be 1 (words), 2 (words and word pairs) or 3, got 4"


@pytest.mark.parametrize("value", ["absolute", "", None, True, "Learned"])
def test_position_embedding_must_be_one_of_the_kinds(value):
    assert error(raw(position_embedding=value)) == (
        f"params.yaml: position_embedding must be one of none, learned, sinusoidal; got {value!r}")


@pytest.mark.parametrize("key", ["pooling", "teacher_pooling"])
def test_poolings_must_be_attention_query_average_or_uniform(key):
    assert error(raw(**{key: "max"})) == (f"params.yaml: {key} must be one of attention, query, average, uniform; "
                                          f"got 'max'")


def test_choices_and_switches_that_are_allowed():
    params = parse_params(raw(ngrams=2, bigram_buckets=0, patience=0, position_embedding="sinusoidal"))
    assert (params.ngrams, params.bigram_buckets, params.patience, params.position_embedding) == (2, 0, 0, "sinusoidal")


def test_embed_dim_not_divisible_by_num_heads_names_both():
    message = error(raw(embed_dim=10, num_heads=4))
    assert message.startswith("params.yaml: embed_dim (10) must be divisible by num_heads (4)")
    assert message.endswith("choose num_heads among 1, 2, 5, 10")


def test_embed_dim_divisible_by_num_heads_is_accepted():
    params = parse_params(raw(embed_dim=12, num_heads=4))
    assert (params.embed_dim, params.num_heads) == (12, 4)


# --- data ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sha", ["abc", "g" * 64, GOOD_SHA[:-1], GOOD_SHA + "0", f"sha256:{GOOD_SHA}", 123])
def test_malformed_sha256(sha):
    message = error(with_data(sha256=sha))
    assert message.startswith("params.yaml: data.sha256 must be a 64-digit hex string or empty")


@pytest.mark.parametrize(("sha", "expected"), [
    ("", ""), (None, ""), (GOOD_SHA.upper(), GOOD_SHA), (f"  {GOOD_SHA}\n", GOOD_SHA),
])
def test_sha256_normalised_or_empty(sha, expected):
    assert parse_params(with_data(sha256=sha)).data.sha256 == expected


@pytest.mark.parametrize("url", ["", "   ", None, 42])
def test_empty_or_non_string_url(url):
    assert error(with_data(url=url)) == f"params.yaml: data.url must be a URL or a local path, got {url!r}"


def test_url_may_be_a_local_path():
    assert parse_params(with_data(url=" /data/aclImdb_v1.tar.gz ")).data.url == "/data/aclImdb_v1.tar.gz"


# --- the file ------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(PipelineError, match="cannot read .*nope.yaml: No such file or directory"):
        load_params(path)


def test_unreadable_file_is_a_directory(tmp_path):
    with pytest.raises(PipelineError, match="cannot read .*: Is a directory"):
        load_params(tmp_path)


def test_invalid_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  url: [unclosed\nnum_heads: 8\n", encoding="utf-8")
    with pytest.raises(PipelineError) as info:
        load_params(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not valid YAML: ")
    assert "\n" not in message


def test_empty_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="expected a mapping"):
        load_params(path)


def test_load_params_validates_what_it_reads(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(re.sub(r"num_heads: \d+", "num_heads: 7", committed_params_text()),
                    encoding="utf-8")
    with pytest.raises(PipelineError, match=r"embed_dim \(\d+\) must be divisible by num_heads \(7\)"):
        load_params(path)


def test_early_stopping_is_refused_with_a_cosine_schedule():
    """It could keep an epoch whose learning rate the cosine had not yet brought down."""
    assert error(raw(patience=1, lr_schedule="cosine")) == (
        "params.yaml: patience must be 0 with lr_schedule cosine (the schedule fixes the epochs; "
        "choose epochs on validation accuracy instead), got 1")
    assert parse_params(raw(patience=1, lr_schedule="constant")).patience == 1


def test_the_blocked_attention_refuses_dropout_on_weights_it_never_forms():
    assert error(raw(attention_block_size=64, attention_dropout=0.1)).startswith(
        "params.yaml: attention_block_size must be 0 with attention_dropout > 0")
    assert parse_params(raw(attention_block_size=64)).attention_block_size == 64
    assert "attention_block_size must be >= 0" in error(raw(attention_block_size=-1))
