"""What every stage shares: TensorFlow imported without its start-up lines, unless asked for."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

START_UP = ("absl::InitializeLog", "oneDNN custom operations are on")
CODE = ("from imdb_sentiment import cli; cli.quiet_tensorflow(); import tensorflow as tf; "
        "import sys; print('after', file=sys.stderr); print(float(tf.reduce_sum(tf.ones(3))))")


def stderr_of(level: str | None) -> tuple[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    result = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


@pytest.mark.parametrize("level", [None, ""])  # unset, or set to nothing
def test_tensorflow_s_start_up_lines_are_dropped_and_the_rest_kept(level):
    stdout, stderr = stderr_of(level)
    assert stdout == "3.0\n"
    assert stderr == "after\n"  # what is written after the import passes as ever


def test_log_level_0_keeps_them():
    """TensorFlow's informational start-up lines differ by CPU (oneDNN's where it is on, the CPU
    feature guard's elsewhere); the absl line comes on every machine."""
    _, stderr = stderr_of("0")
    assert START_UP[0] in stderr, stderr
    assert any(line in stderr for line in (START_UP[1], "cpu_feature_guard")), stderr
