"""The report's AME section: AME values of the test metric and of single predictions, with the
Knockoff selection."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataworth.methods.result import ValuationResult
from dataworth.report.load import RunData
from dataworth.report.model import (
    Figure,
    Heading,
    Paragraph,
    Section,
    Table,
    fmt,
)
from dataworth.report.sections.parts import (
    _figure,
    _metric,
    _not_run,
    _params_text,
    _thumbnails,
)

# How many AME values (largest first) the report lists per target.
_AME_ROWS = 10


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
        f"{stem}_images",
        "The explained test image (top left) and the training images of largest positive AME "
        "for it (top) and of largest negative AME (bottom), each with its id, label and AME.",
    )
    blocks += _thumbnails(run, stem, f"`{stem}`")
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
