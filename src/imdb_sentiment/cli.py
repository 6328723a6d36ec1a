"""What every stage entry point shares: the one-line error and the exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from imdb_sentiment.errors import PipelineError


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up chatter out of the stage logs (set before it is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run(name: str, main: Callable[[], None]) -> None:
    """Run a stage's ``main``; a PipelineError becomes ``name: error: ...`` and exit status 1."""
    try:
        main()
    except PipelineError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)
