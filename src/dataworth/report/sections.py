"""The sections of a study report, in the order of the course assignment, built from stored results.

Every sentence here is assembled from values in the run folder (:class:`~dataworth.report.load.
RunData`): counts, scores, settings and the diagnostics' flags. Nothing is judged or invented; a
part the study did not run says so. Derived numbers (a sum, a rank correlation, a quantile) are
computed from the stored values, never from a new fit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from dataworth.methods.diagnostics import (
    EXTREME_Z,
    LOW_AGREEMENT,
    LOW_OWN_PROBA,
    NEIGHBOURS,
    OUTLIER_TOP_SHARE,
    summarize_unusual,
)
from dataworth.methods.result import ValuationResult
from dataworth.report.load import RunData
from dataworth.report.model import (
    Bullets,
    Code,
    Figure,
    FigureRow,
    Heading,
    Paragraph,
    Report,
    Section,
    Table,
    fmt,
    pct,
)
from dataworth.report.stability_section import loo_noise_sentence, stability_blocks

# Metric columns of the baseline table, in the order they are shown.
_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "f1", "neg_log_loss", "neg_brier")
# How many of the highest and lowest Shapley values the report lists.
_EXTREMES = 5
# How many AME values (largest first) the report lists per target.
_AME_ROWS = 10


def _figure(run: RunData, stem: str, caption: str) -> list[Figure]:
    """A figure block when the study saved that figure, else nothing."""
    return [Figure(stem, caption)] if run.figure(stem) is not None else []


def _not_run(section: Section, what: str, why: str) -> Section:
    return section.add(Paragraph(f"{what} was not run in this study ({why})."))


def _metric(run: RunData) -> str:
    if run.baseline is not None:
        return run.baseline["primary_metric"]["name"]
    for result in run.results.values():
        if "metric" in result.manifest:
            return result.manifest["metric"]
    return "the metric"


# --- part 1 --------------------------------------------------------------------------------------


def checks_section(run: RunData) -> Section:
    """What the data checks found before valuation, and what it means for the values."""
    section = Section("checks", "Data checks")
    data = run.data or {}
    if "checks" not in data:
        return _not_run(section, "Checking the data", "the run folder predates the data checks")
    dropped = data.get("dropped") or []
    if dropped:
        names = ", ".join(f"`{c}`" for c in dropped)
        section.add(Paragraph(f"Columns removed before anything else (`--drop`): {names}."))
    findings = data["checks"]
    if not findings:
        return section.add(
            Paragraph(
                "No problems found: no column predicts the label on its own, no column looks "
                "like a row identifier, no column name is repeated, no column is constant, no "
                "training row is a copy of another or of a test row, every class has enough "
                "rows, and the labels look like classes rather than a continuous number."
            )
        )
    alarms = [f for f in findings if f["severity"] == "warning"]
    notes = [f for f in findings if f["severity"] != "warning"]
    counts = [f"{len(alarms)} problem(s) that may make the values below wrong"] if alarms else []
    counts += [f"{len(notes)} note(s) that help reading them"] if notes else []
    section.add(
        Paragraph(
            f"The checks found {' and '.join(counts)}. Each says what to do (`--drop COLUMN` "
            "removes a column; `--strict` stops with an error instead of a warning)."
        )
    )
    for title, group in (("Warnings", alarms), ("Notes", notes)):
        if group:
            section.add(Heading(title))
            section.add(
                Bullets(tuple(f"{f['message']} For the values: {f['meaning']}" for f in group))
            )
    return section


def dataset_section(run: RunData) -> Section:
    """What the data is and where it came from."""
    section = Section("dataset", "Dataset", "Part 1")
    data = run.data or {}
    source = data.get("source") or {}
    description = data.get("description") or {}
    kind = source.get("kind")
    if kind == "builtin":
        from dataworth.data.sources import get_dataset

        try:  # a static one-line description of the built-in dataset, not a result
            about = f" ({get_dataset(source['name']).description})"
        except Exception:  # a dataset registered by a plug-in no longer installed
            about = ""
        origin = f"the built-in dataset `{source['name']}`{about}"
    elif kind in ("csv", "parquet"):
        origin = f"the {kind.upper()} file `{source.get('path')}`"
    else:
        origin = f"`{data.get('name', 'data')}`"
    n_source = description.get("n_source_rows", source.get("n_rows"))
    n_rows = description.get("n_rows", n_source)
    text = f"The data is {origin}, loaded into memory as a table of {fmt(n_source)} rows"
    if n_rows is not None and n_source is not None and n_rows != n_source:
        text += (
            f"; the study uses a stratified random sample of {fmt(n_rows)} of them "
            f"(seed {fmt(description.get('split', {}).get('seed'))})"
        )
    text += "."
    section.add(Paragraph(text))
    if data.get("summary"):
        section.add(Bullets(tuple(data["summary"])))
    return section


def features_section(run: RunData) -> Section:
    """The features, their types and ranges, and the labels."""
    section = Section("features", "Features and labels", "Part 1")
    data = run.data or {}
    d = data.get("description") or {}
    if not d:
        return section.add(Paragraph("The run folder holds no description of the features."))
    section.add(
        Paragraph(
            f"Each row has {fmt(d['n_features'])} raw features ({fmt(d['n_numeric'])} numeric, "
            f"{fmt(d['n_categorical'])} categorical), {fmt(d['n_encoded_features'])} model "
            f"inputs after encoding. {fmt(d['n_missing_cells'])} feature values are missing, in "
            f"{fmt(d['n_rows_with_missing'])} rows. Preprocessing is fitted on the training rows "
            "only: numeric columns are imputed with their median and standardised, categorical "
            "columns imputed with their most frequent value and one-hot encoded. The table gives "
            "each raw feature before preprocessing."
        )
    )
    features = pd.DataFrame(d["features"])
    section.add(Table("features", features, "Raw features (before preprocessing).", "data.json"))
    labels = pd.DataFrame(d["labels"])
    names = ", ".join(f"`{c}`" for c in labels["class"])
    section.add(
        Paragraph(
            f"The label is the column `{d['target']}` with {len(labels)} classes: {names}. "
            "Class counts and shares, overall and in each part of the split:"
        ),
        Table(
            "labels",
            labels,
            "Classes of the label.",
            "data.json",
            headers={"train_count": "train count", "test_count": "test count"},
        ),
    )
    return section


def split_section(run: RunData) -> Section:
    """How the rows were split into training and test sets."""
    section = Section("split", "Train/test split", "Part 1")
    d = (run.data or {}).get("description") or {}
    split = d.get("split") or {}
    if not split:
        return section.add(Paragraph("The run folder holds no description of the split."))
    kind = split.get("kind")
    if kind == "random":
        how = ("stratified " if split.get("stratified") else "") + "random split"
        why = (
            "Stratifying keeps the class shares of the training and test sets equal to the "
            "data's, so the test metrics are not skewed by a chance imbalance."
            if split.get("stratified")
            else ""
        )
    else:
        how = f"{kind} split on the column `{split.get('column')}`"
        why = (
            "Rows are split by that column so no value of it is in both sets."
            if kind == "group"
            else "Earlier rows train, later rows test, as a model would be used."
        )
    n_train, n_test = split.get("n_train"), split.get("n_test")
    total = (n_train or 0) + (n_test or 0)
    share = f" ({pct(n_train / total)} / {pct(n_test / total)})" if total else ""
    text = (
        f"A {how} (seed {fmt(split.get('seed'))}, requested training size "
        f"{fmt(split.get('train_size'))}) gives {fmt(n_train)} training rows and {fmt(n_test)} "
        f"test rows{share}. {why}"
    ).strip()
    section.add(Paragraph(text))
    if split.get("flip"):
        section.add(
            Paragraph(
                f"On purpose, {fmt(split.get('n_flipped'))} training labels "
                f"({pct(split['flip'])}) were flipped, to see whether valuation finds them."
            )
        )
    section.add(
        Paragraph(
            "Every training row keeps its id in the source (`train_ids.csv`, `test_ids.csv`), "
            "so each value below traces back to a source row."
        )
    )
    return section


def baseline_section(run: RunData) -> Section:
    """The baseline models, their test metrics, the confusion matrix, curves and costs."""
    section = Section("baselines", "Baseline models", "Part 1")
    b = run.baseline
    if b is None:
        return _not_run(section, "The baseline study", "no baseline.json")
    task, primary = b["task"], b["primary_model"]
    models = pd.DataFrame({"model": list(b["models"]), "description": list(b["models"].values())})
    section.add(
        Paragraph(
            f"{len(models)} models were fitted on the {fmt(task['n_train'])} training rows "
            f"(seed {fmt(b['seed'])}) and scored on the {fmt(task['n_test'])} test rows. "
            f"`{primary}` is the primary model: the one valued in the parts that follow."
        ),
        Table("models", models, "The baseline models.", "baseline.json"),
    )
    metrics = pd.DataFrame.from_dict(b["metrics"], orient="index")
    metrics.index.name = "model"
    shown = metrics[[c for c in (*_METRICS, "fit_seconds") if c in metrics]].reset_index()
    section.add(
        Table(
            "baseline_metrics",
            shown,
            "Test-set metrics (higher is better; log-loss and Brier score are negated) and the "
            "median fit time in seconds.",
            "baseline_metrics.csv",
            headers={"roc_auc": "AUROC", "neg_log_loss": "−log-loss", "neg_brier": "−Brier"},
        )
    )
    p = b["metrics"][primary]
    step = 1 / task["n_test"]
    section.add(
        Paragraph(
            f"`{primary}` reaches accuracy {fmt(p['accuracy'])} and balanced accuracy "
            f"{fmt(p['balanced_accuracy'])}; always predicting the majority class "
            f"`{b['primary_metric']['facts'].get('majority_class')}` would score "
            f"{fmt(b['primary_metric']['facts'].get('majority_accuracy_test'))}. With "
            f"{fmt(task['n_test'])} test rows one prediction moves accuracy by {fmt(step)}."
        )
    )
    cm = b["confusion_matrix"]
    confusion = pd.DataFrame(cm["matrix"], columns=cm["labels"])
    confusion.insert(0, "true \\ predicted", cm["labels"])
    section.add(
        Heading("Confusion matrix"),
        Table(
            "confusion",
            confusion,
            f"Confusion matrix of `{primary}` on the test set (rows: true class, columns: "
            "predicted class).",
            "confusion_matrix.csv",
        ),
        *_figure(run, "confusion_matrix", f"Confusion matrix of `{primary}`, with row shares."),
    )
    curves = b.get("curves") or {}
    facts = [f"ROC of {e['label']}: AUC {fmt(e['auc'])}" for e in curves.get("roc", [])]
    facts += [
        f"precision-recall of {e['label']}: average precision {fmt(e['average_precision'])} "
        f"(chance level, the prevalence: {fmt(e['prevalence'])})"
        for e in curves.get("pr", [])
    ]
    figures = tuple(
        f
        for stem, caption in (
            ("roc_curve", "ROC curve (true against false positive rate)."),
            ("pr_curve", "Precision-recall curve."),
        )
        for f in _figure(run, stem, caption)
    )
    section.add(Heading("ROC and precision-recall curves"))
    if facts:
        text = "; ".join(facts)
        section.add(Paragraph(text[0].upper() + text[1:] + "."))
    if figures:
        section.add(FigureRow(figures))
    section.add(*_cost_blocks(run))
    section.add(*_budget_blocks(run))
    return section


def _budget_blocks(run: RunData) -> list:
    """The study's budget: each method's estimate against its actual seconds."""
    if not run.budget:
        return []
    from dataworth.report.budget_table import budget_frame, budget_sentence

    return [
        Heading("Budget: estimate against actual"),
        Paragraph(budget_sentence(run.budget)),
        Table(
            "budget",
            budget_frame(run.budget),
            "Seconds each valuation method was estimated to need, was given and took, and what "
            "it valued.",
            "budget.json",
        ),
    ]


def _cost_blocks(run: RunData) -> list:
    cost = run.cost
    if cost is None:
        return []
    blocks: list = [Heading("Cost of a fit, and the plan")]
    times = pd.DataFrame(cost["fit_times"])
    timed = times[times["seconds"].notna()]
    if not timed.empty:
        pivot = timed.pivot_table(index="model", columns="rows", values="seconds", sort=False)
        pivot.columns = [f"{c} rows" for c in pivot.columns]
        blocks.append(
            Table(
                "fit_times",
                pivot.reset_index(),
                "Median fit time in seconds by training size.",
                "fit_times.csv",
                headers={str(c): str(c) for c in pivot.columns},
            )
        )
    notes = list(cost.get("notes") or [])
    u = cost.get("utility")
    if u:
        notes.append(
            f"The valuation engine evaluated {fmt(u['subsets'])} random subsets of "
            f"{fmt(u['rows'])} rows in {fmt(u['seconds_total'])} s "
            f"({fmt(u['seconds_per_subset'])} s per subset)."
        )
    elif cost.get("utility_note"):
        notes.append(cost["utility_note"])
    if notes:
        blocks.append(Bullets(tuple(notes)))
    blocks += _figure(run, "fit_time", "Fit time against training size (log-log).")
    plan = pd.DataFrame(cost.get("plan") or [])
    if not plan.empty:
        budget = cost.get("budget_seconds")
        infeasible = plan.loc[~plan["feasible"].astype(bool), "method"].tolist()
        verdict = (
            "every method fits within it"
            if not infeasible
            else "these do not fit on all rows (see suggested rows): " + ", ".join(infeasible)
        )
        if run.subsample and run.subsample.get("subsampled"):
            verdict += ". " + run.subsample["reason"].rstrip(".")
        blocks += [
            Paragraph(
                f"Fits each method needs, and the time they would take, against a budget of "
                f"{fmt(budget)} s per method: {verdict}."
            ),
            Table(
                "plan",
                plan[["method", "fits", "estimated_seconds", "feasible", "suggested_rows", "note"]],
                "The valuation plan.",
                "plan.csv",
                headers={"estimated_seconds": "estimated seconds"},
            ),
        ]
    return blocks


def metric_section(run: RunData) -> Section:
    """The primary metric and the reasons for it."""
    section = Section("metric", "Primary metric", "Part 1")
    b = run.baseline
    if b is None:
        return _not_run(section, "The baseline study", "no baseline.json")
    chosen = b["primary_metric"]
    by = {"default": "chosen from the data", "user": "chosen by the user"}.get(
        chosen["chosen_by"], chosen["chosen_by"]
    )
    return section.add(
        Paragraph(
            f"The primary metric is `{chosen['name']}` ({by}). Every value below is in its units."
        ),
        Paragraph(chosen["justification"]),
    )


# --- part 2 --------------------------------------------------------------------------------------


def loo_table(run: RunData, result: ValuationResult) -> pd.DataFrame:
    """The LOO values (from ``loo.parquet``) joined with their diagnostics (``loo_table.csv``)."""
    frame = result.to_frame()[["player_id", "value"]]
    diagnostics = run.csv("loo_table.csv")
    if diagnostics is None:
        return frame
    diagnostics = diagnostics.drop(columns=["value"], errors="ignore")
    # Ids are text in Parquet and may be numbers in CSV: join on their text.
    frame = frame.assign(key=frame["player_id"].astype(str))
    diagnostics = diagnostics.assign(key=diagnostics["player_id"].astype(str)).drop(
        columns="player_id"
    )
    merged = frame.merge(diagnostics, on="key", how="left").drop(columns="key")
    if "flags" in merged:
        merged["flags"] = merged["flags"].fillna("").astype(str)
    return merged


def loo_section(run: RunData) -> Section:
    """Exact LOO of the chosen points, the diagnostics, and what stands out."""
    section = Section("loo", "Leave-one-out influence", "Part 2")
    result = run.results.get("loo")
    if result is None:
        return _not_run(section, "Leave-one-out", "no loo.parquet")
    full = result.manifest.get("full_score")
    chosen = "chosen at random" if "points" in result.params else "chosen by id"
    section.add(
        Paragraph(
            f"Exact leave-one-out influence `loo(i) = U(D) - U(D without i)` of "
            f"{len(result)} training points ({chosen}, seed {fmt(result.seed)}) on "
            f"`{result.manifest.get('metric', _metric(run))}`, with U(D) = {fmt(full)}: "
            f"{fmt(result.n_evaluations)} evaluations, {fmt(result.n_fallback)} scored by the "
            "fallback model. A positive value means the point helps the metric."
        )
    )
    table = loo_table(run, result)
    columns = [
        c
        for c in (
            "player_id",
            "label",
            "value",
            "neighbour_agreement",
            "own_label_proba",
            "outlier_rank",
            "max_abs_z",
            "n_duplicates",
            "flags",
            "extreme_features",
        )
        if c in table
    ]
    section.add(
        Table(
            "loo",
            table[columns],
            "LOO influence of each valued point and the diagnostics of whether it is unusual.",
            "loo.parquet, loo_table.csv",
            headers={
                "player_id": "id",
                "value": "LOO",
                "neighbour_agreement": "neighbour agreement",
                "own_label_proba": "P(own label)",
                "outlier_rank": "outlier rank",
                "max_abs_z": "max |z|",
                "n_duplicates": "duplicates",
                "extreme_features": "most extreme features",
            },
        ),
        *_figure(run, "loo", "LOO influence per point, sorted; flagged points in red."),
    )
    section.add(Heading("Are the influential points unusual?"))
    n_train = (run.data or {}).get("n_train")
    section.add(
        Paragraph(
            f"Each point is checked five ways: the share of its {NEIGHBOURS} nearest training "
            f"neighbours with its label (flagged below {pct(LOW_AGREEMENT, 0)}), the "
            f"probability the full-data model gives its own label (flagged below "
            f"{fmt(LOW_OWN_PROBA)}), its local-outlier-factor rank among all "
            f"{fmt(n_train)} training points (flagged in the top {pct(OUTLIER_TOP_SHARE, 0)}), "
            f"its largest feature z-score (flagged from {fmt(EXTREME_Z)}), and exact duplicates."
        )
    )
    values = result.values
    section.add(Paragraph(_sign_sentence(values, "LOO values")))
    if {"flags", "neighbour_agreement", "own_label_proba", "outlier_rank", "label"} <= set(table):
        section.add(Bullets(tuple(summarize_unusual(values, table))))
    everyone = run.results.get("loo_all")
    if everyone is not None:
        section.add(Paragraph(_rank_sentence(result, everyone)))
    return section


def _sign_sentence(values: np.ndarray, what: str) -> str:
    positive, negative = int((values > 0).sum()), int((values < 0).sum())
    zero = len(values) - positive - negative
    text = (
        f"Of the {len(values)} {what}, {positive} are positive, {negative} negative and {zero} "
        f"exactly zero; they range from {fmt(values.min())} to {fmt(values.max())}."
    )
    if zero:
        text += (
            " A value of exactly zero means removing the point left every test prediction "
            "unchanged to machine precision."
        )
    return text


def _rank_sentence(chosen: ValuationResult, everyone: ValuationResult) -> str:
    """Where the chosen points' |LOO| rank among the LOO values of all training points."""
    order = np.argsort(-np.abs(everyone.values), kind="stable")
    rank = {str(everyone.player_ids[i]): r + 1 for r, i in enumerate(order)}
    ranks = sorted(rank[str(p)] for p in chosen.player_ids if str(p) in rank)
    return (
        f"Against the LOO values of all {len(everyone)} training points (computed for the "
        f"comparison with Shapley), the valued points rank {', '.join(map(str, ranks))} by "
        f"absolute influence (1 = largest); the largest |LOO| of all points is "
        f"{fmt(float(np.abs(everyone.values).max()))}."
    )


