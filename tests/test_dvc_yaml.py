"""dvc.yaml against the code: every stage's deps cover every module it imports (directly or
through the package), by name or by the package folder, and its params are keys that exist."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from imdb_sentiment.params import DataParams, Params

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "src" / "imdb_sentiment"
STAGES = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
# What every stage runs through but what decides no output: the one-line error, the atomic
# writes, and the params loader (the values themselves are each stage's `params`; `validate`
# depends on the loader).
INFRASTRUCTURE = {f"src/imdb_sentiment/{name}.py" for name in ("cli", "errors", "outputs", "params")}


def package_imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports, directly or through each other."""
    found, todo = set(), [path]
    while todo:
        tree = ast.parse(todo.pop().read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imdb_sentiment"):
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.startswith("imdb_sentiment")]
            for name in names:
                module = PACKAGE / (name.removeprefix("imdb_sentiment").strip(".").replace(".", "/") + ".py")
                if module.is_file() and module not in found:
                    found.add(module)
                    todo.append(module)
    return found


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_deps_list_every_module_it_imports(stage):
    script = PROJECT / "stages" / f"{stage}.py"
    deps = set(STAGES[stage]["deps"])
    assert f"stages/{stage}.py" in deps
    imported = {str(module.relative_to(PROJECT)) for module in package_imports(script)}
    covered = {module for module in imported if str(Path(module).parent) in deps}
    missing = imported - covered - deps - INFRASTRUCTURE
    assert missing == set(), f"{stage} imports modules missing from its deps"


def test_every_stage_comes_after_validate():
    """Its output is an ancestor of every stage, so bad params fail before any output is removed."""
    outputs = {}
    for name, stage in STAGES.items():
        for out in stage.get("outs", []) + stage.get("metrics", []):
            outputs[out if isinstance(out, str) else next(iter(out))] = name

    def upstream(name):
        found = set()
        for dep in STAGES[name]["deps"]:
            if dep in outputs:
                found |= {outputs[dep]} | upstream(outputs[dep])
        return found
    for name in STAGES:
        if name != "validate":
            assert "validate" in upstream(name), f"{name} does not come after validate"
    assert "params.yaml" in STAGES["validate"]["deps"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_params_are_known_keys(stage):
    known = {f.name for f in fields(Params)} | {f"data.{f.name}" for f in fields(DataParams)}
    assert set(STAGES[stage].get("params", [])) <= known
