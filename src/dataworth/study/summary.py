"""``summary.md``: a Markdown summary of whatever the steps of a study produced."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dataworth.methods.ame.scale import ame_plan_lines
from dataworth.methods.result import ValuationResult
from dataworth.report.sections.budget import budget_frame, budget_sentence
from dataworth.study.baseline import BaselineResult
from dataworth.study.context import StudyContext
from dataworth.study.cost.timing import CostResult
from dataworth.study.steps import LOO_SHOWN, _ame_title, ame_table


def summary_markdown(ctx: StudyContext) -> str:
    """A Markdown summary of whatever the steps produced."""
    lines = [f"# dataworth study: {ctx.config.source_label}", ""]
    data = ctx.results.get("data")
    if data:
        lines += ["## Data", ""] + [f"- {s}" for s in data["summary"]] + [""]
        checks = [f"- {c['severity']}: {c['message']}" for c in data.get("checks", [])]
        lines += ["## Data checks", "", *(checks or ["- No problems found."]), ""]
    baseline: BaselineResult | None = ctx.results.get("baseline")
    if baseline is not None:
        lines += ["## Baseline models", "", _markdown_table(baseline.metrics.round(4)), ""]
        lines += [
            f"Confusion matrix of `{baseline.primary_model}` (rows: true, columns: predicted):",
            "",
            _markdown_table(baseline.confusion),
            "",
        ]
        lines += [
            "## Primary metric",
            "",
            baseline.metric.justification,
            "",
        ]
    cost: CostResult | None = ctx.results.get("cost")
    plan: pd.DataFrame | None = ctx.results.get("plan")
    if cost is not None and plan is not None:
        lines += ["## Cost", "", _markdown_table(cost.fit_times.drop(columns="note")), ""]
        lines += [f"- {n}" for n in cost.notes]
        if cost.utility is not None:
            lines.append(
                f"- The engine evaluated {cost.utility['subsets']} random 90% subsets in "
                f"{cost.utility['seconds_total']:.3f} s "
                f"({cost.utility['seconds_per_subset']:.4f} s per subset)."
            )
        elif cost.utility_note:
            lines.append(f"- {cost.utility_note}")
        lines += [
            "",
            f"Plan against a budget of {ctx.config.budget_seconds:g} s per method:",
            "",
            _markdown_table(plan.set_index("method")),
            "",
        ]
    budget = ctx.results.get("budget")
    if budget is not None:
        lines += budget_markdown(budget, _markdown_table)
    lines += valuation_markdown(ctx, _markdown_table)
    if ctx.figures:
        lines += ["## Figures", ""]
        lines += [
            f"- `{name}`: " + ", ".join(f"`{p.name}`" for p in paths)
            for name, paths in ctx.figures.items()
        ]
        lines.append("")
    return "\n".join(lines)


def budget_markdown(budget, table_fn) -> list[str]:
    """Markdown lines: the budget, and each method's estimate against its actual seconds."""
    return [
        "## Budget: estimate against actual",
        "",
        budget_sentence(budget),
        "",
        table_fn(budget_frame(budget)),
        "",
    ]


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame.index.name is not None:  # a meaningful index (model, method) becomes a column
        frame = frame.reset_index()
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(_markdown_cell(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def _markdown_cell(value: Any) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"  # timings carry noise beyond four significant digits
    return str(value)


def valuation_markdown(ctx: StudyContext, table_fn) -> list[str]:
    """Markdown lines for the valuation results present in the context."""
    lines: list[str] = []
    result: ValuationResult | None = ctx.results.get("loo")
    if result is not None:
        table = ctx.results["loo_table"]
        shown = table[list(LOO_SHOWN)]
        lines += [
            "## Leave-one-out influence",
            "",
            f"Exact LOO of {len(result)} training points on `{result.manifest['metric']}` "
            f"(U(D) = {result.manifest['full_score']:.4g}; {result.n_fitted} fits, "
            f"{result.n_fallback} fallbacks).",
            "",
            table_fn(shown),
            "",
            *[f"- {s}" for s in ctx.results["loo_summary"]],
            "",
        ]
    lgo: ValuationResult | None = ctx.results.get("lgo")
    if lgo is not None:
        lines += [
            "## Leave-group-out influence",
            "",
            table_fn(lgo.to_frame()[["player_id", "size", "fraction", "value"]]),
            "",
        ]
    tmc: ValuationResult | None = ctx.results.get("tmc")
    if tmc is not None:
        full, empty = tmc.manifest["full_value"], tmc.manifest["empty_value"]
        lines += [
            "## TMC-Shapley values",
            "",
            f"{tmc.params['permutations']} permutations, truncation tolerance "
            f"{tmc.params['tol']}, seed {tmc.seed}: {tmc.n_evaluations} prefix evaluations used "
            f"({tmc.params['truncated_share']:.0%} of prefixes truncated), {tmc.n_fitted} fits.",
            f"Sum of the values {tmc.values.sum():.4g}; U(D) - U(empty) = {full - empty:.4g}.",
            "",
            table_fn(distribution_table(tmc)),
            "",
        ]
    groups: ValuationResult | None = ctx.results.get("tmc_groups")
    if groups is not None:
        frame = groups.to_frame()
        columns = ("player_id", "size", "value", "stderr", "sum_of_point_values")
        lines += [
            "Group Shapley values (players are the groups):",
            "",
            table_fn(frame[[c for c in columns if c in frame]]),
            "",
        ]
    comparison = ctx.results.get("shapley_vs_loo")
    if comparison is not None:
        lines += [comparison_sentence(comparison), ""]
    comparison_table = ctx.results.get("method_comparison")
    if comparison_table is not None:
        lines += ["## Methods compared", "", table_fn(comparison_table), ""]
    for name, result in ctx.results.get("methods", {}).items():
        lines += [
            f"## {name}",
            "",
            f"Parameters: {result.params}; {result.n_fitted} fits.",
            "",
            table_fn(distribution_table(result)),
            "",
        ]
    for result in ctx.results.get("ame", {}).values():
        selected = result.extra.get("selected")
        n_selected = int(np.sum(selected)) if selected is not None else 0
        lines += [
            f"## {_ame_title(result)}",
            "",
            f"{result.params['n_subsets']} random subsets (p on {{0.2, 0.4, 0.6, 0.8}}), LASSO "
            f"with {result.params.get('cv_folds', 'K')}-fold cross-validation, values = c * beta "
            f"with c = {result.params['scale_c']:.4g}; Knockoff+ at FDR "
            f"{result.params.get('fdr')} selects {n_selected} players.",
            "",
            *ame_plan_lines(result),
            table_fn(ame_table(result)),
            "",
        ]
    return lines


def distribution_table(result: ValuationResult) -> pd.DataFrame:
    """Summary statistics of a set of values."""
    v = result.values
    return pd.DataFrame(
        {
            "statistic": ["min", "median", "max", "share > 0"],
            "value": [v.min(), np.median(v), v.max(), float(np.mean(v > 0))],
        }
    )


def comparison_sentence(comparison: dict) -> str:
    """One sentence with the rank agreement of Shapley and LOO."""
    return (
        f"Shapley against LOO ({comparison['n_common']} points): Spearman "
        f"{comparison['spearman']:.3f}, Kendall {comparison['kendall']:.3f}, overlap "
        f"of the top {comparison['k']} {comparison['top_overlap']:.0%}, of the bottom "
        f"{comparison['k']} {comparison['bottom_overlap']:.0%}."
    )