# --- part 3 --------------------------------------------------------------------------------------


def groups_section(run: RunData) -> Section:
    """Leave-group-out influence of the groups, and its size plot."""
    section = Section("groups", "Group influence", "Part 3")
    result = run.results.get("groups")
    if result is None:
        return _not_run(section, "Leave-group-out", "no groups.parquet")
    by = run.setting("valuation", "group_by", "random")
    if by == "random":
        how = (
            "random groups whose sizes are the shares "
            + ", ".join(fmt(f) for f in run.setting("valuation", "group_fractions", []))
            + " of the training set, each drawn independently"
        )
    else:
        how = f"groups built by `{by}`"
    full = result.manifest.get("full_score")
    section.add(
        Paragraph(
            f"{len(result)} {how} (seed {fmt(run.setting('study', 'seed'))}). For each group G, "
            f"the exact leave-group-out influence is `U(D) - U(D without G)`, with U(D) = "
            f"{fmt(full)}: {fmt(result.n_evaluations)} evaluations, {fmt(result.n_fallback)} "
            "scored by the fallback model."
        )
    )
    frame = result.to_frame()
    columns = [c for c in ("player_id", "size", "fraction", "value") if c in frame]
    section.add(
        Table(
            "groups",
            frame[columns],
            "Leave-group-out influence of each group.",
            "groups.parquet",
            headers={"player_id": "group", "value": "influence"},
        ),
        *_figure(run, "group_size", "Group size against leave-group-out influence."),
    )
    sentences = []
    if "size" in frame and len(frame) > 2 and frame["value"].nunique() > 1:
        rho = spearmanr(frame["size"], frame["value"]).statistic
        sentences.append(
            f"The Spearman rank correlation between group size and influence is {fmt(rho, 3)}."
        )
    biggest = frame.loc[frame["value"].idxmax()]
    sentences.append(
        f"The most influential group is `{biggest['player_id']}` ({fmt(biggest.get('size'))} "
        f"points) with {fmt(biggest['value'])}."
    )
    if "fraction" in frame and (frame["fraction"] >= 1).any():
        whole = frame.loc[frame["fraction"] >= 1].iloc[0]
        sentences.append(
            f"Removing the whole training set (`{whole['player_id']}`) leaves the empty set, "
            "scored by the prior-only fallback model, so its influence "
            f"{fmt(whole['value'])} is U(D) minus the score of that prior."
        )
    negative = frame.loc[frame["value"] < 0, "player_id"].tolist()
    sentences.append(
        "No group has a negative influence."
        if not negative
        else "Groups whose removal improves the metric: "
        + ", ".join(f"`{g}`" for g in negative)
        + "."
    )
    return section.add(Paragraph(" ".join(sentences)))


