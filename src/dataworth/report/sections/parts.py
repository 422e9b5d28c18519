"""Small pieces the report's sections share: a figure when it was saved, a "not run" note, the
primary metric's name, a sentence on the signs of values, and parameters as text."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from dataworth.report.load import RunData
from dataworth.report.model import (
    Figure,
    Paragraph,
    Section,
    fmt,
)


def _figure(run: RunData, stem: str, caption: str) -> list[Figure]:
    """A figure block when the study saved that figure, else nothing."""
    return [Figure(stem, caption)] if run.figure(stem) is not None else []


def _thumbnails(run: RunData, stem: str, what: str) -> list[Figure]:
    """On image data, the thumbnails of the training images ``what`` values lowest."""
    return _figure(
        run,
        f"{stem}_thumbs",
        f"The training images {what} values lowest (the rows it flags as harmful), lowest first, "
        "each with its id, label and value.",
    )


def _not_run(section: Section, what: str, why: str) -> Section:
    return section.add(Paragraph(f"{what} was not run in this study ({why})."))


def _metric(run: RunData) -> str:
    if run.baseline is not None:
        return run.baseline["primary_metric"]["name"]
    for result in run.results.values():
        if "metric" in result.manifest:
            return result.manifest["metric"]
    clean = run.folder / "clean.json"  # a `dataworth clean` run folder has no baseline
    if clean.exists():
        return json.loads(clean.read_text(encoding="utf-8")).get("metric", "the metric")
    return "the metric"


def _sign_sentence(values: np.ndarray, what: str) -> str:
    positive, negative = int((values > 0).sum()), int((values < 0).sum())
    zero = len(values) - positive - negative
    text = (
        f"Of the {len(values)} {what}, {positive} are positive, {negative} negative and {zero} "
        f"exactly zero; they range from {fmt(values.min())} to {fmt(values.max())}."
    )
    if zero:
        text += (
            " A value of exactly zero means removing the point left every test prediction "
            "unchanged to machine precision."
        )
    return text


def _params_text(params: dict) -> str:
    return "; ".join(f"{k} = {_param(v)}" for k, v in params.items() if v is not None)


def _param(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value, 6)
    if isinstance(value, dict):
        return "{" + _params_text(value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_param(v) for v in value) + "]"
    return str(value)
