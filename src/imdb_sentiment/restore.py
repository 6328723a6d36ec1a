"""`imdb-restore`: after a failed run, put back the params and outputs of the last complete one.

    imdb-restore              # the newest experiment of the current commit, else the commit
    imdb-restore heads-4      # that experiment

A failed `dvc exp run -S key=value` leaves its values in params.yaml, and a stage that failed
has lost its outputs (DVC removes them before running it). Checking out the committed
params.yaml and dvc.lock is no way back for a user who runs from a local copy of the archive:
the commit's lock names the official download, whose outputs are not in that user's cache.
The last complete run is: the newest experiment derived from the current commit (what
`dvc exp run` saved when it last succeeded, local data.url included), restored by
`dvc exp apply`; without any, the commit itself. Either way every output comes back from DVC's
cache, nothing is recomputed, and `dvc status` is clean afterwards (checked).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from imdb_sentiment.cli import project_root
from imdb_sentiment.errors import PipelineError


def _run(args: list[str], root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=root, capture_output=True, text=True)


def _checked(args: list[str], root: Path) -> str:
    result = _run(args, root)
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise PipelineError(f"`{' '.join(args)}` failed: {detail[-1] if detail else f'exit {result.returncode}'}")
    return result.stdout


def newest_experiment(root: Path) -> str | None:
    """The name of the newest experiment whose baseline is the current commit, or None."""
    baseline = _checked(["git", "rev-parse", "HEAD"], root).strip()
    refs = _checked(["git", "for-each-ref", "--sort=-committerdate", "--format=%(refname:lstrip=4)",
                     f"refs/exps/{baseline[:2]}/{baseline[2:]}/"], root).split()
    return refs[0] if refs else None


def restore_commit(root: Path) -> None:
    """params.yaml, dvc.lock and reports/ as committed, and the outputs that lock names."""
    # A workspace experiment run leaves git's index holding the committed params.yaml with the
    # modified file's timestamps; touched, git sees the file as changed and checks it out.
    for name in ("params.yaml", "dvc.lock"):
        (root / name).touch()
    _checked(["git", "checkout", "HEAD", "--", "params.yaml", "dvc.lock", "reports"], root)
    _checked(["dvc", "checkout"], root)


def restore(root: Path, name: str | None = None) -> str:
    """Bring back experiment ``name`` (default: the newest), or the commit; return what was restored."""
    name = name or newest_experiment(root)
    if name is None:
        restore_commit(root)
        restored = "the current commit (no experiment of it was found)"
    else:
        _checked(["dvc", "exp", "apply", name], root)
        restored = f"experiment {name}"
    if _run(["dvc", "status", "--quiet"], root).returncode != 0:
        raise PipelineError(f"restored {restored}, but `dvc status` still lists changes: "
                            f"some outputs are not in the cache; run `dvc status` to see which")
    return restored


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="imdb-restore", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", nargs="?", help="experiment to restore (default: the newest "
                                                      "of the current commit; `dvc exp show` lists them)")
    args = parser.parse_args(argv)
    try:
        root = project_root(Path.cwd().resolve())
        if root is None:
            raise PipelineError("not inside the project's clone (no dvc.yaml and .dvc/ above this folder)")
        restored = restore(root, args.experiment)
    except PipelineError as exc:
        print(f"imdb-restore: error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"imdb-restore: back to {restored}: params.yaml, dvc.lock and every output; `dvc status` is clean")


if __name__ == "__main__":
    main()