# --- part 4 --------------------------------------------------------------------------------------


def shapley_section(run: RunData) -> Section:
    """TMC-Shapley values of points and groups, and their comparison with LOO."""
    section = Section("shapley", "Shapley values", "Part 4")
    points = run.results.get("shapley_points")
    groups = run.results.get("shapley_groups")
    if points is None and groups is None:
        return _not_run(section, "TMC-Shapley", "no shapley_points.parquet")
    first = points if points is not None else groups
    p = first.params
    section.add(
        Paragraph(
            "Truncated Monte Carlo Shapley (Ghorbani and Zou, ICML 2019, Algorithm 1): each "
            "random permutation of the players is walked prefix by prefix, every player gets "
            "its marginal contribution `U(prefix + i) - U(prefix)`, and once a prefix scores "
            f"within {fmt(p.get('tol'))} × |U(D)| of U(D) the rest of the permutation is "
            f"truncated (contributions 0, no fit). As the course asks, the estimate stops after "
            f"exactly {fmt(p.get('permutations'))} permutations (seed {fmt(first.seed)}); the "
            "standard error of each value is taken across permutations."
        )
    )
    if points is not None:
        section.add(*_point_shapley_blocks(run, points))
    if groups is not None:
        section.add(*_group_shapley_blocks(run, groups))
    section.add(*stability_blocks(run))
    if points is not None:
        section.add(*_loo_comparison_blocks(run, points))
    return section


