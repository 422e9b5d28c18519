"""AME's subsets: which scores are explained, and drawing, evaluating and journaling the subsets.

The draws come from :class:`~dataworth.methods.sampler.SubsetSampler`; this module evaluates them
block by block through the game (whose store caches every ``U(S)``) and journals the finished
blocks so that an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from dataworth.errors import DataworthError
from dataworth.methods.sampler import SubsetSampler

ProgressCallback = Callable[[int, int], None]
Target = str | int | Sequence[int]

# Subsets are drawn, evaluated and journaled this many at a time: small enough that an
# interrupted run loses little, large enough that a batched learner fits whole chunks.
_BLOCK = 256
# Bumped whenever the sampler's stream layout changes, so a journal of an older design is
# never mistaken for the current one.
_DESIGN_VERSION = 1


# -- targets -----------------------------------------------------------------------------------


def _resolve_target(game, target: Target) -> tuple[list, bool]:
    """The list of target keys and whether per-prediction scores are needed."""
    if isinstance(target, str):
        if target == "metric":
            return ["metric"], False
        if target == "all-test":
            task = getattr(game, "task", None)
            if task is None:
                raise DataworthError("target='all-test' needs a Utility with test rows.")
            return list(range(task.n_test)), True
        raise DataworthError(
            f"Unknown target {target!r}; use 'metric', 'all-test', a test row or a list of rows."
        )
    rows = [target] if np.isscalar(target) else list(target)
    if not rows:
        raise DataworthError("Give at least one test row as the target.")
    task = getattr(game, "task", None)
    if task is None:
        raise DataworthError("Test-row targets need a Utility (a plain Game has no test rows).")
    out = []
    for row in rows:
        if isinstance(row, bool) or not isinstance(row, int | np.integer):
            raise DataworthError(f"Test rows are integer positions; got {row!r}.")
        if not 0 <= int(row) < task.n_test:
            raise DataworthError(f"Test row {row} does not exist; rows are 0..{task.n_test - 1}.")
        out.append(int(row))
    return out, True


# -- the design and its evaluation -------------------------------------------------------------


@dataclass
class _Evaluated:
    p: np.ndarray
    masks: np.ndarray
    y: np.ndarray  # (m, T)
    n_fitted: int = 0
    n_fallback: int = 0
    resumed: int = 0
    stopped_early: bool = False  # the deadline passed before all m samples were fitted


def _run_key(method: str, game, sampler: SubsetSampler, seed: int) -> str:
    text = json.dumps(
        {
            "method": method,
            "utility": game.fingerprint,
            "n": sampler.n_players,
            "law": sampler.law.describe(),
            "seed": seed,
            "design": _DESIGN_VERSION,
        },
        sort_keys=True,
    )
    return "ame-design:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _evaluate_design(
    game,
    sampler: SubsetSampler,
    seed: int,
    m: int,
    per_prediction: bool,
    columns: list,
    method: str,
    progress: ProgressCallback | None,
    predrawn: Callable[[int, int], tuple[np.ndarray, np.ndarray] | None] | None = None,
    deadline: float | None = None,
) -> _Evaluated:
    """Draw samples ``0 .. m-1`` block by block, evaluate them, journal the finished blocks.

    ``predrawn(start, stop)``, when given, may return a block already drawn by ``sampler`` (the
    design built ahead draws them too: :mod:`dataworth.methods.ame.design_ahead`).

    ``deadline`` (a :func:`time.perf_counter` time) stops the fits after the first block that
    ends past it, once :data:`_BLOCK` samples are in: the samples kept are ``0 .. m'-1``,
    exactly those of a run asked for ``m'`` subsets (each sample is a pure function of the
    seed and its index).

    The utility's store caches every ``U(S)``, so a resumed or extended run refits nothing it
    has already fitted; the journal records which sample blocks are done with a digest of their
    subsets, so a design that changed under the same key is reported instead of mixed in.
    """
    store = getattr(game, "store", None)
    journal = store is not None and getattr(game, "fingerprint", None) is not None
    key = _run_key(method, game, sampler, seed) if journal else ""
    done: dict[tuple[int, int], str] = {}
    if journal:
        for item in store.journal_items(key):
            done[(int(item["start"]), int(item["stop"]))] = item["digest"]
    ps, masks_all, ys = [], [], []
    n_fitted = n_fallback = resumed = 0
    stopped_early = False
    for start in range(0, m, _BLOCK):
        stop = min(m, start + _BLOCK)
        block = predrawn(start, stop) if predrawn is not None else None
        p, masks = block if block is not None else sampler.draw(seed, start, stop)
        digest = hashlib.sha256(p.tobytes() + np.packbits(masks).tobytes()).hexdigest()[:16]
        previous = done.get((start, stop))
        if previous is not None and previous != digest:
            raise DataworthError(
                f"The journal of this run holds different subsets for samples {start}..{stop - 1};"
                " the store was written by another version of the sampler. Use a new store."
            )
        ev = game.evaluate(masks, per_prediction=per_prediction)
        if per_prediction:
            ys.append(ev.per_prediction[:, columns])
        else:
            ys.append(ev.scores[:, None])
        ps.append(p)
        masks_all.append(masks)
        n_fitted += ev.n_fitted
        n_fallback += ev.n_fallback
        if previous is not None:
            resumed += stop - start
        elif journal:
            store.journal_append(key, {"start": start, "stop": stop, "digest": digest})
            drawn = max(stop, (store.journal_get(key) or {}).get("drawn", 0))
            store.journal_put(key, {"drawn": drawn, "seed": seed, "law": sampler.law.describe()})
        if progress is not None:
            progress(stop, m)
        if deadline is not None and stop < m and stop >= _BLOCK and perf_counter() >= deadline:
            stopped_early = True
            break
    y = np.concatenate(ys, axis=0).astype(np.float64) if ys else np.empty((0, len(columns)))
    if not np.isfinite(y).all():
        raise DataworthError("The utility returned non-finite values; AME needs finite scores.")
    return _Evaluated(
        np.concatenate(ps),
        np.concatenate(masks_all, axis=0),
        y,
        n_fitted,
        n_fallback,
        resumed,
        stopped_early,
    )
