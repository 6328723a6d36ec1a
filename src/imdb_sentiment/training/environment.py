"""The versions a run used, recorded beside its results so that a figure can be reproduced with
the same software (requirements.lock pins them all; this says which ones actually ran)."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("tensorflow", "keras", "numpy", "dvc", "dvclive")


def _version(package: str) -> str:
    for name in (package, f"{package}-cpu"):  # tensorflow-cpu installs the module tensorflow
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> dict[str, str]:
    """Python's version and each of :data:`PACKAGES`' installed versions."""
    return {"python": platform.python_version(), **{package: _version(package) for package in PACKAGES}}
