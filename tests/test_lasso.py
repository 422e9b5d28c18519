"""The cross-validated LASSO of AME against scikit-learn's ``LassoCV`` and ``lasso_path``.

The reference runs scikit-learn in double precision on the design itself (no Gram matrix) with
the same folds and grid. Ours runs the fold paths in single precision from one Gram matrix and
the full-data path in double precision. Tolerance stated and proved here: the CV-minimum and
one-standard-error alphas are the same grid points; the supports are identical (up to
coefficients below 1e-9 of the largest, the reference's round-off); the values agree to 1e-6
of the largest coefficient (both solvers stop at a duality gap of 1e-4 of ``||y||^2``).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LassoCV, lasso_path
from sklearn.model_selection import PredefinedSplit

from dataworth.errors import DataworthError
from dataworth.methods.ame import _centre, _folds, _p_strata, encode
from dataworth.methods.ame.lasso.cv import alpha_grid, lasso_cv
from dataworth.methods.ame.lasso.folds import _cv_lockstep, _cv_whole, passed_minimum
from dataworth.methods.ame.lasso.paths import _path
from dataworth.methods.ame.lasso.working import working_set_solve
from dataworth.methods.sampler import Grid, SubsetSampler


def _design(n: int, m: int, *, knockoffs: bool, seed: int, dense: bool, noise: float | None = None):
    """AME's centred design for a noisy game: sparse (8 players matter) or dense (all do)."""
    law = Grid()
    sampler = SubsetSampler(n, law)
    p, masks = sampler.draw(seed, 0, m)
    x = encode(masks, p)
    if knockoffs:
        x = np.hstack([x, encode(sampler.knockoffs(seed, p, 0), p)])
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.02, n) if dense else np.r_[rng.uniform(0.5, 1.5, 8), np.zeros(n - 8)]
    # Two targets: the game and a second one with a different signal, like two test rows.
    y = np.column_stack([masks @ w, masks @ w[::-1] + 0.1 * masks[:, 0] * masks[:, 1]])
    y += rng.normal(0, noise if noise is not None else 0.05 if dense else 0.5, y.shape)
    strata = _p_strata(p, law, None)
    return np.asfortranarray(_centre(x, strata)), _centre(y, strata)


def _reference(x, y, folds, n_alphas):
    """LassoCV on the design, float64, same folds and grid; the 1-SE alpha from its curve."""
    m = x.shape[0]
    grids = alpha_grid(x.T @ y, m, x.shape[1], n_alphas)
    out = []
    for t in range(y.shape[1]):
        model = LassoCV(
            alphas=grids[t], cv=PredefinedSplit(folds), fit_intercept=False, tol=1e-4
        ).fit(x, y[:, t])
        mean = model.mse_path_.mean(axis=1)
        se = model.mse_path_.std(axis=1, ddof=1) / np.sqrt(model.mse_path_.shape[1])
        i_min = int(np.argmin(mean))
        i_1se = int(np.flatnonzero(mean <= mean[i_min] + se[i_min])[0])
        coefs = lasso_path(x, y[:, t], alphas=grids[t], tol=1e-4)[1]
        assert model.alpha_ == pytest.approx(grids[t][i_min])
        out.append((grids[t][i_min], grids[t][i_1se], coefs[:, i_min], coefs[:, i_1se]))
    return out


