"""Atomic writes (`imdb_sentiment.outputs`): an output appears whole or not at all, and the
temporaries a killed run left behind go with the next write of the same output."""

from __future__ import annotations

import pytest

from imdb_sentiment.outputs import atomic_path, write_text


def test_a_write_that_fails_leaves_neither_the_output_nor_a_temporary(tmp_path):
    for directory in (False, True):
        with pytest.raises(RuntimeError):
            with atomic_path(tmp_path / "out", directory=directory) as tmp:
                (tmp / "part" if directory else tmp).write_text("half")
                raise RuntimeError("failed halfway")
        assert list(tmp_path.iterdir()) == []


def test_a_killed_run_s_temporaries_go_with_the_next_write_of_that_output_only(tmp_path):
    (tmp_path / ".tmp-metrics.json.k1l2.json").write_text("half")  # as SIGKILL at the rename leaves them
    (tmp_path / ".tmp-model.a9b8").mkdir()
    (tmp_path / ".tmp-model.a9b8" / "weights").write_text("half")
    (tmp_path / ".tmp-roc.csv.c3d4.csv").write_text("another output's, whose stage has not run again")
    write_text(tmp_path / "metrics.json", "{}")
    with atomic_path(tmp_path / "model", directory=True) as tmp:
        (tmp / "weights").write_text("whole")
    assert sorted(path.name for path in tmp_path.iterdir()) == [".tmp-roc.csv.c3d4.csv", "metrics.json", "model"]
    assert (tmp_path / "model" / "weights").read_text() == "whole"
