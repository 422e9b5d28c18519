"""The report's appendix: each method's parameters, seed, fits and timings; package versions; the
command that repeats the study."""

from __future__ import annotations

import pandas as pd

from dataworth.report.load import RunData
from dataworth.report.model import (
    Bullets,
    Code,
    Heading,
    Paragraph,
    Section,
    Table,
    fmt,
)
from dataworth.report.sections.parts import _params_text


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
