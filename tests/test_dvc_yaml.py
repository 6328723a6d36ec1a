"""dvc.yaml against the code: every stage's deps cover every module it imports (directly or
through the package) by its layer's folder, name no folder it does not import, and its params are
keys that exist."""

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
# What every stage runs through but what decides no output: the package's top-level modules (the
# one-line error, the atomic writes, the params loader: the values themselves are each stage's
# `params`; `validate` depends on the loader).
INFRASTRUCTURE = {f"src/imdb_sentiment/{name}.py" for name in ("__init__", "cli", "errors", "outputs", "params")}
LAYERS = {str(p.relative_to(PROJECT)) for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


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
                relative = name.removeprefix("imdb_sentiment").strip(".").replace(".", "/")
                for module in (PACKAGE / f"{relative}.py", PACKAGE / relative / "__init__.py"):
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


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_deps_name_only_the_layers_it_imports(stage):
    """So that a change to one layer re-runs the stages that use it and no others: the reports
    code re-runs plots alone, predict.py (no layer, no stage) nothing."""
    code_deps = {dep for dep in STAGES[stage]["deps"] if dep.startswith("src/")}
    imported = {str(module.relative_to(PROJECT)) for module in package_imports(PROJECT / "stages" / f"{stage}.py")}
    layers = {str(Path(module).parent) for module in imported} & LAYERS
    assert code_deps - INFRASTRUCTURE == layers, f"{stage}: deps {sorted(code_deps)}, imports layers {sorted(layers)}"


def test_the_package_is_split_into_layers_and_predict_is_in_none():
    assert {Path(layer).name for layer in LAYERS} == {"dataset", "features", "model", "training", "evaluation", "plots"}
    assert all("src/imdb_sentiment/plots" not in STAGES[stage]["deps"] for stage in STAGES if stage != "plots")
    assert not any(dep.endswith("predict.py") for stage in STAGES.values() for dep in stage["deps"])


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
    assert STAGES["validate"]["params"] == [{"params.yaml": None}]  # every key of the file


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_params_are_known_keys(stage):
    known = {f.name for f in fields(Params)} | {f"data.{f.name}" for f in fields(DataParams)}
    keys = {key for key in STAGES[stage].get("params", []) if isinstance(key, str)}  # {file: None}: all of it
    assert keys <= known
