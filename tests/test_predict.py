"""The `predict` command: output formats, input sources and its one-line errors.

The cases that are about the process (exit status, stdin bytes, what reaches stderr) run
``python -m imdb_sentiment.predict`` in a subprocess; the others call ``main(argv)`` in this
process, which is the same code without paying TensorFlow's import for each case.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from conftest import committed_params_text  # noqa: E402
from imdb_sentiment import predict  # noqa: E402
from imdb_sentiment.model.batching import MAX_BATCH, TOKENS_PER_BATCH, length_batches  # noqa: E402
from imdb_sentiment.model.classifier import build_model, compile_model  # noqa: E402
from imdb_sentiment.params import parse_params  # noqa: E402
from imdb_sentiment.model.saving import save_model  # noqa: E402
from imdb_sentiment.features.text import adapt, make_vectorizer, vectorize, vocabulary  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]

POSITIVE = ["a great film with a great cast", "I loved it, wonderful and great", "great fun, loved the story",
            "wonderful acting, a great movie", "loved every minute, great"]
NEGATIVE = ["an awful film with an awful plot", "I hated it, boring and awful", "awful, dull and boring",
            "terrible acting, an awful movie", "hated every minute, boring"]


def make_params(**overrides):
    raw = yaml.safe_load(committed_params_text())
    raw.update({"max_features": 60, "sequence_length": 20, "embedding_dim": 8, "embed_dim": 8,
                "num_heads": 2, "batch_size": 4, "epochs": 1, "bigram_buckets": 200, "nb_buckets": 512,
                "region_filters": 8},
               **overrides)
    return parse_params(raw)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A classifier trained one short epoch, saved as the train stage saves it."""
    tmp = tmp_path_factory.mktemp("predict")
    keras.utils.set_random_seed(5)
    params = make_params()
    texts, labels = POSITIVE + NEGATIVE, np.array([1.0] * 5 + [0.0] * 5, dtype="float32")[:, None]
    vectorizer = make_vectorizer(params.max_features, params.sequence_length)
    adapt(vectorizer, texts)
    vocab = vocabulary(vectorizer)
    model = build_model(params, len(vocab))
    compile_model(model, learning_rate=0.05)
    model.fit(vectorize(vectorizer, texts), labels, epochs=params.epochs, batch_size=params.batch_size, verbose=0)
    save_model(model, vocab, params.sequence_length, params.ngrams, tmp / "model")
    not_a_model = tmp / "not_a_model"
    not_a_model.mkdir()
    (not_a_model / "saved_model.pb").write_text("this is a text file, not a model\n")
    logits = model.predict(vectorize(vectorizer, texts), verbose=0).ravel()
    return {"export": tmp / "model", "not_a_model": not_a_model,
            "probabilities": 1.0 / (1.0 + np.exp(-logits)), "texts": texts}


def start_cli(args: list[str], stdin: bytes, tmp: Path) -> subprocess.Popen:
    """``python -m imdb_sentiment.predict ARGS`` in a fresh process in ``tmp``, as a user would run it."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    (tmp / "stdin").write_bytes(stdin)
    with open(tmp / "stdin", "rb") as stdin_file:
        return subprocess.Popen([sys.executable, "-m", "imdb_sentiment.predict", *args], cwd=tmp, env=env,
                                stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_cli(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out.decode("utf-8"), err.decode("utf-8")


POSITIONAL = slice(0, 2), slice(-2, None)
STDIN = b"a great film \xff\xfe with a great cast\n\nawful \xc3\x28 boring\n   \nI hated it, boring and awful\n"


@pytest.fixture(scope="module")
def cli(models, tmp_path_factory) -> dict[str, tuple[int, str, str]]:
    """The runs in a fresh process, started together to share TensorFlow's import time."""
    reviews = models["texts"][POSITIONAL[0]] + models["texts"][POSITIONAL[1]]
    runs = {
        "positional": start_cli(["--model", str(models["export"]), *reviews], b"", tmp_path_factory.mktemp("cli")),
        "stdin": start_cli(["--model", str(models["export"]), "--json"], STDIN, tmp_path_factory.mktemp("cli")),
        "empty": start_cli([], b"", tmp_path_factory.mktemp("cli")),
    }
    return {name: finish_cli(process) for name, process in runs.items()}


