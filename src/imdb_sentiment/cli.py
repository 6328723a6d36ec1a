"""What every stage entry point shares: the one-line error and the exit code."""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Callable

from imdb_sentiment.errors import PipelineError


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up chatter out of the stage logs (set before it is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)
