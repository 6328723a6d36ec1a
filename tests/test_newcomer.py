"""End to end, a newcomer's path offline: a clone whose committed params name the official
download (unreachable here), run from a local copy of the archive given by a relative path, as
the README says; then the mistakes a first user makes, and the way back from each."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time

import pytest
import yaml

from conftest import TRAIN_SUMMARY, copy_project, ran, run, sha256

pytestmark = pytest.mark.slow

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
CLEAN = "Data and pipelines are up to date."


def params(repo) -> dict:
    return yaml.safe_load((repo / "params.yaml").read_text())


def predicts(repo) -> str:
    return json.loads(run(["predict", "--json", "A wonderful film."], repo).stdout)["label"]


def stage_lines(stderr: str, stage: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{stage}: ")]


@pytest.fixture(scope="module")
def offline(tmp_path_factory, tiny_archive, first_run):
    """The clone (official URL committed) after the README's offline run, with a path relative
    to the project's root."""
    root = tmp_path_factory.mktemp("newcomer")
    shutil.copy(tiny_archive, root / "aclImdb_v1.tar.gz")
    repo = copy_project(first_run, root / "repo")  # main's lock: made offline, committed under the official source
    for name in ("params.yaml", "dvc.lock"):
        (repo / name).write_text(re.sub(r"url: \S+", f"url: {OFFICIAL_URL}", (repo / name).read_text()))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "the official source, as on main"], repo)
    run(["git", "clean", "-qfdx", "data"], repo)
    shutil.rmtree(repo / ".dvc" / "cache")  # a newcomer's clone: no outputs, an empty cache
    result = run(["dvc", "exp", "run", "--name", "offline", "-S", "data.url=../aclImdb_v1.tar.gz",
                  "-S", f"data.sha256={sha256(tiny_archive)}"], repo, env={"TF_CPP_MIN_LOG_LEVEL": ""})
    assert "Running stage 'train'" in result.stdout
    assert predicts(repo) in ("positive", "negative")
    assert run(["dvc", "status"], repo).stdout.strip() == CLEAN
    (root / "first-run.log").write_text(result.stdout + result.stderr)
    return repo


def test_quiet_stages_print_no_tensorflow_start_up_lines(offline):
    """The offline run, as a user without TF_CPP_MIN_LOG_LEVEL in their environment makes it."""
    log = (offline.parent / "first-run.log").read_text()
    assert {"validate", "download", "extract", "vectorize", "train", "evaluate"} <= ran(log)
    noise = [line for line in log.splitlines()
             if "absl::InitializeLog" in line or "oneDNN custom operations" in line]
    assert noise == []


# The metrics files with a time in them: the one figure that differs between identical runs.
TIMED = {TRAIN_SUMMARY: "fit_seconds", "reports/pretrain.json": "seconds"}


def outputs(lock_text: str) -> dict:
    """Every stage's outputs in a dvc.lock by path, with their hashes; the :data:`TIMED` files left out."""
    stages = yaml.safe_load(lock_text)["stages"].values()
    return {out["path"]: out for stage in stages for out in stage["outs"] if out["path"] not in TIMED}


def without_timing(path: str, summary_text: str) -> dict:
    summary = json.loads(summary_text)
    assert summary.pop(TIMED[path]) > 0
    return summary


def test_a_run_from_an_empty_cache_gives_the_first_run_s_outputs_to_the_byte(offline, first_run):
    """Another repo, the same params and data (its archive by another path), every stage run
    again from nothing: every output hashes the same in dvc.lock (vectorized data, pretrained
    body, models, reports), and the train and pretrain summaries agree to the last digit."""
    assert outputs((offline / "dvc.lock").read_text()) == outputs((first_run / "dvc.lock").read_text())
    for path in TIMED:
        ours, first = ((repo / path).read_text() for repo in (offline, first_run))
        assert without_timing(path, ours) == without_timing(path, first)


def test_a_bad_value_says_it_stays_and_imdb_restore_brings_the_run_back(offline):
    before = params(offline)
    result = run(["dvc", "exp", "run", "-S", "epochs=0"], offline, check=False)
    assert result.returncode != 0
    assert stage_lines(result.stderr, "validate") == [
        "validate: error: params.yaml: epochs must be >= 1, got 0",
        "validate: params.yaml still holds the values this run was given; `imdb-restore` puts back the params "
        "and outputs of the last complete run (README: Experiments)"]
    again = run(["dvc", "exp", "run", "-S", "num_heads=2"], offline, check=False)  # the trap: 0 is still there
    assert "epochs must be >= 1, got 0" in again.stderr
    restored = run(["imdb-restore"], offline)
    assert restored.stdout.startswith("imdb-restore: back to experiment "), restored.stdout
    assert params(offline) == before and params(offline)["data"]["url"] == "../aclImdb_v1.tar.gz"
    assert run(["dvc", "status"], offline).stdout.strip() == CLEAN
    assert predicts(offline) in ("positive", "negative")


