"""The study budget as a reader sees it: one table row per method and one sentence.

Shared by the report, the summary and the terminal; it reads the budget's dictionary form (as
written to ``budget.json``), so the report needs nothing from the study layer.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def budget_frame(budget: Any) -> pd.DataFrame:
    """One row per method: estimated, allotted and actual seconds, and what it valued.

    Accepts the study's budget or its ``to_dict()`` (as read back from ``budget.json``).
    """
    data = budget if isinstance(budget, dict) else budget.to_dict()
    rows = []
    for m in data["methods"]:
        rows.append(
            {
                "method": m["label"],
                "estimated_seconds": m["estimate"],
                "allotted_seconds": m["allotted"] if m["run"] else None,
                "actual_seconds": m.get("actual"),
                "valued": m.get("valued") or m["note"],
            }
        )
    return pd.DataFrame(rows, columns=list(_FRAME_COLUMNS))


_FRAME_COLUMNS = ("method", "estimated_seconds", "allotted_seconds", "actual_seconds", "valued")


def budget_sentence(budget: Any) -> str:
    """One sentence: the budget, what the steps before valuation took, and the reserve."""
    data = budget if isinstance(budget, dict) else budget.to_dict()
    return (
        f"Budget {data['budget_seconds']:g} s for the whole study: data, baseline and cost "
        f"study took {data['spent_seconds']:.1f} s, {data['reserve_seconds']:.0f} s were kept "
        "for the summary and report, and the valuation methods shared the rest. Estimates come "
        "from the path each method takes; TMC stops by the clock at its share."
    )
