"""End to end: the real `dvc repro` on a tiny archive in the official layout, in a temporary
git repo, then what a user does next (repro again, a code change, a teammate's pull, bad params,
a killed stage, a fresh clone). Experiments: tests/test_newcomer.py."""

from __future__ import annotations

import csv
import json
import platform
import subprocess

import numpy as np
import psutil
import pytest
import yaml

from conftest import TRAIN_SUMMARY, command_env, copy_project, ran, run, sha256
from imdb_sentiment.features.vectorized import load_split

pytestmark = pytest.mark.slow

STAGES = ("validate", "download", "extract", "vectorize", "pretrain", "train", "evaluate", "plots")


TRAIN_CURVES = "reports/train/plots/metrics"
CURVES = (f"{TRAIN_CURVES}/supervised/loss.tsv", f"{TRAIN_CURVES}/self_trained/val_accuracy.tsv")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, first_run):
    """The project after `dvc repro` ran every stage, committed."""
    assert set(yaml.safe_load((first_run / "dvc.yaml").read_text())["stages"]) == set(STAGES)
    return copy_project(first_run, tmp_path_factory.mktemp("pipeline") / "repo")


def test_extract_keeps_unsup_out_of_the_labeled_splits(repo):
    counts = json.loads((repo / "reports/data.json").read_text())
    assert set(counts) == {"train", "test", "unsup"}
    for name in ("train", "test"):
        assert set(counts[name]) == {"neg", "pos", "total", "movies"}
        assert counts[name]["neg"] > 0 and counts[name]["pos"] > 0
    labels = {json.loads(line)["label"] for line in (repo / "data/reviews/train.jsonl").open()}
    assert labels == {0, 1}  # train/unsup is in the archive, but it is no class
    unlabeled = [json.loads(line) for line in (repo / "data/reviews/unsup.jsonl").open()]
    assert len(unlabeled) == counts["unsup"]["total"] > 0 and {r["label"] for r in unlabeled} == {-1}