def test_a_failed_train_stage_loses_the_model_and_imdb_restore_brings_it_back(offline):
    """DVC removes a stage's outputs before it runs: here train's, when it then fails."""
    result = run(["dvc", "exp", "run", "-S", "distribute=multi_worker"], offline, check=False,
                 env={"TF_CONFIG": ""})
    assert result.returncode != 0 and "needs the TF_CONFIG" in result.stderr
    assert stage_lines(result.stderr, "train")[-1].startswith("train: params.yaml still holds the values")
    assert not (offline / "data/model").exists()
    run(["imdb-restore"], offline)
    assert run(["dvc", "status"], offline).stdout.strip() == CLEAN
    assert params(offline)["distribute"] == "none" and predicts(offline) in ("positive", "negative")


@pytest.mark.parametrize(("override", "message"), [
    ("data.sha256=" + "0" * 64, "validate: error: sha256 mismatch for data.url ../aclImdb_v1.tar.gz (that is {root}"
                                "/aclImdb_v1.tar.gz): expected 0000"),
    ("data.url=../missing.tar.gz", "validate: error: data.url: ../missing.tar.gz (that is {root}/missing.tar.gz) "
                                   "is not a file"),
])
def test_a_wrong_local_archive_fails_in_validate_and_keeps_the_archive(offline, override, message):
    archive = offline / "data/aclImdb_v1.tar.gz"
    before = archive.read_bytes()
    result = run(["dvc", "exp", "run", "-S", override], offline, check=False)
    assert result.returncode != 0 and ran(result.stdout) == {"validate"}
    assert message.format(root=offline.parent) in result.stderr, result.stderr
    assert archive.read_bytes() == before
    run(["imdb-restore"], offline)


def experiment_file(repo, name: str, path: str) -> str:
    """A file as experiment ``name`` saved it (its git ref, refs/exps/../NAME)."""
    refs = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], repo).stdout.split()
    ref, = (ref for ref in refs if ref.endswith(f"/{name}"))
    return run(["git", "show", f"{ref}:{path}"], repo).stdout


def test_a_queued_experiment_reruns_only_what_depends_on_num_heads_and_compares_in_exp_show_and_plots_diff(offline):
    """Queued runs start in a copy under .dvc/tmp/exps: the relative data.url still resolves
    against the project's root (validate checks that archive). Of the stages, only validate and
    those that read num_heads run again. `dvc metrics diff` and `dvc exp show` (which fits 160
    columns) compare the two; `dvc plots diff` draws both experiments' curves."""
    run(["dvc", "exp", "run", "--queue", "--name", "heads-4", "-S", "num_heads=4"], offline)
    run(["dvc", "queue", "start", "--jobs", "1"], offline)
    deadline = time.monotonic() + 600
    while re.search(r"\b(Queued|Running)\b", status := run(["dvc", "queue", "status"], offline).stdout):
        assert time.monotonic() < deadline, status
        time.sleep(3)
    log = run(["dvc", "queue", "logs", "heads-4"], offline).stdout
    assert "Success" in status and "Failed" not in status, log
    assert ran(log) == {"validate", "train", "evaluate", "plots"}, log
    test_loss = [json.loads(experiment_file(offline, name, "reports/classification.json"))["test"]["loss"]
                 for name in ("offline", "heads-4")]
    assert test_loss[0] != test_loss[1]  # another model (the tiny one's accuracy is the same in both)
    diff = json.loads(run(["dvc", "metrics", "diff", "offline", "heads-4", "--json", "--all"], offline).stdout)
    assert set(diff) == {"reports/metrics.json", TRAIN_SUMMARY, "reports/pretrain.json"}  # dataset statistics are no metrics
    assert {side: diff[TRAIN_SUMMARY]["fit_seconds"][side] for side in ("old", "new")} == {
        side: json.loads(experiment_file(offline, name, TRAIN_SUMMARY))["fit_seconds"]
        for side, name in (("old", "offline"), ("new", "heads-4"))}
    table = run(["dvc", "exp", "show", "--no-pager", "--only-changed"], offline, env={"COLUMNS": "160"}).stdout
    header = table.splitlines()[1]
    assert max(len(line) for line in table.splitlines()) <= 160
    # The tiny model's accuracies are the same in every row (so --only-changed drops them); what
    # differs must be in view, the changed hyperparameter before the long local path.
    for column in ("fit_seconds", "num_heads"):
        assert column in header, table
    assert "data.url" not in header or header.index("num_heads") < header.index("data.url"), table
    shown = run(["dvc", "exp", "show", "--csv"], offline).stdout
    assert "accuracy" in shown.splitlines()[0]  # the metrics' columns too, not only the params'
    rows = list(csv.DictReader(io.StringIO(shown)))
    assert {row["Experiment"]: row["num_heads"] for row in rows if row["Experiment"] in ("heads-4", "offline")} == {
        "heads-4": "4", "offline": str(params(offline)["num_heads"])}
    plots = json.loads(run(["dvc", "plots", "diff", "offline", "heads-4", "--json"], offline).stdout)["data"]
    for curve in ("reports/train/plots/metrics/supervised/loss.tsv", "ROC"):
        assert sorted(plots[curve][0]["revisions"]) == ["heads-4", "offline"]