@pytest.mark.parametrize(
    ("n", "m", "knockoffs", "dense"),
    [(50, 3000, False, False), (60, 300, True, False), (120, 400, False, True)],
    ids=["linear-game", "knockoffs-m<2n", "dense-m>n"],
)
def test_lasso_cv_agrees_with_scikit_learn(n, m, knockoffs, dense):
    x, y = _design(n, m, knockoffs=knockoffs, seed=3, dense=dense)
    folds = _folds(m, 10, 0)
    ours = lasso_cv(x, y, folds, n_alphas=60, n_jobs=2)
    for fit, (a_min, a_1se, c_min, c_1se) in zip(ours, _reference(x, y, folds, 60), strict=True):
        assert fit.info["alpha_min"] == pytest.approx(a_min, rel=1e-12)
        assert fit.info["alpha_1se"] == pytest.approx(a_1se, rel=1e-12)
        assert fit.info["cv_folds"] == 10
        scale = np.abs(c_min).max()
        # Supports: the same players, ignoring round-off the reference's own solver leaves
        # (it can return 1e-17 where ours returns an exact zero).
        floor = 1e-9 * scale
        np.testing.assert_array_equal(np.abs(fit.coef_min) > floor, np.abs(c_min) > floor)
        np.testing.assert_array_equal(np.abs(fit.coef_1se) > floor, np.abs(c_1se) > floor)
        np.testing.assert_allclose(fit.coef_min, c_min, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(fit.coef_1se, c_1se, rtol=0, atol=1e-6 * scale)
        assert fit.info["support_1se"] <= fit.info["support_min"]
        assert 0 < fit.info["support_min"] == np.count_nonzero(fit.coef_min)


def test_threads_change_no_number_and_targets_are_independent():
    x, y = _design(40, 500, knockoffs=True, seed=1, dense=False)
    folds = _folds(500, 10, 4)
    one = lasso_cv(x, y, folds, n_alphas=30, n_jobs=1)
    two = lasso_cv(x, y, folds, n_alphas=30, n_jobs=2)
    alone = lasso_cv(x, y[:, 1:], folds, n_alphas=30, n_jobs=1)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.coef_min, b.coef_min)
        np.testing.assert_array_equal(a.coef_1se, b.coef_1se)
    # A target's fit does not depend on which other targets share the Gram matrix (up to BLAS
    # rounding: x'y of one column instead of two).
    assert alone[0].info["alpha_min"] == pytest.approx(one[1].info["alpha_min"], rel=1e-12)
    np.testing.assert_allclose(alone[0].coef_min, one[1].coef_min, rtol=1e-9, atol=1e-15)


def test_constant_target_and_too_few_rows():
    x, y = _design(20, 100, knockoffs=False, seed=0, dense=False)
    y[:, 1] = 0.0
    fits = lasso_cv(x, y, _folds(100, 5, 0), n_alphas=20)
    assert fits[1].info["alpha_min"] is None and not fits[1].coef_min.any()
    assert fits[0].coef_min.any()
    with pytest.raises(DataworthError, match="at least 2"):
        lasso_cv(x[:1], y[:1], np.zeros(1, dtype=int))


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "sparse"])
def test_early_stop_chooses_what_the_whole_grid_chooses(dense):
    """Stopping the fold paths past the CV minimum changes no chosen alpha and no coefficient;
    the paths walked in blocks are the whole-grid paths' first points, bit for bit."""
    n, m = (200, 450) if dense else (80, 1200)
    x, y = _design(n, m, knockoffs=not dense, seed=5, dense=dense, noise=0.1 if dense else None)
    folds = _folds(m, 10, 1)
    early = lasso_cv(x, y, folds, n_alphas=100, n_jobs=2)
    whole = lasso_cv(x, y, folds, n_alphas=100, n_jobs=2, early_stop=False)
    for a, b in zip(early, whole, strict=True):
        assert a.info["cv_alphas_walked"] < 100 == b.info["cv_alphas_walked"]
        assert a.info["alpha_min"] == b.info["alpha_min"]
        assert a.info["alpha_1se"] == b.info["alpha_1se"]
        assert a.info["cv_mse_min"] == b.info["cv_mse_min"]
        np.testing.assert_array_equal(a.coef_min, b.coef_min)
        np.testing.assert_array_equal(a.coef_1se, b.coef_1se)
    if dense:  # most players matter: the dense end of the grid is where the values are
        assert early[0].info["support_min"] > 0.5 * n


def test_passed_minimum_waits_for_a_clear_rise():
    rng = np.random.default_rng(0)
    # Each fold's curve is shifted as a whole (a harder or easier validation fold), as in CV.
    noise = rng.normal(0, 0.01, (10, 1)) + rng.normal(0, 1e-4, (10, 40))
    u_shape = 1.0 + ((np.arange(40) - 15) / 10.0) ** 2 + noise
    assert not passed_minimum(u_shape[:, :25])  # 9 points past the minimum: not yet
    assert passed_minimum(u_shape[:, :30])
    falling = 2.0 - np.arange(40) / 40.0 + noise
    assert not passed_minimum(falling)
    # Past the minimum but within noise of it (a plateau): keep walking.
    plateau = 1.0 + np.r_[np.zeros(10), np.full(30, 0.001)] + noise
    assert not passed_minimum(plateau)


