"""AME's regression design and its Gram matrices, built on a second thread while the subsets are
being fitted.

The design (the encoded, centred memberships), ``x'x`` and each CV fold's ``x'x`` depend on the
drawn subsets alone, not on any utility, and the subsets are a pure function of the seed and the
sample index. So they can be computed before the fits end (and Numba's compiled LASSO path
loaded, about a second in a fresh process): on the 2,000-row task with 4,000
subsets that is about a fifth of the estimation step, on a core the single-threaded fits leave
idle. The fits decide nothing here: the design built ahead is used only if its subsets are the
ones the fits measured (they always are, unless the sampler changed in between), and any failure
ahead is left for the ordinary path to meet and report.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from dataworth.methods.ame.encoding import _centre, _design, _p_strata
from dataworth.methods.ame.lasso.cv import PreparedDesign, prepare_design
from dataworth.methods.ame.lasso.paths import warm_up_compiled_path
from dataworth.methods.ame.regression import _folds
from dataworth.methods.sampler import SubsetSampler


@dataclass
class BuiltDesign:
    """The centred design, its strata, and the CV's Gram matrices (None below two folds)."""

    x: np.ndarray
    strata: np.ndarray
    prepared: PreparedDesign | None


class DesignAhead:
    """Builds AME's design for samples ``0 .. m-1`` on its own thread from construction on.

    Parameters
    ----------
    sampler : SubsetSampler
    seed, m : int
    config
        AME's configuration (law, ``p_bins``, ``fdr``, encoding, ``cv``).
    block : int
        Samples drawn per call, as the fits draw them.
    """

    def __init__(self, sampler: SubsetSampler, seed: int, m: int, config, block: int) -> None:
        self._drawn: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ame-design")
        self._future = pool.submit(_build, sampler, seed, m, config, block, self._drawn)
        pool.shutdown(wait=False)

    def drawn(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Samples ``start .. stop-1`` as ``(p, masks)`` if this thread has drawn them already
        (the fits then need not draw them again; the arrays are shared, read-only)."""
        return self._drawn.get((start, stop))

    def result(self, p: np.ndarray, masks: np.ndarray) -> BuiltDesign | None:
        """The design, if it was built from exactly these subsets; else None."""
        try:
            built_p, built_masks, built = self._future.result()
        except Exception:  # the ordinary path meets the failure again and reports it
            return None
        if not (np.array_equal(built_p, p) and np.array_equal(built_masks, masks)):
            return None
        return built

    def cancel(self) -> None:
        """Drop the work if it has not started (a started build runs to its end and is freed)."""
        self._future.cancel()


def _build(sampler: SubsetSampler, seed: int, m: int, config, block: int, drawn: dict):
    draws = []
    for start in range(0, m, block):
        stop = min(m, start + block)
        draws.append(sampler.draw(seed, start, stop))
        for array in draws[-1]:
            array.flags.writeable = False
        drawn[(start, stop)] = draws[-1]  # one assignment: atomic for the reading thread
    if config.cv >= 2:
        warm_up_compiled_path()
    p = np.concatenate([d[0] for d in draws]) if draws else np.empty(0)
    masks = np.concatenate([d[1] for d in draws]) if draws else np.empty((0, sampler.n_players))
    strata = _p_strata(p, config.law, config.p_bins)
    knock = sampler.knockoffs(seed, p, 0) if config.fdr is not None else None
    x = _centre(_design(masks, knock, p, config.encoding), strata)
    del knock
    k = min(config.cv, m)
    # BLAS's thread limit is process-wide and the fits set it: leave it alone from here.
    prepared = prepare_design(x, _folds(m, k, seed), limit_blas=False) if k >= 2 else None
    return p, masks, BuiltDesign(x, strata, prepared)
