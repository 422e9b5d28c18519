"""Parts 2 and 3 of the report: exact leave-one-out influence of the chosen points, and
leave-group-out influence of the groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from dataworth.methods.diagnostics import (
    EXTREME_Z,
    LOW_AGREEMENT,
    LOW_OWN_PROBA,
    NEIGHBOURS,
    OUTLIER_TOP_SHARE,
    summarize_unusual,
)
from dataworth.methods.result import ValuationResult
from dataworth.report.load import RunData
from dataworth.report.model import (
    Bullets,
    Heading,
    Paragraph,
    Section,
    Table,
    fmt,
    pct,
)
from dataworth.report.sections.parts import (
    _figure,
    _metric,
    _not_run,
    _sign_sentence,
    _thumbnails,
)


def loo_table(run: RunData, result: ValuationResult) -> pd.DataFrame:
    """The LOO values (from ``loo.parquet``) joined with their diagnostics (``loo_table.csv``)."""
    frame = result.to_frame()[["player_id", "value"]]
    diagnostics = run.csv("loo_table.csv")
    if diagnostics is None:
        return frame
    diagnostics = diagnostics.drop(columns=["value"], errors="ignore")
    # Ids are text in Parquet and may be numbers in CSV: join on their text.
    frame = frame.assign(key=frame["player_id"].astype(str))
    diagnostics = diagnostics.assign(key=diagnostics["player_id"].astype(str)).drop(
        columns="player_id"
    )
    merged = frame.merge(diagnostics, on="key", how="left").drop(columns="key")
    if "flags" in merged:
        merged["flags"] = merged["flags"].fillna("").astype(str)
    return merged


def loo_section(run: RunData) -> Section:
    """Exact LOO of the chosen points, the diagnostics, and what stands out."""
    section = Section("loo", "Leave-one-out influence", "Part 2")
    result = run.results.get("loo")
    if result is None:
        return _not_run(section, "Leave-one-out", "no loo.parquet")
    full = result.manifest.get("full_score")
    chosen = "chosen at random" if "points" in result.params else "chosen by id"
    section.add(
        Paragraph(
            f"Exact leave-one-out influence `loo(i) = U(D) - U(D without i)` of "
            f"{len(result)} training points ({chosen}, seed {fmt(result.seed)}) on "
            f"`{result.manifest.get('metric', _metric(run))}`, with U(D) = {fmt(full)}: "
            f"{fmt(result.n_evaluations)} evaluations, {fmt(result.n_fallback)} scored by the "
            "fallback model. A positive value means the point helps the metric."
        )
    )
    table = loo_table(run, result)
    columns = [
        c
        for c in (
            "player_id",
            "label",
            "value",
            "neighbour_agreement",
            "own_label_proba",
            "outlier_rank",
            "max_abs_z",
            "n_duplicates",
            "flags",
            "extreme_features",
        )
        if c in table
    ]
    section.add(
        Table(
            "loo",
            table[columns],
            "LOO influence of each valued point and the diagnostics of whether it is unusual.",
            "loo.parquet, loo_table.csv",
            headers={
                "player_id": "id",
                "value": "LOO",
                "neighbour_agreement": "neighbour agreement",
                "own_label_proba": "P(own label)",
                "outlier_rank": "outlier rank",
                "max_abs_z": "max |z|",
                "n_duplicates": "duplicates",
                "extreme_features": "most extreme features",
            },
        ),
        *_figure(run, "loo", "LOO influence per point, sorted; flagged points in red."),
        *_thumbnails(run, "loo", "exact LOO"),
    )
    section.add(Heading("Are the influential points unusual?"))
    n_train = (run.data or {}).get("n_train")
    section.add(
        Paragraph(
            f"Each point is checked five ways: the share of its {NEIGHBOURS} nearest training "
            f"neighbours with its label (flagged below {pct(LOW_AGREEMENT, 0)}), the "
            f"probability the full-data model gives its own label (flagged below "
            f"{fmt(LOW_OWN_PROBA)}), its local-outlier-factor rank among all "
            f"{fmt(n_train)} training points (flagged in the top {pct(OUTLIER_TOP_SHARE, 0)}), "
            f"its largest feature z-score (flagged from {fmt(EXTREME_Z)}), and exact duplicates."
        )
    )
    values = result.values
    section.add(Paragraph(_sign_sentence(values, "LOO values")))
    if {"flags", "neighbour_agreement", "own_label_proba", "outlier_rank", "label"} <= set(table):
        section.add(Bullets(tuple(summarize_unusual(values, table))))
    everyone = run.results.get("loo_all")
    if everyone is not None:
        section.add(Paragraph(_rank_sentence(result, everyone)))
    return section


def _rank_sentence(chosen: ValuationResult, everyone: ValuationResult) -> str:
    """Where the chosen points' |LOO| rank among the LOO values of all training points."""
    order = np.argsort(-np.abs(everyone.values), kind="stable")
    rank = {str(everyone.player_ids[i]): r + 1 for r, i in enumerate(order)}
    ranks = sorted(rank[str(p)] for p in chosen.player_ids if str(p) in rank)
    return (
        f"Against the LOO values of all {len(everyone)} training points (computed for the "
        f"comparison with Shapley), the valued points rank {', '.join(map(str, ranks))} by "
        f"absolute influence (1 = largest); the largest |LOO| of all points is "
        f"{fmt(float(np.abs(everyone.values).max()))}."
    )