def test_grid_walked_in_blocks_is_the_one_call_path_bit_for_bit():
    """Without working sets, the lockstep folds continue each path from where the last block
    ended: their CV errors equal those of one scikit-learn call over the whole grid per fold."""
    x, y = _design(60, 400, knockoffs=True, seed=2, dense=False)
    folds = _folds(400, 5, 3)
    xy, gram = x.T @ y, x.T @ x
    grids = alpha_grid(xy, 400, x.shape[1], 30)
    options = {"max_iter": 1000, "tol": 1e-4}
    blocks, walked = _cv_lockstep(x, y, folds, 5, gram, xy, grids, options, 2, False, working=False)
    whole = _cv_whole(x, y, folds, 5, gram, xy, grids, options, 2)
    assert (walked == 30).all()
    np.testing.assert_array_equal(blocks, whole)


def test_working_sets_solve_the_whole_problem():
    """Each alpha solved on a working set (strong rule plus violators) is the LASSO of the
    whole design: against scikit-learn's path on all columns, both converged tightly."""
    x, y = _design(80, 120, knockoffs=True, seed=4, dense=False)  # 160 columns, 120 rows
    gram, xy, target = x.T @ x, x.T @ y[:, 0], np.ascontiguousarray(y[:, 0])
    grid = alpha_grid(x.T @ y, 120, 160, 40)[0][:25]
    tight = {"max_iter": 100000, "tol": 1e-12}
    reference = lasso_path(x, target, alphas=grid, **tight)[1]
    coef, previous, used = np.zeros(160), grid[0], 0
    for i, alpha in enumerate(grid):
        solved = working_set_solve(_path, gram, xy, target, alpha, previous, coef, tight)
        if solved is None:  # the working set outgrew its share: the caller takes over
            break
        coef, previous, used = solved, alpha, i + 1
        scale = max(np.abs(reference[:, i]).max(), 1e-12)
        np.testing.assert_allclose(coef, reference[:, i], rtol=0, atol=1e-7 * scale)
    assert used >= 10 and np.count_nonzero(coef) > 3


@pytest.mark.parametrize("dense", [True, False], ids=["dense-m>n", "knockoffs-m<n"])
def test_compiled_path_is_scikit_learns_lasso_path(dense):
    """The compiled path, walked in blocks with ``G w`` carried from one block to the next, is
    scikit-learn's path on the whole design: both converged tightly, float64."""
    kernels = pytest.importorskip("dataworth.methods.ame.lasso.kernels")
    n, m = (60, 300) if dense else (80, 120)
    x, y = _design(n, m, knockoffs=not dense, seed=6, dense=dense, noise=0.1 if dense else None)
    target = np.ascontiguousarray(y[:, 0])
    gram, xy = np.ascontiguousarray(x.T @ x), x.T @ target
    grid = alpha_grid(x.T @ y, m, x.shape[1], 40)[0]
    reference = lasso_path(x, target, alphas=grid, max_iter=100000, tol=1e-12)[1]
    coef, gram_coef = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    coef_before = np.zeros(x.shape[1])
    lam_prev = lam_before = grid[0] * m
    scale = np.abs(reference).max()
    for start in range(0, 40, 7):
        lams = grid[start : start + 7] * m
        out = np.empty((x.shape[1], len(lams)))
        missed = kernels.lasso_gram_path(
            gram,
            xy,
            float(target @ target),
            lams,
            lam_prev,
            lam_before,
            1e-12,
            100000,
            coef,
            coef_before,
            gram_coef,
            out,
        )
        assert missed == 0
        lam_prev, lam_before = lams[-1], lams[-2]
        for i in range(len(lams)):
            np.testing.assert_allclose(out[:, i], reference[:, start + i], atol=1e-7 * scale)
    np.testing.assert_allclose(gram_coef, gram @ coef, rtol=1e-9, atol=1e-12)
    assert np.count_nonzero(coef) > (0.5 * n if dense else 3)