def efficiency_numbers(result: ValuationResult) -> tuple[float, float | None]:
    """The sum of the values and ``U(D) - U(empty)`` (None when not stored)."""
    full, empty = result.manifest.get("full_value"), result.manifest.get("empty_value")
    target = None if full is None or empty is None else float(full) - float(empty)
    return float(np.sum(result.values)), target


def _point_shapley_blocks(run: RunData, points: ValuationResult) -> list:
    v = points.values
    total, target = efficiency_numbers(points)
    efficiency = f"The values sum to {fmt(total, 6)}"
    if target is not None:
        efficiency += (
            f"; efficiency requires U(D) - U(empty) = {fmt(points.manifest['full_value'], 6)} - "
            f"({fmt(points.manifest['empty_value'], 6)}) = {fmt(target, 6)}"
        )
        gap = points.manifest.get("efficiency_gap")
        if gap is not None:
            efficiency += f"; the stored efficiency gap, left by truncation, is {fmt(gap)}"
    stats = pd.DataFrame(
        {
            "statistic": [
                "players",
                "min",
                "25%",
                "median",
                "75%",
                "max",
                "share > 0",
                "share < 0",
            ],
            "value": [
                len(v),
                v.min(),
                *np.quantile(v, [0.25, 0.5, 0.75]),
                v.max(),
                float(np.mean(v > 0)),
                float(np.mean(v < 0)),
            ],
        }
    )
    order = np.argsort(-v, kind="stable")
    rows = (
        np.concatenate([order[:_EXTREMES], order[-_EXTREMES:]]) if len(v) > 2 * _EXTREMES else order
    )
    extremes = pd.DataFrame(
        {
            "player_id": points.player_ids[rows],
            "rank": [int(np.flatnonzero(order == r)[0]) + 1 for r in rows],
            "value": v[rows],
            "stderr": points.stderr[rows] if points.stderr is not None else np.nan,
        }
    )
    return [
        Heading("Training points"),
        Paragraph(
            f"{len(v)} training points: {fmt(points.n_evaluations)} prefix evaluations recorded, "
            f"{pct(points.params.get('truncated_share', 0))} of prefixes truncated, "
            f"{fmt(points.n_fallback)} scored by the fallback model. {efficiency}."
        ),
        Table(
            "shapley_distribution",
            stats,
            "Distribution of the Shapley values of all training points.",
            "shapley_points.parquet",
        ),
        *_figure(run, "shapley_distribution", "Distribution of all Shapley values."),
        Paragraph(_sign_sentence(v, "Shapley values")),
        Table(
            "shapley_extremes",
            extremes,
            f"The {_EXTREMES} highest and {_EXTREMES} lowest Shapley values (rank 1 = highest).",
            "shapley_points.parquet",
            headers={"player_id": "id", "value": "Shapley", "stderr": "std. error"},
        ),
    ]


