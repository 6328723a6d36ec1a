"""What every stage entry point shares: the one-line error and the exit code; and the arguments of
the benchmarks that read a trained model."""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from imdb_sentiment.errors import PipelineError

RESTORE_HINT = ("params.yaml still holds the values this run was given; `imdb-restore` puts back the "
                "params and outputs of the last complete run (README: Experiments)")
# What TensorFlow writes to stderr while it loads, before TF_CPP_MIN_LOG_LEVEL takes effect.
_START_UP_LINES = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
                             r"STDERR|I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\.")


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter on stderr: at ``TF_CPP_MIN_LOG_LEVEL`` 1 or
    more (2 unless set) its informational lines are off, but the few it writes while it loads
    come before it reads that setting. Those are dropped; anything else it writes is passed on.
    ``TF_CPP_MIN_LOG_LEVEL=0`` keeps them all. Changes nothing TensorFlow computes."""
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)  # the C++ runtime writes to the descriptor, not to sys.stderr
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not _START_UP_LINES.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def project_root(start: Path) -> Path | None:
    """The DVC project ``start`` is in (the nearest folder up with ``dvc.yaml`` and ``.dvc/``)."""
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file() and (folder / ".dvc").is_dir():
            return folder
    return None


def peak_memory_mib() -> float:
    """The most resident memory this process has used so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(name: str, main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a PipelineError becomes ``name: error: ...`` and exit status 1.
    A stage that succeeds ends its log with its peak memory (the benchmark reads that line)."""
    try:
        main()
        print(f"{name}: peak memory {peak_memory_mib():.0f} MiB")
    except PipelineError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        if "DVC_ROOT" in os.environ:  # run by DVC: as part of `dvc exp run -S ...` or `dvc repro`
            print(f"{name}: {RESTORE_HINT}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)


def trained_model_parser(description: str) -> argparse.ArgumentParser:
    """The argument parser of a script that reads a trained model and the vectorized splits:
    ``[model] [vectorized]``, by default the pipeline's ``data/model`` and ``data/vectorized``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, nargs="?", default=Path("data/model"))
    parser.add_argument("vectorized", type=Path, nargs="?", default=Path("data/vectorized"))
    return parser
