"""The sections of a study report, in the order of the course assignment, built from stored results.

Every sentence here is assembled from values in the run folder (:class:`~dataworth.report.load.
RunData`): counts, scores, settings and the diagnostics' flags. Nothing is judged or invented; a
part the study did not run says so. Derived numbers (a sum, a rank correlation, a quantile) are
computed from the stored values, never from a new fit.

The sections live in their own modules (:mod:`~dataworth.report.sections.data`,
:mod:`~dataworth.report.sections.influence`, :mod:`~dataworth.report.sections.shapley`,
:mod:`~dataworth.report.sections.ame`, :mod:`~dataworth.report.sections.appendix`); this module
puts them in order and builds the report. Their names still import from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dataworth.report.load import RunData
from dataworth.report.model import Report, Section, fmt
from dataworth.report.sections.ame import ame_results, ame_section
from dataworth.report.sections.appendix import appendix_section, reproduce_command
from dataworth.report.sections.clean import clean_section
from dataworth.report.sections.data import (
    baseline_section,
    checks_section,
    dataset_section,
    features_section,
    metric_section,
    split_section,
)
from dataworth.report.sections.influence import groups_section, loo_section, loo_table
from dataworth.report.sections.parts import _metric
from dataworth.report.sections.shapley import efficiency_numbers, shapley_section

__all__ = [
    "CLEAN_BUILDERS",
    "SECTIONS",
    "SECTION_BUILDERS",
    "ame_results",
    "ame_section",
    "appendix_section",
    "baseline_section",
    "build_sections",
    "builders_for",
    "checks_section",
    "dataset_section",
    "efficiency_numbers",
    "features_section",
    "groups_section",
    "loo_section",
    "loo_table",
    "metric_section",
    "reproduce_command",
    "shapley_section",
    "split_section",
]

#: Each section's id (its anchor in the report) and its builder, in report order. The method
#: registry (:mod:`dataworth.methods.registry`) names the section that shows each method.
SECTIONS: dict[str, Callable[[RunData], Section]] = {
    "checks": checks_section,
    "dataset": dataset_section,
    "features": features_section,
    "split": split_section,
    "baselines": baseline_section,
    "metric": metric_section,
    "loo": loo_section,
    "groups": groups_section,
    "shapley": shapley_section,
    "ame": ame_section,
    "clean": clean_section,
    "appendix": appendix_section,
}
SECTION_BUILDERS: tuple[Callable[[RunData], Section], ...] = tuple(SECTIONS.values())
#: The report of a ``dataworth clean`` run folder (no baseline): the data and the cleaning.
CLEAN_BUILDERS: tuple[Callable[[RunData], Section], ...] = (
    checks_section,
    dataset_section,
    clean_section,
    appendix_section,
)


def builders_for(run: RunData) -> tuple[Callable[[RunData], Section], ...]:
    """The sections a run folder's report has: a study's, or a ``clean`` run's."""
    if run.baseline is None and (run.folder / "clean.json").exists():
        return CLEAN_BUILDERS
    return SECTION_BUILDERS


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
