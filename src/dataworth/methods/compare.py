"""How two valuations of the same players agree: rank correlations and top/bottom overlap."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import kendalltau, spearmanr

from dataworth.errors import DataworthError
from dataworth.methods.result import ValuationResult


def compare_values(a: ValuationResult, b: ValuationResult, *, share: float = 0.1) -> dict:
    """Agreement of two results on the players they share.

    Parameters
    ----------
    a, b : ValuationResult
        Two valuations; players are matched by id.
    share : float, default=0.1
        Size of the top and bottom sets whose overlap is reported.

    Returns
    -------
    dict
        ``n_common``, ``spearman``, ``kendall``, ``top_overlap`` and ``bottom_overlap`` (the
        share of ``a``'s top/bottom players that are also in ``b``'s), and ``k`` (their size).
    """
    ids_a = [str(i) for i in a.player_ids]
    position_b = {str(i): j for j, i in enumerate(b.player_ids)}
    common = [(i, position_b[pid]) for i, pid in enumerate(ids_a) if pid in position_b]
    if len(common) < 2:
        raise DataworthError("The two results share fewer than two players; nothing to compare.")
    ia, ib = (np.array(x) for x in zip(*common, strict=True))
    va, vb = a.values[ia], b.values[ib]
    k = max(1, math.ceil(share * len(common)))
    top_a, top_b = set(np.argsort(-va, kind="stable")[:k]), set(np.argsort(-vb, kind="stable")[:k])
    bot_a, bot_b = set(np.argsort(va, kind="stable")[:k]), set(np.argsort(vb, kind="stable")[:k])
    constant = np.ptp(va) == 0 or np.ptp(vb) == 0
    return {
        "n_common": len(common),
        "spearman": math.nan if constant else float(spearmanr(va, vb).statistic),
        "kendall": math.nan if constant else float(kendalltau(va, vb).statistic),
        "k": k,
        "top_overlap": len(top_a & top_b) / k,
        "bottom_overlap": len(bot_a & bot_b) / k,
    }
