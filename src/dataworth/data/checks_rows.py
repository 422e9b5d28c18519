"""Data checks on the rows: copies inside the training set, and copies across the split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dataworth.data.findings import Finding, _plain

# Share of training rows in duplicate groups above which duplicates are a warning: a few
# repeated rows are common in real data (Fisher's Iris has one pair), many suggest a join or a
# concatenation went wrong.
DUPLICATE_WARNING_SHARE = 0.10
# Share of test rows that are copies of training rows above which the overlap is a warning:
# the copies can raise an accuracy by up to their share of the test rows.
OVERLAP_WARNING_SHARE = 0.05


def _row_keys(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of all its cells (missing values included)."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _duplicate_findings(frame: pd.DataFrame, train: np.ndarray, test: np.ndarray) -> list[Finding]:
    """Identical rows (features and label) inside training, and in both training and test."""
    findings = []
    keys = _row_keys(frame)
    ids = frame.index.to_numpy()
    train_keys = pd.Series(keys[train], index=ids[train])
    repeated = train_keys[train_keys.duplicated(keep=False)]
    if len(repeated):
        groups = [
            tuple(_plain(v) for v in g.index) for _, g in repeated.groupby(repeated, sort=False)
        ]
        share = len(repeated) / len(train)
        shown = ", ".join("(" + ", ".join(map(str, g)) + ")" for g in groups[:3])
        more = f" and {len(groups) - 3} more" if len(groups) > 3 else ""
        findings.append(
            Finding(
                check="duplicate_rows",
                severity="warning" if share >= DUPLICATE_WARNING_SHARE else "info",
                columns=(),
                message=(
                    f"{len(repeated)} training rows ({share:.1%}) are exact copies of one "
                    f"another, in {len(groups)} group(s) of ids: {shown}{more}; remove the "
                    "copies unless they are real repeated observations."
                ),
                meaning=(
                    "Copies share their value: removing one copy barely changes the model while "
                    "the other remains, so leave-one-out values of copies are near zero and "
                    "Shapley values split between them (the LOO table flags each copy and "
                    "counts them in its duplicates column)."
                ),
                rows=tuple(groups),
            )
        )
    in_train = np.isin(keys[test], keys[train])
    if in_train.any():
        share = float(in_train.mean())
        overlap = tuple(_plain(v) for v in ids[test][in_train])
        shown = ", ".join(map(str, overlap[:8])) + (" ..." if len(overlap) > 8 else "")
        findings.append(
            Finding(
                check="train_test_overlap",
                severity="warning" if share >= OVERLAP_WARNING_SHARE else "info",
                columns=(),
                message=(
                    f"{len(overlap)} test rows ({share:.1%} of the test set) are exact copies of "
                    f"training rows (test ids {shown}); remove the copies before splitting, or "
                    "split with --split group:COLUMN on what they share."
                ),
                meaning=(
                    "A model scores well on a test row it saw in training, so every score, and "
                    "the value of the training copies, is inflated."
                ),
                rows=overlap,
            )
        )
    return findings