def _group_shapley_blocks(run: RunData, groups: ValuationResult) -> list:
    frame = groups.to_frame()
    total, target = efficiency_numbers(groups)
    columns = [
        c for c in ("player_id", "size", "value", "stderr", "sum_of_point_values") if c in frame
    ]
    text = (
        f"The players are the {len(groups)} groups of part 3 (a group joins a coalition as a "
        f"whole): {fmt(groups.n_evaluations)} prefix evaluations recorded, "
        f"{pct(groups.params.get('truncated_share', 0))} truncated. The group values sum to "
        f"{fmt(total, 6)}"
    )
    if target is not None:
        text += f" (U(D) - U(empty) = {fmt(target, 6)})"
    text += "."
    if "sum_of_point_values" in frame:
        text += (
            " The last column adds up the Shapley values of each group's points from the point "
            "game, for comparison; the two need not agree, since the games differ."
        )
    return [
        Heading("Groups"),
        Paragraph(text),
        Table(
            "shapley_groups",
            frame[columns],
            "TMC-Shapley values of the groups.",
            "shapley_groups.parquet",
            headers={
                "player_id": "group",
                "value": "Shapley",
                "stderr": "std. error",
                "sum_of_point_values": "sum of point values",
            },
        ),
        *_figure(run, "shapley_groups", "Group Shapley values (± 1 standard error) by size."),
    ]