def groups_section(run: RunData) -> Section:
    """Leave-group-out influence of the groups, and its size plot."""
    section = Section("groups", "Group influence", "Part 3")
    result = run.results.get("groups")
    if result is None:
        return _not_run(section, "Leave-group-out", "no groups.parquet")
    by = run.setting("valuation", "group_by", "random")
    if by == "random":
        how = (
            "random groups whose sizes are the shares "
            + ", ".join(fmt(f) for f in run.setting("valuation", "group_fractions", []))
            + " of the training set, each drawn independently"
        )
    else:
        how = f"groups built by `{by}`"
    full = result.manifest.get("full_score")
    section.add(
        Paragraph(
            f"{len(result)} {how} (seed {fmt(run.setting('study', 'seed'))}). For each group G, "
            f"the exact leave-group-out influence is `U(D) - U(D without G)`, with U(D) = "
            f"{fmt(full)}: {fmt(result.n_evaluations)} evaluations, {fmt(result.n_fallback)} "
            "scored by the fallback model."
        )
    )
    frame = result.to_frame()
    columns = [c for c in ("player_id", "size", "fraction", "value") if c in frame]
    section.add(
        Table(
            "groups",
            frame[columns],
            "Leave-group-out influence of each group.",
            "groups.parquet",
            headers={"player_id": "group", "value": "influence"},
        ),
        *_figure(run, "group_size", "Group size against leave-group-out influence."),
    )
    sentences = []
    if "size" in frame and len(frame) > 2 and frame["value"].nunique() > 1:
        rho = spearmanr(frame["size"], frame["value"]).statistic
        sentences.append(
            f"The Spearman rank correlation between group size and influence is {fmt(rho, 3)}."
        )
    biggest = frame.loc[frame["value"].idxmax()]
    sentences.append(
        f"The most influential group is `{biggest['player_id']}` ({fmt(biggest.get('size'))} "
        f"points) with {fmt(biggest['value'])}."
    )
    if "fraction" in frame and (frame["fraction"] >= 1).any():
        whole = frame.loc[frame["fraction"] >= 1].iloc[0]
        sentences.append(
            f"Removing the whole training set (`{whole['player_id']}`) leaves the empty set, "
            "scored by the prior-only fallback model, so its influence "
            f"{fmt(whole['value'])} is U(D) minus the score of that prior."
        )
    negative = frame.loc[frame["value"] < 0, "player_id"].tolist()
    sentences.append(
        "No group has a negative influence."
        if not negative
        else "Groups whose removal improves the metric: "
        + ", ".join(f"`{g}`" for g in negative)
        + "."
    )
    return section.add(Paragraph(" ".join(sentences)))
