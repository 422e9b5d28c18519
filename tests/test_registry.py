"""Every method of the registry is wired everywhere: a method added to one place only fails here.

The registry (:mod:`dataworth.methods.registry`) is the one list of methods; the study, the plan,
``evaluate``, the report and the command line read it. These tests check each entry against each
of them, and run each method that values points on a small real task through ``evaluate``'s own
adapter.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pandas as pd
import pytest

import dataworth as dw
from dataworth.cli import COMMANDS
from dataworth.cli.options import build_config
from dataworth.engine.utility import Utility
from dataworth.evaluate.runner import METHODS, Settings, resolve_methods
from dataworth.methods.registry import REGISTRY, budget_label, config_names, method, names
from dataworth.report.sections.outline import SECTIONS
from dataworth.study import DEFAULT_STEPS, EXTRA_STEPS
from dataworth.study.config import StudyConfig
from dataworth.study.cost.plan import plan_table
from dataworth.study.cost.result import CostResult

SPECS = {spec.name: spec for spec in REGISTRY}


def test_names_are_unique_and_looked_up() -> None:
    assert len(SPECS) == len(REGISTRY)
    assert names() == list(SPECS)
    for name, spec in SPECS.items():
        assert method(name) is spec
        assert callable(spec.function) and spec.function.__module__.startswith("dataworth.methods")


@pytest.mark.parametrize("name", list(SPECS))
def test_the_study_knows_it(name: str) -> None:
    spec = SPECS[name]
    steps = {step.name for step in [*DEFAULT_STEPS, *EXTRA_STEPS]}
    assert spec.study_steps, f"{name}: no study step runs it"
    assert set(spec.study_steps) <= steps, f"{name}: unknown study steps"


@pytest.mark.parametrize("name", list(SPECS))
def test_evaluate_runs_it_when_it_values_points(name: str) -> None:
    spec = SPECS[name]
    if spec.values == "points":
        assert spec.evaluate is not None and name in METHODS
        assert METHODS[name].label == spec.label and METHODS[name].note == spec.note
    else:
        assert spec.evaluate is None and name not in METHODS
    # The names evaluate accepts are the registry's, in its order.
    assert resolve_methods(None) == [s.name for s in REGISTRY if s.evaluate is not None]


@pytest.mark.parametrize("name", list(SPECS))
def test_the_report_has_a_place_for_it(name: str) -> None:
    assert SPECS[name].report_section in SECTIONS


@pytest.mark.parametrize("name", list(SPECS))
def test_its_command_exists(name: str) -> None:
    spec = SPECS[name]
    commands = dict(COMMANDS)
    if spec.command is not None:
        assert spec.command in commands
    flags = {
        parameter for _, command in COMMANDS for parameter in inspect.signature(command).parameters
    }
    for option in spec.options:
        assert option.flag is None or option.flag in flags, f"{name}: --{option.flag}?"


@pytest.mark.parametrize("name", list(SPECS))
def test_its_options_are_the_studys_with_the_same_defaults(name: str) -> None:
    defaults = {f.name: f for f in dataclasses.fields(StudyConfig)}
    for option in SPECS[name].options:
        takes = inspect.signature(option.to or SPECS[name].function).parameters
        assert option.arg is None or option.arg in takes, f"{name}: {option.arg} is no argument"
        if option.config is None:
            continue
        field = defaults[option.config]
        default = (
            field.default_factory()
            if field.default_factory is not dataclasses.MISSING
            else field.default
        )
        assert option.default == default, f"{name}: {option.config} defaults differ"


def test_flags_map_to_their_config_fields() -> None:
    mapping = config_names()
    assert mapping["tol"] == "tmc_tol" and mapping["neighbours"] == "knn_k"
    assert set(mapping.values()) <= {f.name for f in dataclasses.fields(StudyConfig)}
    config = build_config(tol=0.05, neighbours=3, estimators=7, method="newton", explain="metric")
    assert (config.tmc_tol, config.knn_k, config.oob_estimators) == (0.05, 3, 7)
    assert config.influence_method == "newton"


def test_budget_parts_have_labels() -> None:
    for spec in REGISTRY:
        for part, label in spec.budget:
            assert budget_label(part) == label
    with pytest.raises(KeyError):
        budget_label("no_such_method")


def _cost(n: int, paths: dict) -> CostResult:
    times = pd.DataFrame(
        {
            "model": ["logreg"] * 2,
            "fraction": [0.5, 1.0],
            "rows": [n // 2, n],
            "seconds": [0.01, 0.02],
            "n_timed": [1, 1],
            "note": ["", ""],
        }
    )
    return CostResult(times, n_train=n, n_classes=2, valuation_model="logreg", paths=paths)


def test_the_plan_costs_every_method() -> None:
    n = 400
    paths = {
        "loo_one_out": {"per_subset": 0.01, "full_fit_seconds": 0.02},
        "tmc_chain": {"per_prefix": 0.001, "fitted_share": 0.5},
        "ame_estimation": {"players": 100, "subsets": 100, "seconds": 0.5},
        "knn_shapley": {"per_test_row": 0.001, "n_test": 100},
        "data_oob": {"models": 4, "per_model": 0.01},
        "influence": {"seconds": 0.1},
    }
    for timed in (paths, {}):
        plan = plan_table(_cost(n, timed), budget_seconds=60.0, ame_subsets=1000, oob_estimators=50)
        labels = [
            row.label.format(ame_subsets=1000, oob_estimators=50)
            for spec in REGISTRY
            for row in spec.plan
            if timed or not row.needs_path
        ]
        assert plan["method"].tolist() == labels
        assert (
            np.isfinite(plan["estimated_seconds"]).all() and (plan["estimated_seconds"] >= 0).all()
        )
    # A method without plan rows still has a refit count, which the seconds of a fit prices.
    for spec in REGISTRY:
        options = {"n_subsets": 500, "n_estimators": 50, "permutations": 3, **spec.defaults()}
        options = {k: (500 if k == "n_subsets" and v is None else v) for k, v in options.items()}
        fits = spec.fits(n, options)
        assert isinstance(fits, int) and fits >= 0


@pytest.fixture(scope="module")
def task():
    return dw.load_dataset("breast_cancer", rows=70, train_size=40, flip=0.1, seed=0)


@pytest.mark.parametrize("name", [s.name for s in REGISTRY if s.evaluate is not None])
def test_evaluate_adapter_values_every_training_row(task, name: str) -> None:
    settings = Settings(permutations=2, n_subsets=80, n_estimators=10, knn_k=3, seed=0)
    with Utility(task, learner="logreg", metric="neg_log_loss", seed=0) as u:
        result = METHODS[name].run(u, task, settings)
    assert len(result) == task.n_train
    assert np.isfinite(result.values).all()
    assert sorted(map(str, result.player_ids)) == sorted(map(str, task.train_ids))


def test_arguments_come_from_the_config_under_the_methods_names() -> None:
    config = StudyConfig(tmc_tol=0.05, knn_k=3, ame_fdr=0.2, beta_alpha=2.0)
    assert method("tmc_shapley").arguments(config) == {"permutations": 10, "tol": 0.05}
    assert method("knn_shapley").arguments(config) == {"k": 3}
    assert method("ame").arguments(config, "target") == {"n_subsets": 4000, "k": None, "fdr": 0.2}
    assert method("beta_shapley").arguments(config)["alpha"] == 2.0
    # The groups' options go to the group builder, not to leave-group-out itself.
    assert method("leave_group_out").arguments(config) == {}


def test_the_extra_study_steps_of_the_registry_run(tmp_path) -> None:
    from dataworth.study import run_study, steps_named

    config = StudyConfig(rows=70, train_size=40, ame_subsets=60, ame_rows=0)
    steps = steps_named("data", "banzhaf", "ame_shapley", "beta_shapley")
    outcome = run_study(config, steps=steps, write=False, root=tmp_path)
    found = outcome.context.results["methods"]
    assert set(found) == {"banzhaf", "ame_shapley", "beta_shapley"}
    for result in found.values():
        assert len(result) == 40 and np.isfinite(result.values).all()
        assert result.params["n_subsets"] == 60


def test_a_method_that_needs_no_learner_runs_without_a_utility(task) -> None:
    settings = Settings(n_estimators=10, knn_k=3, seed=0)
    free = [s for s in REGISTRY if not s.needs_learner]
    assert {s.name for s in free} == {"knn_shapley", "data_oob"}
    for spec in free:
        assert len(spec.evaluate(None, task, settings)) == task.n_train


def test_each_method_command_says_its_registry_summary_first() -> None:
    import typer

    from dataworth.cli import app

    commands = typer.main.get_command(app).commands
    for spec in REGISTRY:
        assert spec.summary and "\n" not in spec.summary, spec.name
        if spec.command is not None:
            assert commands[spec.command].help.split("\n\n")[0] == spec.summary


def test_the_study_help_names_every_method_a_default_study_runs() -> None:
    import typer

    from dataworth.cli import app
    from dataworth.study import study_outline

    run = {s.name for s in DEFAULT_STEPS}
    expected = [spec.label for spec in REGISTRY if run & set(spec.study_steps)]
    outline = study_outline()
    assert all(label in outline for label in expected)
    # A method added to an extra step only is not in a default study's outline.
    assert "Banzhaf (MSR)" not in outline
    help_text = typer.main.get_command(app).commands["study"].help
    assert help_text.startswith(f"Run the whole study ({outline})")


def test_the_readme_and_the_docs_list_what_a_study_runs_as_the_registry_does() -> None:
    from pathlib import Path

    from dataworth.study import study_outline

    root = Path(__file__).resolve().parents[1]
    sentence = f"`dataworth study` runs: {study_outline()}."
    for page in ("README.md", "docs/user_guide/study.md"):
        text = " ".join((root / page).read_text().split())
        assert sentence in text, f"{page} should say: {sentence}"