def _loo_comparison_blocks(run: RunData, points: ValuationResult) -> list:
    blocks: list = []
    loo = run.results.get("loo")
    if loo is not None:
        index = {str(p): i for i, p in enumerate(points.player_ids)}
        rows = [index.get(str(p)) for p in loo.player_ids]
        have = [r is not None for r in rows]
        rows_ok = [r for r in rows if r is not None]
        table = pd.DataFrame(
            {
                "player_id": loo.player_ids[have],
                "loo": loo.values[have],
                "shapley": points.values[rows_ok],
                "stderr": points.stderr[rows_ok] if points.stderr is not None else np.nan,
            }
        )
        blocks += [
            Heading("The LOO points"),
            Table(
                "shapley_loo_points",
                table,
                "Shapley values (with one standard error) of the points valued by LOO in part 2.",
                "shapley_points.parquet, loo.parquet",
                headers={
                    "player_id": "id",
                    "loo": "LOO",
                    "shapley": "Shapley",
                    "stderr": "std. error",
                },
            ),
            *_figure(
                run, "shapley_loo_points", "Shapley values of the LOO points, ± 1 std. error."
            ),
        ]
    c = run.comparison
    if c is not None:
        scope = (
            f"all {fmt(c['n_common'])} training points"
            if c.get("loo_points") == "all"
            else f"the {fmt(c['n_common'])} points valued by LOO"
        )
        blocks += [
            Heading("Shapley against LOO"),
            Paragraph(
                f"Over {scope}, the rank agreement of Shapley and LOO is Spearman "
                f"{fmt(c['spearman'], 3)} and Kendall {fmt(c['kendall'], 3)}; of the "
                f"{fmt(c['k'])} highest Shapley values, {pct(c['top_overlap'], 0)} are among "
                f"the {fmt(c['k'])} highest LOO values, and of the {fmt(c['k'])} lowest, "
                f"{pct(c['bottom_overlap'], 0)}. LOO measures a point's effect given all others; "
                "Shapley averages it over coalitions of every size, so the two rank points "
                "differently when points substitute for one another."
            ),
            *[Paragraph(s) for s in [loo_noise_sentence(run)] if s],
            *_figure(run, "shapley_vs_loo", "Shapley value against exact LOO influence."),
        ]
    methods = run.csv("method_comparison.csv")
    if methods is not None:
        blocks += [
            Heading("Every method compared"),
            Paragraph(
                "Rank correlations of each method's values with TMC-Shapley and with exact LOO "
                "of all points, over the points both valued; `evaluations` counts the models "
                "or utility evaluations each method needed (0 for closed forms)."
            ),
            Table(
                "method_comparison",
                methods,
                "Methods compared.",
                "method_comparison.csv",
                headers={
                    "spearman_tmc": "Spearman vs TMC",
                    "kendall_tmc": "Kendall vs TMC",
                    "spearman_loo_all": "Spearman vs LOO",
                    "kendall_loo_all": "Kendall vs LOO",
                },
            ),
        ]
    return blocks


