"""Shared fixtures: a copy of the project in a temporary git repo, ready for `dvc repro`."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
TRAIN_SUMMARY = "reports/train/metrics.json"  # dvclive's summary of the train stage: a DVC metric
PROJECT_FILES = ("dvc.yaml", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/.gitignore", "stages", "src")

# Small enough for CI's two cores; the layer keeps its shape (embed_dim split over heads).
# The high learning rate moves the attention away from uniform within a few steps: with
# uniform attention the number of heads would not change the model's output at all.
TINY_PARAMS = {
    "learning_rate": 0.02,
    "region_filters": 8,
    "pretrain_epochs": 2,
    "max_features": 200,
    "sequence_length": 40,
    "embedding_dim": 8,
    "embed_dim": 8,
    "num_heads": 2,
    "batch_size": 8,
    "epochs": 3,
    "bigram_buckets": 1000,
    "nb_buckets": 4096,
    "validation_split": 0.25,  # 4 of the 16 training reviews
    "pseudo_label_confidence": 0.5,  # every unlabeled review joins: the tiny model is seldom sure of any
    "attention_dropout": 0.1,  # so that two repos' identical outputs (tests/test_pipeline.py) cover its draws too
}


def committed_params_text() -> str:
    """params.yaml as committed, not as a user's runs left it (a local data.url, the values of a
    failed experiment): what the tests check and copy. Outside a git checkout, the file."""
    result = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=PROJECT, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else (PROJECT / "params.yaml").read_text(encoding="utf-8")


def command_env(extra: dict | None = None) -> dict:
    """The environment for commands: this interpreter's bin/ (dvc, python, predict) first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **(extra or {})}


def run(args: list[str], cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=command_env(env), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def ran(output: str) -> set[str]:
    """The stages a `dvc repro` or `dvc exp run` printed as running."""
    return set(re.findall(r"Running stage '([a-z]+)'", output))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_project(repo: Path, archive: Path, **overrides) -> Path:
    """Copy the project into ``repo``, point data.url at ``archive``, commit it; return ``repo``."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source, target = PROJECT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load(committed_params_text())
    params["data"] = {"url": str(archive), "sha256": sha256(archive)}
    params.update(TINY_PARAMS, **overrides)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "test@example.com"], repo)
    run(["git", "config", "user.name", "test"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "project"], repo)
    return repo


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config) -> int:
    """`--numprocesses=auto` (pyproject.toml): a worker a core this process may run on (its
    affinity, which a container narrows; xdist's own count is the host's), and at most one per
    2 GiB of available memory, as each worker imports TensorFlow and runs stages that do too."""
    from imdb_sentiment.training.memory import GIB, available_bytes

    cores = len(os.sched_getaffinity(0))
    memory = available_bytes()
    return max(1, min(cores, cores if memory is None else memory // (2 * GIB)))


def pytest_collection_modifyitems(items):
    """The end-to-end tests first: spread over the workers a file at a time, the longest files
    then start at once instead of one of them running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def first_run(tmp_path_factory, tiny_archive) -> Path:
    """A project after its first `dvc repro` of every stage, committed; never changed: tests take
    a copy of it (:func:`copy_project`) to spare each module a first run of its own."""
    repo = make_project(tmp_path_factory.mktemp("first-run") / "repo", tiny_archive)
    result = run(["dvc", "repro"], repo)
    assert ran(result.stdout) == set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]), result.stdout
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "first run"], repo)
    return repo


def copy_project(source: Path, target: Path) -> Path:
    """A copy of the repo at ``source`` (git history, DVC cache, outputs) at ``target``."""
    shutil.copytree(source, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory) -> Path:
    from archives import make_archive

    path = tmp_path_factory.mktemp("archive") / "aclImdb_v1.tar.gz"
    make_archive(path)
    return path
