"""One command per valuation method: ``loo``, ``groups``, ``tmc``, ``ame``, ``knn-shapley``,
``beta-shapley``, ``data-oob`` and ``influence``; each runs the data step and its own step."""

from __future__ import annotations

from dataworth.cli.app import reports_errors, run_steps
from dataworth.cli.options import (
    AlphaOpt,
    BackendOpt,
    BetaOpt,
    ByOpt,
    CsvOpt,
    DatasetOpt,
    DropOpt,
    EstimatorsOpt,
    FdrOpt,
    FlipOpt,
    FractionsOpt,
    IdsOpt,
    InfluenceMethodOpt,
    KOpt,
    MetricOpt,
    ModelOpt,
    NeighboursOpt,
    NJobsOpt,
    OutOpt,
    OverwriteOpt,
    ParquetOpt,
    PermutationsOpt,
    PlayersOpt,
    PointsOpt,
    RowsOpt,
    SchedulerOpt,
    SeedOpt,
    SplitOpt,
    StrictOpt,
    SubsetsOpt,
    TargetAmeOpt,
    TargetOpt,
    TolOpt,
    TrainSizeOpt,
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


@reports_errors
def loo(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    points: PointsOpt = None,
    ids: IdsOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Exact leave-one-out influence of chosen or random points, with diagnostics.

    Writes a run folder only when --out is given.
    """
    config = build_config(**config_options(locals()))
    outcome = run_steps(config, ("data", "loo", "summary"), write=out is not None)
    show_loo(outcome.context)
    show_written(outcome)


@reports_errors
def groups(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Exact leave-group-out influence of groups of different sizes.

    Writes a run folder (with the group-size plot) only when --out is given.
    """
    config = build_config(**config_options(locals()))
    outcome = run_steps(config, ("data", "groups", "summary"), write=out is not None)
    show_groups(outcome.context)
    show_written(outcome)


@reports_errors
def tmc(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    permutations: PermutationsOpt = None,
    tol: TolOpt = None,
    players: PlayersOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Truncated Monte Carlo Shapley values (Ghorbani and Zou, 2019) of points and/or groups.

    Writes a run folder (values, figures) only when --out is given.
    """
    config = build_config(**config_options(locals()))
    outcome = run_steps(config, ("data", "tmc", "summary"), write=out is not None)
    show_tmc(outcome.context)
    show_written(outcome)


@reports_errors
def ame(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    explain: TargetAmeOpt = None,
    subsets: SubsetsOpt = None,
    k: KOpt = None,
    fdr: FdrOpt = None,
    players: PlayersOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """AME (Lin et al., 2022): randomized-subset LASSO values with a Knockoff selection.

    Explains the test metric or single predictions (--explain test:ID). Writes a run folder
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
def knn_shapley_command(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    neighbours: NeighboursOpt = None,
    explain: TargetAmeOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Exact KNN-Shapley (Jia et al., 2019) in closed form: no model is fitted."""
    _run_method(config_options(locals()), "knn_shapley")


@reports_errors
def beta_shapley_command(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    alpha: AlphaOpt = None,
    beta: BetaOpt = None,
    subsets: SubsetsOpt = None,
    k: KOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Beta Shapley (Kwon and Zou, 2022) from random subsets (the AME sampler)."""
    _run_method(config_options(locals()), "beta_shapley")


@reports_errors
def data_oob_command(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    estimators: EstimatorsOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Data-OOB (Kwon and Zou, 2023): out-of-bag accuracy of bagged decision trees."""
    _run_method(config_options(locals()), "data_oob")


@reports_errors
def influence_command(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    metric: MetricOpt = None,
    explain: TargetAmeOpt = None,
    method: InfluenceMethodOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Influence functions (Koh and Liang, 2017): LOO estimated from one logistic fit."""
    _run_method(config_options(locals()), "influence")