# --- AME -----------------------------------------------------------------------------------------


def ame_results(run: RunData) -> dict[str, ValuationResult]:
    """The saved AME-family results (file stems starting with ``ame``), by stem."""
    return {
        stem: result
        for stem, result in run.results.items()
        if stem.startswith("ame") or result.method.startswith("ame")
    }


def ame_section(run: RunData) -> Section:
    """AME values of the test metric and of single predictions, with the Knockoff selection."""
    section = Section("ame", "Average marginal effects (AME)", "")
    results = ame_results(run)
    if not results:
        return _not_run(section, "AME", "no ame results in the run folder")
    section.add(
        Paragraph(
            "AME (Lin et al., ICML 2022): `AME_P(i) = E[U(S + i) - U(S)]` where a share p is "
            "drawn from a law P and S holds every other point with probability p. Subsets are "
            "sampled, each fitted once, and a cross-validated LASSO of the scores on the "
            "encoded memberships gives every point's value, in the metric's units. A Knockoff "
            "selection, when run, picks the points that raise the target while controlling the "
            "false discovery rate at q."
        )
    )
    for stem, result in results.items():
        section.add(*_ame_blocks(run, stem, result))
    # Figures the AME step saved under other names than its results.
    shown = set(results)
    section.add(*[Figure(s, f"AME: `{s}`.") for s in run.figure_stems("ame") if s not in shown])
    return section


def _ame_blocks(run: RunData, stem: str, result: ValuationResult) -> list:
    p = result.params
    target = str(p.get("target", "metric"))
    what = (
        f"the test metric `{result.manifest.get('metric', _metric(run))}`"
        if target == "metric"
        else f"the prediction for test row {p.get('test_id', target.removeprefix('test:'))}"
    )
    if p.get("test_label") is not None:
        what += f" (true label {p['test_label']}; the value is the probability of that label)"
    text = (
        f"`{stem}` explains {what}: method `{result.method}`, {fmt(p.get('n_subsets'))} "
        f"subsets ({fmt(result.n_evaluations)} distinct), law {_law(p.get('law'))}, estimator "
        f"`{fmt(p.get('estimator'))}`, values scaled by c = {fmt(p.get('value_scale'))}, seed "
        f"{fmt(result.seed)}; {fmt(result.n_fallback)} evaluations scored by the fallback model."
    )
    selected = result.extra.get("selected")
    if p.get("fdr") is not None:
        kind = "Knockoff+" if p.get("knockoff_plus") else "Knockoff"
        threshold = p.get("knockoff_threshold")
        # An infinite threshold is stored as null: no point can pass it.
        passed = "none can pass" if threshold is None else f"{fmt(threshold)}"
        text += (
            f" {kind} selection at q = {fmt(p['fdr'])} (threshold on W: {passed}) selects "
            f"{fmt(p.get('n_selected'))} points."
        )
    elif selected is not None:
        text += (
            f" Without knockoffs the selection is the one-standard-error LASSO support: "
            f"{fmt(p.get('n_selected'))} points, with no error-rate guarantee."
        )
    frame = result.to_frame()
    frame = frame.loc[np.argsort(-result.values, kind="stable")[:_AME_ROWS]]
    columns = [
        c for c in ("player_id", "size", "value", "value_1se", "w", "selected") if c in frame
    ]
    blocks: list = [
        Heading(f"AME of {what.replace('`', '')}"),
        Paragraph(text),
        Table(
            stem,
            frame[columns],
            f"The {min(_AME_ROWS, len(result))} largest AME values.",
            f"{stem}.parquet",
            headers={"player_id": "id", "value": "AME", "value_1se": "AME (1-s.e. λ)", "w": "W"},
        ),
    ]
    if selected is not None and np.any(selected):
        ids = [str(i) for i in result.player_ids[np.asarray(selected, dtype=bool)]]
        blocks.append(Paragraph("Selected: " + ", ".join(f"`{i}`" for i in ids) + "."))
    blocks += _figure(run, stem, f"AME values of `{stem}`.")
    blocks += _figure(
        run,
        f"{stem}_rows",
        "The explained test row (top) and the training rows with the largest AME for it, "
        "their standardised features side by side.",
    )
    return blocks


