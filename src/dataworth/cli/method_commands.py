"""One command per valuation method: ``loo``, ``groups``, ``tmc``, ``ame``, ``knn-shapley``,
``beta-shapley``, ``data-oob`` and ``influence``; each runs the data step and its own step.

A command's help line is its method's ``summary`` in the registry (see
:func:`dataworth.cli.command_help`); a docstring here only adds notes below it."""

from __future__ import annotations

from dataworth.cli.app import reports_errors, run_steps
from dataworth.cli.options import (
    AlphaOpt,
    BetaOpt,
    ByOpt,
    EstimatorsOpt,
    FdrOpt,
    FractionsOpt,
    IdsOpt,
    InfluenceMethodOpt,
    KOpt,
    MetricOpt,
    NeighboursOpt,
    OutOpt,
    OverwriteOpt,
    PermutationsOpt,
    PlayersOpt,
    PointsOpt,
    SubsetsOpt,
    TargetAmeOpt,
    TolOpt,
    build_config,
    config_options,
)
from dataworth.cli.render import (
    show_ame,
    show_groups,
    show_loo,
    show_method,
    show_tmc,
    show_written,
)
from dataworth.cli.shared import (
    DATA,
    ENGINE,
    MODEL,
    DataOptions,
    EngineOptions,
    ModelOptions,
    shares_options,
)


@reports_errors
@shares_options()
def loo(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
    points: PointsOpt = None,
    ids: IdsOpt = None,
    engine: EngineOptions = ENGINE,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Writes a run folder only when --out is given."""
    config = build_config(**config_options(locals()))
    outcome = run_steps(config, ("data", "loo", "summary"), write=out is not None)
    show_loo(outcome.context)
    show_written(outcome)


@reports_errors
@shares_options()
def groups(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    engine: EngineOptions = ENGINE,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Writes a run folder (with the group-size plot) only when --out is given."""
    config = build_config(**config_options(locals()))
    outcome = run_steps(config, ("data", "groups", "summary"), write=out is not None)
    show_groups(outcome.context)
    show_written(outcome)


@reports_errors
@shares_options()
def tmc(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
    permutations: PermutationsOpt = None,
    tol: TolOpt = None,
    players: PlayersOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    engine: EngineOptions = ENGINE,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Writes a run folder (values, figures) only when --out is given."""
    config = build_config(**config_options(locals()))
    outcome = run_steps(config, ("data", "tmc", "summary"), write=out is not None)
    show_tmc(outcome.context)
    show_written(outcome)


@reports_errors
@shares_options()
def ame(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
    explain: TargetAmeOpt = None,
    subsets: SubsetsOpt = None,
    k: KOpt = None,
    fdr: FdrOpt = None,
    players: PlayersOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    engine: EngineOptions = ENGINE,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Explains the test metric or single predictions (--explain test:ID). Writes a run folder
    only when --out is given.
    """
    options = config_options(locals())
    if options.get("players") is not None:
        options["ame_players"] = options.pop("players")
    options["ame_rows"] = 0  # only what --explain names
    config = build_config(**options)
    outcome = run_steps(config, ("data", "ame", "summary"), write=out is not None)
    show_ame(outcome.context)
    show_written(outcome)


def _run_method(options: dict, step: str) -> None:
    config = build_config(**options)
    outcome = run_steps(config, ("data", step, "summary"), write=options.get("out") is not None)
    show_method(outcome.context)
    show_written(outcome)


@reports_errors
@shares_options()
def knn_shapley_command(
    data: DataOptions = DATA,
    neighbours: NeighboursOpt = None,
    explain: TargetAmeOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    _run_method(config_options(locals()), "knn_shapley")


@reports_errors
@shares_options()
def beta_shapley_command(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
    alpha: AlphaOpt = None,
    beta: BetaOpt = None,
    subsets: SubsetsOpt = None,
    k: KOpt = None,
    engine: EngineOptions = ENGINE,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    _run_method(config_options(locals()), "beta_shapley")


@reports_errors
@shares_options()
def data_oob_command(
    data: DataOptions = DATA,
    estimators: EstimatorsOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    _run_method(config_options(locals()), "data_oob")


@reports_errors
@shares_options()
def influence_command(
    data: DataOptions = DATA,
    metric: MetricOpt = None,
    explain: TargetAmeOpt = None,
    method: InfluenceMethodOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    _run_method(config_options(locals()), "influence")
