"""Crash-safe outputs: a stage writes into a hidden sibling and renames it into place.

A stage that fails or is killed therefore leaves either the complete output or none at the
output path, never a half-written file that a later stage (or DVC's cache) could pick up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove_leftovers(path: Path) -> None:
    """Delete temporaries that a killed earlier run of the same output left behind."""
    for stale in path.parent.glob(f"{_PREFIX}{path.name}.*"):
        _remove(stale)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    The temporary keeps the output's suffix (Keras insists on ``.keras``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    prefix, suffix = f"{_PREFIX}{path.name}.", path.suffix
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    tmp.chmod((0o777 if directory else 0o666) & ~_umask())  # mkstemp's 0600 is for secrets
    try:
        yield tmp
        if directory:
            _remove(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: object) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
