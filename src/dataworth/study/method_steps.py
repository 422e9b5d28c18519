"""The study's steps for the methods beyond the course's parts: KNN-Shapley, Beta Shapley, Data
Banzhaf, AME-Shapley, Data-OOB and influence functions, each on its own, and the ``methods`` step
that runs the cheap ones and compares every method the study valued.

Which methods the ``methods`` step runs, and what each is called in its comparison, come from the
method registry (:mod:`dataworth.methods.registry`). The steps share the utility, the budget and
the writing helpers of :mod:`dataworth.study.steps`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from dataworth.errors import DataworthError
from dataworth.methods.ame import ame_shapley, banzhaf
from dataworth.methods.compare import compare_values
from dataworth.methods.influence import influence
from dataworth.methods.knn.shapley import knn_shapley
from dataworth.methods.registry import REGISTRY, method
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley.beta import beta_shapley
from dataworth.methods.trees.oob import data_oob
from dataworth.study.steps import (
    _progress,
    _save,
    _skipped,
    _spending,
    every_point_loo,
    parse_target,
    study_utility,
)

if TYPE_CHECKING:
    from dataworth.study.context import StudyContext


def _one_target(result):
    """The methods return a dict for several test rows; the steps explain one target."""
    return next(iter(result.values())) if isinstance(result, dict) else result


def _single_row(task, target: str) -> int | None:
    parsed = parse_target(task, target)
    if parsed == "metric":
        return None
    if parsed == "all-test" or len(parsed) != 1:
        raise DataworthError("Give one test row here (test:ID); all-test is for AME.")
    return parsed[0]


def _method_step(ctx: StudyContext, name: str, compute) -> None:
    from dataworth.report.figures import save_figure
    from dataworth.report.valuation_figures import value_distribution_figure

    result = _one_target(compute())
    ctx.results.setdefault("methods", {})[name] = result
    _save(ctx, result, name)
    ctx.save_figures(
        lambda folder: {name: save_figure(value_distribution_figure(result), folder, name)}
    )


def knn_shapley_step(ctx: StudyContext) -> None:
    """Exact KNN-Shapley (Jia et al., VLDB 2019): no model is fitted."""
    task, config = ctx.require_task(), ctx.config
    row = _single_row(task, config.ame_target)
    _method_step(
        ctx,
        "knn_shapley",
        lambda: knn_shapley(
            task, **method("knn_shapley").arguments(config), test_rows=row, n_jobs=config.n_jobs
        ),
    )


def beta_shapley_step(ctx: StudyContext) -> None:
    """Beta Shapley (Kwon and Zou, AISTATS 2022) through the AME sampler."""
    config = ctx.config
    _method_step(
        ctx,
        "beta_shapley",
        lambda: beta_shapley(
            study_utility(ctx),
            **method("beta_shapley").arguments(config),
            seed=config.seed,
            progress=_progress(ctx, "Beta Shapley"),
        ),
    )


def banzhaf_step(ctx: StudyContext) -> None:
    """Data Banzhaf (Wang and Jia, AISTATS 2023) by maximum sample reuse of random subsets."""
    from dataworth.methods.sampler import subsets_for

    config, u = ctx.config, study_utility(ctx)
    # Banzhaf takes a number of subsets; sizing by k follows AME's rule m = 8 k log2(n).
    subsets = config.ame_subsets or subsets_for(int(config.ame_k or 10), u.n_players)
    _method_step(
        ctx,
        "banzhaf",
        lambda: banzhaf(
            u,
            n_subsets=int(subsets),
            seed=config.seed,
            progress=_progress(ctx, "Banzhaf"),
        ),
    )


def ame_shapley_step(ctx: StudyContext) -> None:
    """AME-Shapley: AME's regression with Shapley's law of subset sizes (Lin et al., 2022)."""
    config = ctx.config
    _method_step(
        ctx,
        "ame_shapley",
        lambda: ame_shapley(
            study_utility(ctx),
            n_subsets=config.ame_subsets,
            k=config.ame_k,
            seed=config.seed,
            progress=_progress(ctx, "AME-Shapley"),
        ),
    )


def data_oob_step(ctx: StudyContext) -> None:
    """Data-OOB (Kwon and Zou, ICML 2023) with bagged decision trees, as in the paper."""
    config = ctx.config
    _method_step(
        ctx,
        "data_oob",
        lambda: data_oob(
            ctx.require_task(),
            **method("data_oob").arguments(config),
            seed=config.seed,
            n_jobs=config.n_jobs,
        ),
    )


def influence_step(ctx: StudyContext) -> None:
    """Influence-function estimate of LOO (Koh and Liang, ICML 2017) for logistic regression."""
    u, config = study_utility(ctx), ctx.config
    row = _single_row(ctx.require_task(), config.ame_target)
    _method_step(
        ctx,
        "influence",
        lambda: influence(
            u, target="metric" if row is None else row, **method("influence").arguments(config)
        ),
    )


def _compared_as(name: str) -> str:
    """A result's row in ``method_comparison.csv``: its method's name there, from the registry."""
    for spec in REGISTRY:
        if name == spec.name or name in (part for part, _ in spec.budget):
            return spec.compared_as or name
    return name


def methods_step(ctx: StudyContext) -> None:
    """Run the methods that value every row at a cost known in advance, before the open-ended ones.

    Exact LOO of every point (when the budget planned it), KNN-Shapley, Data-OOB and influence
    functions each value every training row when their estimate fits; they run before
    TMC-Shapley and AME, which stop at their share of what is left, so a table too large for
    everything loses permutations and subsets, not whole methods.
    """
    u, task, config = study_utility(ctx), ctx.require_task(), ctx.config
    if ctx.results.get("budget") is not None:
        every_point_loo(ctx, u, wanted=True)
    found: dict[str, ValuationResult] = ctx.results.setdefault("methods", {})
    how = {
        "knn_shapley": lambda: _one_target(
            knn_shapley(task, **method("knn_shapley").arguments(config), n_jobs=config.n_jobs)
        ),
        "data_oob": lambda: data_oob(
            task, **method("data_oob").arguments(config), seed=config.seed, n_jobs=config.n_jobs
        ),
        "influence": lambda: influence(u, **method("influence").arguments(config)),
    }
    learner = getattr(u.learner, "name", "")
    compute = {
        spec.name: how[spec.name]
        for spec in REGISTRY
        if spec.name in how
        and "methods" in spec.study_steps
        and spec.applies(learner, u.metric.name)
    }
    for name in how.keys() - compute.keys():
        if ctx.results.get("budget") is not None and name in ctx.results["budget"].methods:
            _skipped(ctx, name)  # the budget's note says why it does not apply
    for name, run in compute.items():
        if _skipped(ctx, name):
            continue
        with _spending(ctx, name) as outcome:
            found[name] = run()
            outcome["valued"] = f"all {len(found[name])} rows"
    for name in compute:
        if name in found:
            _save(ctx, found[name], name)
    if "compare" not in ctx.step_names:
        compare_step(ctx)


def compare_step(ctx: StudyContext) -> None:
    """Compare every method the study valued with TMC-Shapley and exact LOO of all points.

    Writes ``method_comparison.csv``: the Spearman and Kendall correlation of each method's values
    with TMC-Shapley and with exact LOO of all points, over the points both valued.
    """
    found: dict[str, ValuationResult] = ctx.results.get("methods", {})
    everything = {
        **{k: ctx.results[k] for k in ("loo_all", "tmc") if k in ctx.results},
        **found,
    }
    if not everything:
        return
    rows = []
    for name, result in everything.items():
        row = {"method": _compared_as(name), "evaluations": result.n_evaluations}
        for ref in ("tmc", "loo_all"):
            if ref in everything and ref != name:
                c = compare_values(result, everything[ref])
                row[f"spearman_{ref}"], row[f"kendall_{ref}"] = c["spearman"], c["kendall"]
        rows.append(row)
    table = pd.DataFrame(rows)
    ctx.results["method_comparison"] = table
    ctx.write_csv("method_comparison.csv", table, index=False)
