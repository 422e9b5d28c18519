"""Renderers: the tables and lines the commands print from a finished study's results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from rich.panel import Panel
from rich.table import Table

from dataworth.cli.console import console


def frame_table(frame: pd.DataFrame, title: str, digits: int = 4) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    frame = frame.reset_index() if frame.index.name is not None else frame
    for i, column in enumerate(frame.columns):
        # The first column names the row (a model, a method): left-aligned and never cut;
        # the others hold numbers, or flags and text short enough to align right too.
        table.add_column(str(column), justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v, digits) for v in row])
    return table


def _cell(value: Any, digits: int) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def show_data(ctx) -> None:
    data = ctx.results.get("data")
    if not data:
        return
    console.print(
        f"[bold]Data:[/bold] {data['name']} ({data['n_train']} training rows, "
        f"{data['n_test']} test rows)"
    )
    for line in data["summary"]:
        console.print(f"  {line}", highlight=False)
    for finding in data.get("checks", []):
        if finding["severity"] == "info":
            console.print(f"  note: {finding['message']}", highlight=False, markup=False)


def show_baseline(ctx) -> None:
    result = ctx.results.get("baseline")
    if result is None:
        return
    table = result.metrics.drop(columns=["n_timed", "predict_seconds"], errors="ignore")
    # Short headers keep all seven columns readable in an 80-column terminal.
    table = table.rename(
        columns={
            "accuracy": "acc.",
            "balanced_accuracy": "bal. acc.",
            "roc_auc": "AUROC",
            "f1": "F1",
            "neg_log_loss": "-log loss",
            "neg_brier": "-Brier",
            "fit_seconds": "fit s",
        }
    )
    table["fit s"] = [f"{s:.2g}" for s in table["fit s"]]
    console.print(frame_table(table, "Baseline models on the test set (higher is better)", 3))
    console.print(
        frame_table(
            result.confusion.rename_axis(index="true \\ predicted"),
            f"Confusion matrix: {result.primary_model}",
        )
    )
    title = f"Primary metric: {result.metric.name} ({result.metric.chosen_by})"
    console.print(Panel(result.metric.justification, title=title, title_align="left"))


def show_cost(ctx) -> None:
    cost, plan = ctx.results.get("cost"), ctx.results.get("plan")
    if cost is None:
        return
    times = cost.fit_times.pivot_table(index="model", columns="rows", values="seconds", sort=False)
    times.columns = [f"{c} rows" for c in times.columns]
    times.index.name = "model"
    console.print(frame_table(times, "Median fit time (seconds)"))
    for note in cost.notes:
        console.print(f"  note: {note}", highlight=False)
    if cost.utility is not None:
        u = cost.utility
        console.print(
            f"  engine: {u['subsets']} subsets of {u['rows']} rows in "
            f"{u['seconds_total']:.3f} s ({u['seconds_per_subset']:.4f} s per subset, "
            f"learner {u['learner']}, metric {u['metric']})",
            highlight=False,
        )
    elif cost.utility_note:
        console.print(f"  engine: {cost.utility_note}", highlight=False)
    if plan is not None:
        # Long notes would squeeze the table in an 80-column terminal: show them as footnotes.
        shown = pd.DataFrame(
            {
                "method": [f"{m} [{i + 1}]" for i, m in enumerate(plan["method"])],
                "fits": plan["fits"],
                "est. seconds": [f"{x:.3g}" for x in plan["estimated_seconds"]],
                "feasible": plan["feasible"],
                "suggested rows": plan["suggested_rows"],
            }
        )
        title = f"Valuation plan (budget {ctx.config.budget_seconds:g} s per method)"
        console.print(frame_table(shown, title, digits=1))
        for i, note in enumerate(plan["note"]):
            console.print(f"  [{i + 1}] {note}", highlight=False, markup=False)


def show_loo(ctx) -> None:
    table = ctx.results.get("loo_table")
    if table is None:
        return
    result = ctx.results["loo"]
    from dataworth.study.steps import LOO_SHOWN

    shown = table[list(LOO_SHOWN)].rename(
        columns={
            "player_id": "id",
            "value": "LOO",
            "neighbour_agreement": "nbr agree",
            "own_label_proba": "p(own)",
            "outlier_rank": "outlier rank",
        }
    )
    title = (
        f"Exact LOO influence on {result.manifest['metric']} "
        f"(U(D) = {result.manifest['full_score']:.4g}; {result.n_fitted} fits)"
    )
    console.print(frame_table(shown.sort_values("LOO", ascending=False), title))
    for line in ctx.results["loo_summary"]:
        console.print(f"  {line}", highlight=False, markup=False)


def show_groups(ctx) -> None:
    result = ctx.results.get("lgo")
    if result is None:
        return
    frame = result.to_frame()[["player_id", "size", "fraction", "value"]]
    title = f"Leave-group-out influence on {result.manifest['metric']}"
    console.print(frame_table(frame.rename(columns={"player_id": "group"}), title))


def show_tmc(ctx) -> None:
    from dataworth.study.summary import comparison_sentence

    points = ctx.results.get("tmc")
    if points is not None:
        frame = points.to_frame()[["player_id", "value", "stderr"]]
        frame = frame.sort_values("value", ascending=False)
        shown = pd.concat([frame.head(5), frame.tail(5)]) if len(frame) > 10 else frame
        full, empty = points.manifest["full_value"], points.manifest["empty_value"]
        title = f"TMC-Shapley, {points.params['permutations']} permutations"
        console.print(frame_table(shown.rename(columns={"player_id": "id"}), title))
        console.print(
            f"  sum of the values {points.values.sum():.4g}; U(D) - U(empty) = {full - empty:.4g}",
            highlight=False,
        )
        console.print(
            f"  {points.n_evaluations} prefixes used, {points.params['truncated_share']:.0%} "
            f"truncated, {points.n_fitted} fits in {points.timings.get('evaluate', 0):.2f} s",
            highlight=False,
        )
    groups = ctx.results.get("tmc_groups")
    if groups is not None:
        frame = groups.to_frame()
        columns = [
            c
            for c in ("player_id", "size", "value", "stderr", "exact_value", "sum_of_point_values")
            if c in frame
        ]
        console.print(
            frame_table(
                frame[columns].rename(columns={"player_id": "group"}),
                "TMC-Shapley values of the groups",
            )
        )
    comparison = ctx.results.get("shapley_vs_loo")
    if comparison is not None:
        console.print(f"  {comparison_sentence(comparison)}", highlight=False)
    stable = ctx.results.get("tmc_stable_summary")
    if stable is not None:
        console.print(
            f"  Continued to {stable['permutations']} permutations ({stable['stopped_by']}). "
            + stable.get("stability", {}).get("verdict", ""),
            highlight=False,
        )


def show_ame(ctx) -> None:
    from dataworth.methods.ame.scale import ame_plan_lines
    from dataworth.study.steps import ame_table

    shown = list(ctx.results.get("ame", {}).values())
    for line in ame_plan_lines(shown[0]) if shown else []:
        console.print(line)  # which estimator ran (flat or hierarchical) and why
    for result in ctx.results.get("ame", {}).values():
        test_id = result.params.get("test_id")
        what = f"test row {test_id} (label {result.params['test_label']})" if test_id else "metric"
        selected = result.extra.get("selected")
        n_selected = int(np.sum(selected)) if selected is not None else 0
        title = (
            f"AME on the {what}: {result.params['n_subsets']} subsets, "
            f"{n_selected} selected at FDR {result.params.get('fdr')}"
        )
        console.print(frame_table(ame_table(result).rename(columns={"player_id": "id"}), title))


def show_method(ctx) -> None:
    for name, result in ctx.results.get("methods", {}).items():
        frame = result.to_frame()
        columns = [c for c in ("player_id", "value", "stderr") if frame[c].notna().any()]
        frame = frame[columns].sort_values("value", ascending=False)
        shown = pd.concat([frame.head(5), frame.tail(5)]) if len(frame) > 10 else frame
        title = f"{name}: highest and lowest values ({len(frame)} points)"
        console.print(frame_table(shown.rename(columns={"player_id": "id"}), title))
        seconds = sum(result.timings.values())
        console.print(f"  {result.n_fitted} fits, {seconds:.2f} s", highlight=False)


def show_budget(ctx) -> None:
    budget = ctx.results.get("budget")
    if budget is None:
        return
    from dataworth.report.sections.budget import budget_frame, budget_sentence

    frame = budget_frame(budget).rename(
        columns={
            "estimated_seconds": "est. s",
            "allotted_seconds": "allotted s",
            "actual_seconds": "actual s",
        }
    )
    console.print(frame_table(frame, "Budget: estimate against actual", digits=2))
    console.print(f"  {budget_sentence(budget)}", highlight=False, markup=False)


def show_written(outcome) -> None:
    if outcome.path is not None:
        console.print(f"[bold green]Wrote[/bold green] {outcome.path}", highlight=False)


def evaluation_table(frame: pd.DataFrame) -> Table:
    """The ranking in 80 columns: short headers, no vertical rules, three decimals."""
    from rich import box

    table = Table(
        title="Flipped-label detection and removal curves, best AUC first",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    headers = {
        "seconds": "s",
        "fits": "fits",
        "roc_auc": "AUC",
        "average_precision": "AP",
        "f1_two_means": "F1",
        "recall_at_10": "R@10",
        "area_high_first": "hi",
        "area_low_first": "lo",
        "spearman_exact": "rho",
    }
    table.add_column("method", no_wrap=True)
    for header in headers.values():
        table.add_column(header, justify="right", no_wrap=True)
    for name, row in frame.iterrows():
        cells = []
        for column in headers:
            value = row[column]
            if pd.isna(value):
                cells.append("-")
            elif column == "fits":
                cells.append(str(int(value)))
            elif column == "seconds":
                cells.append(f"{value:.2f}" if value < 100 else f"{value:.0f}")
            elif column.startswith("area"):
                cells.append(f"{value:+.3f}")
            else:
                cells.append(f"{value:.3f}")
        table.add_row(str(name), *cells)
    return table


def show_evaluation(report) -> None:
    info = report.info
    console.print(
        f"[bold]Task:[/bold] {info['task']} ({info['n_train']} training rows, "
        f"{info['n_flipped']} flipped = {info['flip_rate']:.1%}); learner {info['learner']}, "
        f"metric {info['metric']}, seed {info['seed']}",
        highlight=False,
    )
    console.print(evaluation_table(report.table))
    chance = info["chance"]
    console.print(
        f"  AUC, AP: low values as a score of the {info['n_flipped']} flipped rows (chance 0.5 "
        f"and {chance['average_precision']:.3f}); F1: the lower cluster of a two-means split of "
        "the values; R@10: share of the flipped rows among the lowest 10% (chance 0.1).",
        highlight=False,
    )
    console.print(
        "  hi, lo: area between the removal curve (highest or lowest values removed first, 0 "
        "to 50% of the rows, refitted) and random removal; positive = better than random.",
        highlight=False,
    )
    if info.get("exact_players"):
        console.print(
            f"  rho: Spearman correlation with exact Shapley values on {info['exact_players']} "
            "rows of the same task.",
            highlight=False,
        )
    for name, note in report.table["note"].items():
        if note:
            console.print(f"  {name}: {note}", highlight=False, markup=False)