def run_main(args: list[str], capsys, monkeypatch, stdin: bytes = b"") -> tuple[int, str, str]:
    """``predict.main(ARGS)`` in this process, stdin given as bytes."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    capsys.readouterr()
    try:
        predict.main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _check_plain(out: str, reviews: list[str]) -> list[float]:
    lines = out.splitlines()
    assert len(lines) == len(reviews), out
    probabilities = []
    for line, review in zip(lines, reviews):
        label, probability, text = line.split("\t", 2)
        assert text == review
        assert label in ("positive", "negative")
        assert probability.startswith("P(positive)=")
        probability = probability.removeprefix("P(positive)=")
        p = float(probability)
        assert 0.0 <= p <= 1.0
        assert len(probability.split(".")[1]) == 4
        assert (label == "positive") == (p >= 0.5) or abs(p - 0.5) <= 5e-5  # printed to 4 decimals
        probabilities.append(p)
    return probabilities


def _one_line_error(code: int, out: str, err: str) -> str:
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("predict: error: ")
    return lines[0]


# In a fresh process ----------------------------------------------------------------------------

def test_positional_reviews_print_label_probability_review(models, cli):
    code, out, err = cli["positional"]
    assert code == 0, err
    reviews = models["texts"][POSITIONAL[0]] + models["texts"][POSITIONAL[1]]
    expected = np.r_[models["probabilities"][POSITIONAL[0]], models["probabilities"][POSITIONAL[1]]]
    np.testing.assert_allclose(_check_plain(out, reviews), expected, atol=1e-4)
    assert "error" not in err and "warning" not in err


def test_stdin_one_review_a_line_non_utf8_replaced_with_a_warning(cli):
    code, out, err = cli["stdin"]
    assert code == 0, err
    assert err.strip().splitlines() == ["predict: warning: stdin is not valid UTF-8; undecodable bytes replaced",
                                        "predict: warning: not classified, no words once punctuation is removed: "
                                        "lines 2, 4"]
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["review"] for row in rows] == [
        "a great film \ufffd\ufffd with a great cast", "awful \ufffd( boring", "I hated it, boring and awful"]
    for row in rows:
        assert 0.0 <= row["p_positive"] <= 1.0
        assert row["label"] == ("positive" if row["p_positive"] >= 0.5 else "negative")


def test_no_arguments_and_empty_stdin_is_a_one_line_error(cli):
    line = _one_line_error(*cli["empty"])
    assert "no review to classify" in line


# In this process -------------------------------------------------------------------------------

def test_json_prints_one_object_a_line(models, capsys, monkeypatch):
    reviews = models["texts"]
    code, out, err = run_main(["--json", "--model", str(models["export"]), *reviews], capsys, monkeypatch)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["review"] for row in rows] == reviews
    assert set(rows[0]) == {"label", "p_positive", "review"}
    probabilities = [row["p_positive"] for row in rows]
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in probabilities)
    np.testing.assert_allclose(probabilities, models["probabilities"], atol=1e-6)
    for row in rows:
        assert row["label"] == ("positive" if row["p_positive"] >= 0.5 else "negative")
    assert {row["label"] for row in rows} == {"positive", "negative"}  # both sides of the threshold


def test_file_one_review_a_line(models, tmp_path, capsys, monkeypatch):
    reviews = models["texts"][3:7]
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(reviews) + "\n\n", encoding="utf-8")
    code, out, err = run_main(["--file", str(path), "--model", str(models["export"])], capsys, monkeypatch)
    assert code == 0, err
    np.testing.assert_allclose(_check_plain(out, reviews), models["probabilities"][3:7], atol=1e-4)


def test_very_long_review_works(models, capsys, monkeypatch):
    review = ("great " * 20_000)[:100_000]
    assert len(review) == 100_000
    code, out, err = run_main(["--json", "--model", str(models["export"]), review], capsys, monkeypatch)
    assert code == 0, err
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["review"] == review and 0.0 <= row["p_positive"] <= 1.0


@pytest.mark.parametrize("review", ["", "   ", "?!... -- !!!"], ids=["empty", "blank", "punctuation"])
def test_a_review_without_words_is_named_and_the_others_classified(models, review, capsys, monkeypatch):
    """As a line of --file or stdin is: what can be classified is, and a warning names the rest."""
    args = ["--model", str(models["export"]), "a great film", review, "dull"]
    code, out, err = run_main(args, capsys, monkeypatch)
    assert code == 0, err
    assert [line.split("\t")[2] for line in out.splitlines()] == ["a great film", "dull"]
    assert err.strip() == "predict: warning: not classified, no words once punctuation is removed: review 2"


def test_a_file_whose_every_line_has_no_words_is_an_error(models, tmp_path, capsys, monkeypatch):
    (tmp_path / "reviews.txt").write_text("?!\n\n...\n")
    line = _one_line_error(*run_main(["--model", str(models["export"]), "--file", str(tmp_path / "reviews.txt")],
                                     capsys, monkeypatch))
    assert line == "predict: error: no review to classify: every line has no words once punctuation is removed"


def test_the_project_folder_as_model_points_at_its_model(models, tmp_path, capsys, monkeypatch):
    shutil.copytree(models["export"], tmp_path / "data" / "model")
    line = _one_line_error(*run_main(["--model", str(tmp_path), "a great film"], capsys, monkeypatch))
    assert line == (f"predict: error: {tmp_path} is the project, not its model: pass --model {tmp_path}/data/model, "
                    f"or nothing from inside the project")


def test_unreadable_file_names_it(models, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "no-such-reviews.txt"
    line = _one_line_error(*run_main(["--file", str(missing), "--model", str(models["export"])],
                                     capsys, monkeypatch))
    assert str(missing) in line and "cannot read" in line


def test_reviews_and_file_together_is_an_error(models, tmp_path, capsys, monkeypatch):
    path = tmp_path / "reviews.txt"
    path.write_text("a great film\n")
    line = _one_line_error(*run_main(["--file", str(path), "a great film"], capsys, monkeypatch))
    assert "not both" in line


def test_missing_model_names_the_path(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nowhere" / "model"
    line = _one_line_error(*run_main(["--model", str(missing), "a great film"], capsys, monkeypatch))
    assert str(missing) in line and "not found" in line


def test_outside_a_clone_without_model_says_how_to_point_at_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(*run_main(["a great film"], capsys, monkeypatch))
    assert "not inside the project's clone" in line and "--model PATH" in line


def test_the_clone_s_model_is_found_from_any_folder_inside_it(models, tmp_path, capsys, monkeypatch):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    deep = tmp_path / "reports" / "figures"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    line = _one_line_error(*run_main(["a great film"], capsys, monkeypatch))
    assert f"model {tmp_path / 'data/model'} not found" in line and "dvc repro train" in line
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "model").symlink_to(models["export"])
    code, out, err = run_main(["--json", *models["texts"][:2]], capsys, monkeypatch)
    assert code == 0, err
    np.testing.assert_allclose([json.loads(line)["p_positive"] for line in out.splitlines()],
                               models["probabilities"][:2], atol=1e-6)


def test_file_that_is_not_a_model_is_an_error(models, capsys, monkeypatch):
    path = models["not_a_model"]
    line = _one_line_error(*run_main(["--model", str(path), "a great film"], capsys, monkeypatch))
    assert str(path) in line and "not a valid model folder" in line


def test_help_names_p_positive_and_the_cut_at_sequence_length(capsys):
    with pytest.raises(SystemExit):
        predict.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "P(positive)" in text and "sequence_length" in text and "cut" in text


def test_length_batches_group_similar_lengths_within_the_token_budget():
    lengths = [5, 800, 7, 6, 790, 3] + [8] * 3000
    batches = length_batches(lengths)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= TOKENS_PER_BATCH or len(batch) == 1
        assert len(batch) <= MAX_BATCH
    assert batches[0][0] == 5  # shortest first
    assert len(batches) < 12  # short reviews share batches
