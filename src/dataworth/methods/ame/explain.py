"""The AME of each training point or group (Lin et al., ICML 2022, the "explain" mode).

:func:`ame` runs the flat estimator (:mod:`.ame_flat`) or, when the memory plan says so, the
hierarchical one (:func:`~dataworth.methods.ame.scale.hierarchical_metric`, the study's), and
records the path taken in its ``params``.
"""

from __future__ import annotations

from time import perf_counter

from dataworth.methods.ame.flat import flat_ame
from dataworth.methods.ame.lasso.cv import DEFAULT_FOLDS
from dataworth.methods.ame.plan import random_partition
from dataworth.methods.ame.scale import choose_ame_path, hierarchical_metric, spread_levels
from dataworth.methods.ame.subsets import ProgressCallback, Target
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import PLaw


def ame(
    utility,
    *,
    n_subsets: int | None = None,
    k: int | None = None,
    size_factor: float = 8.0,
    law: str | PLaw = "grid",
    eps: float = 0.01,
    target: Target = "metric",
    estimator: str = "lasso",
    fdr: float | None = None,
    knockoff_plus: bool = True,
    side: str = "positive",
    groups=None,
    cv: int = DEFAULT_FOLDS,
    n_alphas: int = 100,
    n_jobs: int | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    intervals: bool = False,
    n_boot: int | None = None,
    mode: str = "auto",
    time_budget: float | None = None,
) -> ValuationResult | dict[int, ValuationResult]:
    """Average marginal effect of each training point (or group) by randomized subsets.

    ``AME_P(i) = E[U(S + i) - U(S)]`` where ``p ~ P`` and ``S`` holds every other point with
    probability ``p``. Each of ``m`` subsets is evaluated once; the values come from one
    regression of the scores on the encoded memberships (``1/p`` in, ``-1/(1-p)`` out), centred
    per ``p``, rescaled by ``c = E_P[1/(p(1-p))]`` so they are in the metric's units.

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    n_subsets : int, optional
        Number of subsets ``m`` to draw and evaluate.
    k : int, optional
        Instead of ``n_subsets``: the assumed number of influential points; then
        ``m = ceil(size_factor * k * log2(n))`` (Lin et al. use factors 1 to 8).
    size_factor : float, default=8.0
        The factor of that sizing rule.
    law : str or PLaw, default="grid"
        The law of ``p``: ``"grid"`` (uniform on {0.2, 0.4, 0.6, 0.8}, ``c = 5.2083``),
        ``"uniform"`` (on ``[eps, 1-eps]``), ``"beta:A,B"``, ``"banzhaf"`` (``p = 1/2``), or a
        :class:`~dataworth.methods.sampler.PLaw`.
    eps : float, default=0.01
        Truncation of the continuous laws.
    target : "metric", "all-test", int or list of int, default="metric"
        What is explained: the test metric, or the per-prediction score (docs/design.md,
        section 1) of one or several test rows (positions in the test set). One set of subset
        fits serves every target; one LASSO is fitted per target.
    estimator : {"lasso", "ols", "moment"}, default="lasso"
        ``"lasso"``: K-fold CV LASSO; values at the CV-minimum alpha, selection at the
        one-standard-error alpha. ``"ols"``: least squares (needs ``m`` > players).
        ``"moment"``: the unbiased randomized-experiment estimator ``mean_j x_ji y_j``.
    fdr : float, optional
        Target false discovery rate ``q`` of a Knockoff selection. Knockoff columns (a second
        ``Bernoulli(p_j)`` draw per subset, never fitted) join the regression;
        ``extra["w"]`` holds the statistics and ``extra["selected"]`` the selection.
    knockoff_plus : bool, default=True
        Knockoff+ (FDR control; selects nothing when ``q < 1/#selected``) or plain Knockoff
        (the authors' default; more liberal).
    side : {"positive", "negative"}, default="positive"
        Select points that raise (``"positive"``) or lower the target.
    groups : dict or list, optional
        Value groups instead of points: each group is in or out of a subset as a whole.
        Every form of :func:`~dataworth.engine.group_game.parse_groups` is accepted.
    cv : int, default=10
        Folds of the cross-validation (at most ``m``). The authors used up to 20; 10 (glmnet's
        default) costs half as much and chose the same alphas on the benchmarked designs with
        4,000 subsets (with 1,000, a CV minimum one grid point away).
    n_alphas : int, default=100
        Points on the LASSO path.
    n_jobs : int, optional
        Threads for the cross-validation folds (default: one per core, at most ``cv``). The
        numbers do not depend on it.
    seed : int, default=0
        Subset ``j`` comes from ``SeedSequence(seed, spawn_key=(1, j))``; the same seed gives
        the same values on any backend, and a larger ``m`` extends the same design.
    progress : callable, optional
        ``progress(done, total)`` after each block of subsets.
    intervals : bool, default=False
        Give each value a 95% interval (``ci_low``, ``ci_high``). For the LASSO: the
        percentile interval of a bootstrap over the subsets, refitting at the chosen alpha
        (warm-started, no cross-validation per resample). It covers the estimate's sampling
        variability given that alpha, not the LASSO's shrinkage towards 0: a point shrunk to 0
        in most resamples gets an interval at or around 0 (its effect is not told from 0 at
        this many subsets). For ``"ols"`` and ``"moment"``: Student's t on the standard
        errors. ``False`` skips them (NaN bounds, ``ci_note`` says so); the values are the
        same either way. Off by default: on the breast cancer study's design (400 points,
        4,000 subsets, knockoffs) the default bootstrap took 2.6 to 4.9 times AME's own time
        (``benchmarks/bench_ame_intervals.py``).
    n_boot : int, optional
        Bootstrap resamples; by default from 200 (400 players, 4,000 subsets) down to 40 as
        subsets times players grows (a resample's refit costs about subsets times players).
    mode : {"auto", "flat", "hierarchical"}, default="auto"
        The estimator. ``"flat"``: one regression over every player. ``"hierarchical"``
        (Lin et al.'s extension): about ``sqrt(n)`` random groups of points are valued first
        (each in or out as a whole), then the points of the selected groups (Knockoffs at
        ``fdr``, else the one-standard-error support, on ``side``), the other groups staying
        players as a whole; level 2 holds at most
        :data:`~dataworth.methods.ame.plan.FLAT_COLUMN_LIMIT` columns. A point outside the
        groups valued at level 2 gets 0 and is not selected, as the LASSO gives a point whose
        effect it does not tell from 0 (``extra["valued"]`` says which points level 2 valued,
        ``extra["group"]`` and ``extra["group_value"]`` their group and its level-1 value);
        each level fits its own subsets. ``"auto"``: the memory plan's choice
        (:func:`~dataworth.methods.ame.plan.plan_ame`, as the study and the CLI): flat while
        the regression fits in memory and has at most ``FLAT_COLUMN_LIMIT`` columns, else
        hierarchical. The hierarchy applies to points (no ``groups``), one target (the metric
        or one test row), the LASSO and no ``intervals``; elsewhere ``"auto"`` is flat and
        ``"hierarchical"`` raises an error. ``params`` records ``mode``, ``ame_path`` and
        ``ame_path_reason`` (and the plan, ``ame_plan``).
    time_budget : float, optional
        Seconds the subsets' fits may take (on the hierarchical path, half of them for each
        level). Past it the fits stop after the block of 256 subsets in progress, once 256 are
        in, and the regression runs on those: the values are those of a run asked for that many
        subsets (``params["n_subsets"]``; ``n_subsets_asked`` and ``stopped_by`` record the
        stop). The regression itself is not stopped.

    Returns
    -------
    ValuationResult or dict of int to ValuationResult
        One result for ``target="metric"`` or a single test row; for a list of rows or
        ``"all-test"``, a dict from each test row to its result. ``extra`` holds
        ``value_1se`` (values at the one-standard-error alpha), ``selected``, and ``w`` when
        ``fdr`` is given; ``params`` holds ``n_subsets``, the alphas, ``scale_c`` and the
        path (``mode``, ``ame_path``, ``ame_path_reason``). On the hierarchical path the result
        has the same shape, one value per point, with level 2's ``n_subsets`` and alphas and
        ``n_subsets_groups``, ``n_groups``, ``selected_groups``, ``n_valued_points``.

    References
    ----------
    Lin, Zhang, Lécuyer, Li, Panda and Sen, "Measuring the Effect of Training Data on Deep
    Learning Predictions via Randomized Experiments", ICML 2022.

    Examples
    --------
    >>> import numpy as np, dataworth as dw
    >>> w = np.zeros(50); w[:3] = 1.0
    >>> game = dw.Game(lambda masks: masks @ w, n_players=50)
    >>> result = ame(game, n_subsets=400, seed=0)
    >>> np.round(result.values[:3], 1)
    array([1., 1., 1.])
    """
    path, plan, reason = choose_ame_path(
        utility.n_players,
        mode=mode,
        n_subsets=n_subsets,
        k=k,
        size_factor=size_factor,
        fdr=fdr,
        target=target,
        estimator=estimator,
        groups=groups,
        intervals=intervals,
    )
    recorded = {"mode": mode, "ame_path": path, "ame_path_reason": reason}
    if plan is not None:
        recorded["ame_plan"] = plan.describe() | {"reason": reason}
    if path == "hierarchical":
        levels = hierarchical_metric(
            utility,
            plan,
            n_subsets=n_subsets,
            k=k,
            fdr=fdr,
            seed=seed,
            progress=progress,
            target=target,
            size_factor=size_factor,
            law=law,
            eps=eps,
            knockoff_plus=knockoff_plus,
            side=side,
            cv=cv,
            n_alphas=n_alphas,
            n_jobs=n_jobs,
            time_budget=time_budget,
        )
        parts = random_partition(utility.n_players, int(plan.n_groups), seed)
        out = spread_levels(utility, levels, parts)
        out.params |= recorded
        return out
    out = flat_ame(
        utility,
        n_subsets=n_subsets,
        k=k,
        size_factor=size_factor,
        law=law,
        eps=eps,
        target=target,
        estimator=estimator,
        fdr=fdr,
        knockoff_plus=knockoff_plus,
        side=side,
        groups=groups,
        cv=cv,
        n_alphas=n_alphas,
        n_jobs=n_jobs,
        seed=seed,
        progress=progress,
        intervals=intervals,
        n_boot=n_boot,
        deadline=None if time_budget is None else perf_counter() + time_budget,
    )
    for result in [out] if isinstance(out, ValuationResult) else out.values():
        result.params |= recorded
    return out
