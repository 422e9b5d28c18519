"""Part 1 of the report: the data checks, the dataset, its features and split, the baseline
models (with the cost study and the budget) and the primary metric."""

from __future__ import annotations

import pandas as pd

from dataworth.report.load import RunData
from dataworth.report.model import (
    Bullets,
    FigureRow,
    Heading,
    Paragraph,
    Section,
    Table,
    fmt,
    pct,
)
from dataworth.report.sections.parts import _figure, _not_run

# Metric columns of the baseline table, in the order they are shown.
_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "f1", "neg_log_loss", "neg_brier")


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
    from dataworth.report.sections.budget import budget_frame, budget_sentence

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