def test_vectorize_writes_token_ids_vocabulary_and_stats(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    counts = json.loads((repo / "reports/data.json").read_text())
    stats = json.loads((repo / "reports/vectorize.json").read_text())
    folder = repo / "data/vectorized"
    sizes = {}
    for split in ("train", "validation", "test", "unlabeled"):
        x, y, _ = load_split(folder, split)
        assert x.dtype == np.int32
        assert x.shape[1] == params["sequence_length"]
        assert x.max() < stats["vocabulary_size"]
        assert set(np.unique(y)) == ({-1} if split == "unlabeled" else {0, 1})
        with np.load(folder / f"{split}.npz") as data:  # stored without padding, in small ids
            assert data["tokens"].dtype == np.uint8  # max_features 200
            assert data["tokens"].size == (x != 0).sum()
        sizes[split] = len(y)
    assert sizes["train"] + sizes["validation"] == counts["train"]["total"]
    assert sizes["validation"] == round(counts["train"]["total"] * params["validation_split"])
    assert sizes["test"] == counts["test"]["total"]
    assert sizes["unlabeled"] == counts["unsup"]["total"]
    assert stats["reviews"] == sizes
    vocabulary = (folder / "vocabulary.txt").read_text().split("\n")[:-1]
    assert vocabulary[:2] == ["", "[UNK]"] and len(vocabulary) == stats["vocabulary_size"]
    assert 0 <= stats["oov_share"] < 1 and 0 <= stats["truncated_share"] <= 1


def curve(repo, fit: str, metric: str) -> list[float]:
    """One of dvclive's per-epoch files: rows of step (the epoch) and value."""
    rows = list(csv.DictReader((repo / TRAIN_CURVES / fit / f"{metric}.tsv").open(), delimiter="\t"))
    assert [int(row["step"]) for row in rows] == list(range(1, len(rows) + 1))
    return [float(row[metric]) for row in rows]


def test_train_writes_the_model_dvclive_curves_and_what_it_ran_with(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    model = repo / "data/model"
    assert sorted(p.name for p in model.iterdir()) == ["classifier.json", "fingerprint.pb", "saved_model.pb",
                                                        "variables"]
    facts = json.loads((repo / "reports/run.json").read_text())
    assert 1 <= facts["epoch_kept"] <= facts["epochs_run"] <= params["epochs"]
    summary = json.loads((repo / TRAIN_SUMMARY).read_text())
    # Once the stage has ended, the kept model's figures only: the fits' epochs are in their curves.
    assert set(summary) == {"val_accuracy", "fit_seconds"}
    for fit in ("supervised", "self_trained"):  # both fits' curves are kept
        for metric in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert len(curve(repo, fit, metric)) == facts["epochs_run"]
    assert facts["val_loss"] == curve(repo, "self_trained", "val_loss")[facts["epoch_kept"] - 1]
    assert summary["val_accuracy"] == curve(repo, "self_trained", "val_accuracy")[facts["epoch_kept"] - 1]
    stats = json.loads((repo / "reports/vectorize.json").read_text())
    assert params["pseudo_label_confidence"] > 0  # self-training on: some unlabeled reviews join
    assert 0 < facts["pseudo_labelled_reviews"] <= stats["reviews"]["unlabeled"]
    assert facts["trained_on_reviews"] == stats["reviews"]["train"] + facts["pseudo_labelled_reviews"]
    import keras, numpy, tensorflow  # noqa: E401  the versions this interpreter has
    from importlib.metadata import version
    assert facts["versions"] == {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
                                 "keras": keras.__version__, "numpy": numpy.__version__,
                                 "dvc": run(["dvc", "--version"], repo).stdout.strip(),
                                 "dvclive": version("dvclive")}


def test_evaluate_writes_metrics_roc_and_predictions(repo):
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    details = json.loads((repo / "reports/classification.json").read_text())
    assert set(metrics) == set(details) == {"test"}  # test.precision: no column of `dvc exp show` shared with a param
    assert list(metrics["test"]) == ["accuracy", "roc_auc"]  # the DVC metrics: few, for `dvc exp show`
    metrics = {**metrics["test"], **details["test"]}
    assert set(metrics) == {"loss", "accuracy", "precision", "recall", "f1", "roc_auc", "reviews"}
    assert all(0 <= metrics[k] <= 1 for k in ("accuracy", "precision", "recall", "f1", "roc_auc"))
    counts = json.loads((repo / "reports/data.json").read_text())
    predictions = (repo / "reports/predictions.csv").read_text().splitlines()
    assert predictions[0] == "id,actual,predicted,probability"
    assert len(predictions) - 1 == metrics["reviews"] == counts["test"]["total"]
    confusion = (repo / "reports/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and confusion[1:] == sorted(confusion[1:])
    assert sorted(confusion[1:]) == sorted(",".join(row.split(",")[1:3]) for row in predictions[1:])
    roc = (repo / "reports/roc.csv").read_text().splitlines()
    assert roc[0] == "fpr,tpr,threshold" and roc[1].startswith("0.0,0.0") and roc[-1].startswith("1.0,1.0")


def test_plots_renders_pngs_and_dvc_reads_them(repo):
    for name in ("training_curves", "confusion_matrix", "roc_curve"):
        assert (repo / f"reports/figures/{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run(["dvc", "plots", "show", "--json"], repo)
    shown = result.stdout
    for name in (*CURVES, "ROC", "Confusion matrix", "reports/figures/roc_curve.png"):
        assert name in shown


def test_second_repro_runs_nothing(repo):
    result = run(["dvc", "repro"], repo)
    assert ran(result.stdout) == set(), result.stdout
    assert run(["dvc", "status"], repo).stdout.strip() == "Data and pipelines are up to date."


def changed_stages(repo) -> set[str]:
    return set(json.loads(run(["dvc", "status", "--json"], repo).stdout))


@pytest.mark.parametrize(("module", "stages"), [
    ("src/imdb_sentiment/plots/figures.py", {"plots"}),  # a restyled figure: not a retrained model
    ("src/imdb_sentiment/predict.py", set()),  # served, never used by a stage
    ("src/imdb_sentiment/evaluation/metrics.py", {"evaluate"}),
    ("src/imdb_sentiment/model/attention.py", {"pretrain", "train", "evaluate", "plots"}),
])
def test_a_code_change_reruns_only_the_stages_that_import_it(repo, module, stages):
    path = repo / module
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        assert changed_stages(repo) == stages
    finally:
        path.write_text(original)
    assert changed_stages(repo) == set()


def test_a_teammate_pulls_every_output_from_a_shared_remote(repo, tmp_path):
    """Repo A pushes to a folder remote; a fresh clone B pulls: clean status, nothing to run,
    and the pulled model classifies reviews."""
    run(["dvc", "remote", "add", "--default", "shared", str(tmp_path / "remote")], repo)
    run(["git", "commit", "-qam", "shared remote"], repo)
    run(["dvc", "push"], repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    assert run(["dvc", "status"], clone).stdout.strip() == "Data and pipelines are up to date."
    assert ran(run(["dvc", "repro"], clone).stdout) == set()
    # From a folder inside the clone, without --model: the clone's model
    result = run(["predict", "--json", "A wonderful, moving film."], clone / "reports")
    assert json.loads(result.stdout)["label"] in ("positive", "negative")


def test_a_teammate_gets_the_model_alone(repo, tmp_path):
    """The README's two ways: `dvc pull data/model` in a clone, and `dvc artifacts get` of a
    registered version (a GTO tag) from the repository, without cloning it."""
    run(["dvc", "remote", "add", "--default", "--force", "shared", str(tmp_path / "remote")], repo)
    run(["git", "commit", "-qam", "shared remote"], repo)
    run(["dvc", "push"], repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull", "data/model"], clone)
    assert (clone / "data/model/saved_model.pb").is_file() and not (clone / "data/vectorized").exists()
    run(["git", "tag", "-a", "imdb-sentiment@v1.0.0", "-m", "Registering artifact imdb-sentiment version v1.0.0"], repo)
    run(["dvc", "artifacts", "get", str(repo), "imdb-sentiment", "--rev", "v1.0.0", "-o", "model"], tmp_path)
    result = run(["predict", "--json", "--model", "model", "A wonderful, moving film."], tmp_path)
    assert json.loads(result.stdout)["label"] in ("positive", "negative")
    run(["git", "tag", "-d", "imdb-sentiment@v1.0.0"], repo)


def restore_last_good_outputs(repo) -> None:
    """The README's command for after a failed run."""
    assert "imdb-restore: back to" in run(["imdb-restore"], repo).stdout
    assert run(["dvc", "status"], repo).stdout.strip() == "Data and pipelines are up to date."


BAD_PARAMS = [
    ("num_heads=3", "validate: error: params.yaml: embed_dim (8) must be divisible by num_heads (3)"),
    ("dropout=-0.1", "validate: error: params.yaml: dropout must be in [0.0, 1.0), got -0.1"),
    # The typo: DVC refuses `-S num_head=4` and suggests `+num_head=4`, which must fail too.
    ("+num_head=4", "validate: error: params.yaml: num_head is not a known parameter (did you mean 'num_heads'?)"),
    # Too big for the machine: refused before it runs, not killed by the kernel.
    ("nb_buckets=4000000000", "validate: error: params.yaml: the train stage would need about "),
]


def test_bad_params_fail_before_any_output_is_removed(repo):
    """Each bad value in turn (params.yaml put back between them, as a failed run leaves its
    values there): validate fails with its message and every output is as it was."""
    restore_last_good_outputs(repo)
    outputs = ["data/model/variables/variables.data-00000-of-00001", TRAIN_SUMMARY,
               f"{TRAIN_CURVES}/supervised/loss.tsv", "reports/metrics.json"]
    before = {path: (repo / path).read_bytes() for path in outputs}
    good_params = (repo / "params.yaml").read_text()
    for override, message in BAD_PARAMS:
        result = run(["dvc", "exp", "run", "-S", override], repo, check=False)
        assert result.returncode != 0, override
        assert message in result.stderr, result.stderr
        stage_lines = [line for line in result.stderr.splitlines() if line.startswith("validate: ")]
        assert stage_lines[-1].startswith("validate: params.yaml still holds the values this run was given; "
                                          "`imdb-restore` puts back"), result.stderr
        assert ran(result.stdout) == {"validate"}, override
        assert {path: (repo / path).read_bytes() for path in outputs} == before, override
        (repo / "params.yaml").write_text(good_params)
    restore_last_good_outputs(repo)


KILL_HOOK = '''
import os, signal, sys
# Test hook: SIGKILL the stage named by KILL_STAGE at its first os.replace, i.e. when all its
# work is written to temporaries and nothing is in place yet: the worst moment to die.
if os.environ.get("KILL_STAGE") and sys.argv[0].endswith(f"stages/{os.environ['KILL_STAGE']}.py"):
    os.replace = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
'''


def kill_stage_when(repo, stage: str, marker: str) -> str:
    """Run the stage again; when ``marker`` appears in its output, SIGKILL the stage's process."""
    dvc = subprocess.Popen(["dvc", "repro", "--force", "--single-item", stage], cwd=repo, env=command_env(),
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = []
    for line in dvc.stdout:
        output.append(line)
        if marker in line:
            for child in psutil.Process(dvc.pid).children(recursive=True):
                if f"stages/{stage}.py" in " ".join(child.cmdline()):
                    child.kill()
            break
    output.append(dvc.communicate(timeout=120)[0])
    assert dvc.returncode != 0
    return "".join(output)


def test_a_killed_stage_leaves_no_output_and_imdb_restore_brings_the_last_good_ones_back(first_run, tmp_path):
    """In a copy of the project after its first run, run each stage that writes data again and
    SIGKILL it (validate's marker and an off pretrain's one small file go through the same atomic
    writes): nothing half-written remains at its outputs. Last stage first, so that each finds
    its inputs; then `imdb-restore` puts back every last good output from the cache, byte for
    byte. (That a run from scratch gives the same outputs: tests/test_newcomer.py.)"""
    crashed = copy_project(first_run, tmp_path / "crashed")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_HOOK)
    stages = yaml.safe_load((crashed / "dvc.yaml").read_text())["stages"]
    last_good = {path: path.read_bytes() for path in (crashed / "reports").rglob("*") if path.is_file()}
    for stage in (stage for stage in reversed(STAGES) if stage not in ("validate", "pretrain")):
        if stage == "train":
            output = kill_stage_when(crashed, "train", "Epoch 2/")
            assert "Epoch 2/" in output and not (crashed / "data/model").exists(), output
        result = run(["dvc", "repro", "--force", "--single-item", stage], crashed, check=False,
                     env={"KILL_STAGE": stage, "PYTHONPATH": str(hook)})
        assert result.returncode != 0 and f"Running stage '{stage}'" in result.stdout, result.stdout
        outs = [next(iter(o)) if isinstance(o, dict) else o
                for key in ("outs", "metrics", "plots") for o in stages[stage].get(key, [])]
        if stage == "train":  # dvclive's log is written as training goes: only whole epochs, no result
            summary = json.loads((crashed / TRAIN_SUMMARY).read_text())
            assert "val_accuracy" not in summary and summary["supervised"]["loss"] > 0, summary
            outs = [out for out in outs if not out.startswith("reports/train/")]
        for out in outs:
            assert not (crashed / out).exists(), f"{stage} killed, yet {out} exists"
    restore_last_good_outputs(crashed)
    assert {path: path.read_bytes() for path in last_good} == last_good
    assert list((crashed / "reports").glob(".tmp-*"))  # killed at the rename: the temporaries stay, ...
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], crashed).stdout
    assert status == "", status  # ... out of git's way until the stage's next run removes them


def test_a_fresh_clone_runs_any_stage_first_and_diffs_committed_plots(repo, tmp_path, tiny_archive):
    """A clone with an empty cache and no remote: an experiment up to one stage, then a partial
    repro, work; `dvc plots diff` draws HEAD's committed curves and figures beside the
    workspace's and leaves nothing untracked for git."""
    restore_last_good_outputs(repo)
    clone = tmp_path / "fresh"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    result = run(["dvc", "exp", "run", "-S", f"data.url={tiny_archive}", "-S", f"data.sha256={sha256(tiny_archive)}",
                  "vectorize"], clone)
    assert ran(result.stdout) == {"validate", "download", "extract", "vectorize"}, result.stdout
    # the pretrain stage's output (no weights at the defaults) is not in the empty cache either
    assert ran(run(["dvc", "repro", "train"], clone).stdout) == {"pretrain", "train"}
    result = run(["dvc", "plots", "diff", "HEAD", "--json"], clone)
    plots = json.loads(result.stdout)
    # Every plot's data is committed: nothing is missing without a remote.
    assert not plots.get("errors"), plots["errors"]
    assert "warning" not in result.stderr.lower(), result.stderr
    for name in (*CURVES, "ROC", "Confusion matrix"):
        assert "HEAD" in plots["data"][name][0]["revisions"], name
    figure = plots["data"]["reports/figures/training_curves.png"]
    assert ["HEAD"] in [entry["revisions"] for entry in figure]
    run(["dvc", "plots", "diff", "HEAD"], clone)  # the HTML, into dvc_plots/
    assert (clone / "dvc_plots/index.html").is_file()
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], clone).stdout
    assert "??" not in status, status