@pytest.mark.parametrize(
    ("n", "m", "knockoffs", "dense"),
    [(50, 3000, False, False), (60, 300, True, False), (120, 400, False, True)],
    ids=["linear-game", "knockoffs-m<2n", "dense-m>n"],
)
def test_compiled_folds_choose_what_scikit_learns_folds_choose(n, m, knockoffs, dense, monkeypatch):
    """The CV with compiled fold paths and with scikit-learn's chooses the same alphas, so the
    values (the full-data path, scikit-learn's in both) are identical."""
    pytest.importorskip("dataworth.methods.ame.lasso.kernels")
    x, y = _design(n, m, knockoffs=knockoffs, seed=3, dense=dense)
    folds = _folds(m, 10, 0)
    compiled = lasso_cv(x, y, folds, n_alphas=60, n_jobs=2)
    monkeypatch.setattr("dataworth.methods.ame.lasso.folds.compiled_path", lambda: None)
    scikit = lasso_cv(x, y, folds, n_alphas=60, n_jobs=2)
    for a, b in zip(compiled, scikit, strict=True):
        assert a.info["alpha_min"] == b.info["alpha_min"]
        assert a.info["alpha_1se"] == b.info["alpha_1se"]
        assert a.info["cv_mse_min"] == pytest.approx(b.info["cv_mse_min"], rel=1e-4)
        np.testing.assert_array_equal(a.coef_min, b.coef_min)
        np.testing.assert_array_equal(a.coef_1se, b.coef_1se)


def test_compiled_path_counts_alphas_it_could_not_converge():
    pytest.importorskip("dataworth.methods.ame.lasso.kernels")
    x, y = _design(120, 400, knockoffs=False, seed=3, dense=True)
    fits = lasso_cv(x, y, _folds(400, 5, 0), n_alphas=20, max_iter=1, tol=1e-12)
    assert fits[0].info["convergence_warnings"] > 0


def test_fold_grams_do_not_depend_on_blas_threads_and_prepared_equals_inline():
    """The fold Gram matrices have the same bits with one BLAS thread or two (float32 products
    would not), and a design prepared beforehand gives the CV exactly what it forms itself."""
    from threadpoolctl import threadpool_limits

    from dataworth.methods.ame.lasso.cv import prepare_design
    from dataworth.methods.ame.lasso.folds import GRAM_BLOCK

    x, y = _design(150, 600, knockoffs=True, seed=8, dense=False)  # 300 columns
    folds = _folds(600, 10, 2)
    with threadpool_limits(1, user_api="blas"):
        one = prepare_design(x, folds, n_jobs=1)
    with threadpool_limits(2, user_api="blas"):
        two = prepare_design(x, folds, n_jobs=2, limit_blas=False)
    for a, b in zip(one.fold_grams, two.fold_grams, strict=True):
        np.testing.assert_array_equal(a, b)
    val = folds == 3
    exact = x[~val].T @ x[~val]
    np.testing.assert_allclose(one.fold_grams[3], exact, rtol=1e-6, atol=1e-5 * np.abs(exact).max())
    assert GRAM_BLOCK >= 1
    inline = lasso_cv(x, y, folds, n_alphas=30, n_jobs=2)
    ahead = lasso_cv(x, y, folds, n_alphas=30, n_jobs=2, prepared=two)
    for a, b in zip(inline, ahead, strict=True):
        assert a.info == b.info
        np.testing.assert_array_equal(a.coef_min, b.coef_min)
    with pytest.raises(DataworthError, match="another design"):
        lasso_cv(x.copy(), y, folds, prepared=two)


@pytest.mark.parametrize("dense", [True, False], ids=["dense-m>n", "knockoffs-m<n"])
def test_full_path_walked_beside_the_folds_equals_the_refit_after_them(dense, monkeypatch):
    """The full-data path walked block by block during the CV gives the same bits as one
    scikit-learn call on the grid down to the chosen alpha (the refit it replaces); several
    targets' refits on threads give the same bits as one after the other."""
    n, m = (60, 300) if dense else (80, 120)
    x, y = _design(n, m, knockoffs=not dense, seed=4, dense=dense, noise=0.1 if dense else None)
    folds = _folds(m, 5, 1)
    one = y[:, :1]
    beside = lasso_cv(x, one, folds, n_alphas=40, n_jobs=2)
    two = np.column_stack([y[:, 0], 0.5 * y[:, 0] + 0.01 * x[:, 1]])
    threaded = lasso_cv(x, two, folds, n_alphas=40, n_jobs=2)
    monkeypatch.setattr("dataworth.methods.ame.lasso.cv.FULL_PATHS_BYTES", 0)
    after = lasso_cv(x, one, folds, n_alphas=40, n_jobs=2)
    serial = lasso_cv(x, two, folds, n_alphas=40, n_jobs=1)
    for a, b in zip(beside + threaded, after + serial, strict=True):
        assert a.info == b.info
        np.testing.assert_array_equal(a.coef_min, b.coef_min)
        np.testing.assert_array_equal(a.coef_1se, b.coef_1se)
        assert np.count_nonzero(a.coef_min) > 0