def _law(law: Any) -> str:
    """The law of the inclusion probability p, as stored by the AME methods."""
    if isinstance(law, dict):
        name = law.get("law", "")
        rest = {k: v for k, v in law.items() if k != "law"}
        return f"`{name}`" + (f" ({_params_text(rest)})" if rest else "")
    return fmt(law)


# --- appendix ------------------------------------------------------------------------------------


def _params_text(params: dict) -> str:
    return "; ".join(f"{k} = {_param(v)}" for k, v in params.items() if v is not None)


def _param(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value, 6)
    if isinstance(value, dict):
        return "{" + _params_text(value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_param(v) for v in value) + "]"
    return str(value)


def reproduce_command(run: RunData) -> str:
    """The command that repeats the run from its stored configuration."""
    command = f"dataworth study --config {run.path / 'study.toml'}"
    if run.setting("output", "out") is not None:
        # The stored out names this folder, which exists: write the repeat beside it.
        command += f" --out {run.path.with_name(run.path.name + '-rerun')}"
    return command


def appendix_section(run: RunData) -> Section:
    """Each method's parameters, seed, fits, fallbacks and timings; versions; the command."""
    section = Section("appendix", "Methods appendix")
    rows, params = [], []
    for stem, r in run.results.items():
        rows.append(
            {
                "result": stem,
                "method": r.method,
                "players": len(r),
                "seed": r.seed,
                "evaluations": r.n_evaluations,
                "fitted": r.n_fitted,
                "fallbacks": r.n_fallback,
                "seconds": float(sum(r.timings.values())),
            }
        )
        params.append(f"`{stem}`: {_params_text(r.params) or 'no parameters'}")
    if rows:
        described = [r.manifest for r in run.results.values() if r.manifest.get("learner")]
        first = described[0] if described else {}
        section.add(
            Paragraph(
                f"All valuations share one utility: learner `{first.get('learner')}`, metric "
                f"`{first.get('metric')}`, backend `{first.get('backend')}`, task fingerprint "
                f"`{first.get('task_fingerprint')}`, utility fingerprint "
                f"`{first.get('utility_fingerprint')}`. Evaluations are the subsets a method "
                "scored; fitted counts the models fitted in this run, fewer when the evaluation "
                "store beside the run folders already held some, and for TMC possibly more, "
                "since prefixes are fitted in blocks and a block may run past the truncation "
                "point; fallbacks were scored by the prior-only model for subsets the learner "
                "cannot fit (empty, or one class); seconds sum the method's timed phases."
            ),
            Table(
                "methods",
                pd.DataFrame(rows),
                "Every stored valuation result.",
                "*.json beside each result",
            ),
            Heading("Parameters"),
            Bullets(tuple(params)),
        )
    if run.baseline is not None:
        section.add(
            Paragraph(
                f"Baseline models: seed {fmt(run.baseline['seed'])}; fit times in seconds are in "
                "the baseline table (median of timed repeats)."
            )
        )
    versions = _versions(run)
    if versions:
        section.add(
            Heading("Package versions"),
            Table(
                "versions",
                pd.DataFrame({"package": list(versions), "version": list(versions.values())}),
                "Versions recorded with the results.",
                "*.json",
            ),
        )
    section.add(
        Heading("Reproduce"),
        Paragraph(
            "The configuration is stored in `study.toml`; this command repeats the study with "
            "the same seed and settings, hence the same numbers:"
        ),
        Code(reproduce_command(run), "bash"),
        Paragraph("This command rebuilds this report from the stored results, without fitting:"),
        Code(f"dataworth report {run.path}", "bash"),
    )
    if run.config_text:
        section.add(Code(run.config_text.rstrip("\n"), "toml"))
    return section


def _versions(run: RunData) -> dict[str, str]:
    for result in run.results.values():
        versions = result.manifest.get("versions")
        if versions:
            return dict(versions)
    return {}


SECTION_BUILDERS: tuple[Callable[[RunData], Section], ...] = (
    checks_section,
    dataset_section,
    features_section,
    split_section,
    baseline_section,
    metric_section,
    loo_section,
    groups_section,
    shapley_section,
    ame_section,
    appendix_section,
)


def build_sections(
    run: RunData, builders: Iterable[Callable[[RunData], Section]] = SECTION_BUILDERS
) -> Report:
    """The whole report of a run folder."""
    data = run.data or {}
    metric = _metric(run)
    subtitle = (
        f"{fmt(data.get('n_train'))} training and {fmt(data.get('n_test'))} test rows; "
        f"primary metric `{metric}`; run folder `{run.path}`."
    )
    sections = [builder(run) for builder in builders]
    title = f"Training-data valuation: {data.get('name', run.path.name)}"
    return Report(title=title, subtitle=subtitle, sections=sections)
