"""The study layer: the steps of a study, what they share, and what they write.

A study chains the parts of the course into one run: load the data, fit the baseline models,
time the fits and plan the valuation, share the time budget, value the training data with each
method, and write a run folder with a summary and a report. Its modules:

- :mod:`~dataworth.study.context`: :class:`StudyContext` (what the steps share) and :class:`Step`;
- :mod:`~dataworth.study.runner`: the preparing and closing steps and :func:`run_study`;
- :mod:`~dataworth.study.steps` and :mod:`~dataworth.study.method_steps`: the valuation steps
  (the course's parts, then the other methods); :mod:`~dataworth.study.stable_step`:
  exact group values and TMC-Shapley until its ranks are stable;
- :mod:`~dataworth.study.summary`: ``summary.md``;
- :mod:`~dataworth.study.baseline`, :mod:`~dataworth.study.cost.timing` (with
  :mod:`~dataworth.study.cost.paths` and :mod:`~dataworth.study.cost.result`),
  :mod:`~dataworth.study.cost.plan` and :mod:`~dataworth.study.budget`: the baseline models, the
  cost of a fit, what each method of the registry (:mod:`dataworth.methods.registry`) would cost,
  and the budget shared among the methods;
- :mod:`~dataworth.study.config`, :mod:`~dataworth.study.runfolder`, :mod:`~dataworth.study.log`
  and :mod:`~dataworth.study.progress_lines`: the configuration, the run folder written all or
  nothing, ``study.log``, and the progress lines of a long step.

The study and the command line form the top layer of the package: nothing below imports them.
"""

from dataworth.study.config import StudyConfig
from dataworth.study.context import LogFn, ProgressFn, Step, StudyContext
from dataworth.study.runner import (
    DEFAULT_STEPS,
    EXTRA_STEPS,
    StudyOutcome,
    add_baseline_checks,
    baseline_step,
    budget_step,
    cost_step,
    data_step,
    load_task,
    report_step,
    run_study,
    steps_named,
    study_outline,
    study_shape,
    summary_step,
)
from dataworth.study.summary import budget_markdown, summary_markdown

__all__ = [
    "DEFAULT_STEPS",
    "EXTRA_STEPS",
    "LogFn",
    "ProgressFn",
    "Step",
    "StudyConfig",
    "StudyContext",
    "StudyOutcome",
    "add_baseline_checks",
    "baseline_step",
    "budget_markdown",
    "budget_step",
    "cost_step",
    "data_step",
    "load_task",
    "report_step",
    "run_study",
    "steps_named",
    "study_outline",
    "study_shape",
    "summary_markdown",
    "summary_step",
]
