"""Is a valuation any good? Quality measures, removal curves, agreement, and a method ranking.

The field judges a valuation by what it predicts. This package makes those checks a feature:

- :func:`detection_scores`: how well low values flag rows whose label was flipped on purpose
  (ROC AUC, average precision, F1 of the lower two-means cluster, recall at the bottom 10%);
- :func:`removal_curves`: the test metric after removing the highest- or lowest-valued rows,
  refitted through the engine, against random removal, with the areas between the curves;
- :func:`agreement_table` and :func:`exact_agreement`: rank agreement between methods, and with
  exact Shapley values on a task small enough to enumerate;
- :func:`evaluate_methods`: every method of the product on one task, ranked in one table.

Examples
--------
>>> import dataworth as dw
>>> from dataworth.evaluate import evaluate_methods
>>> task = dw.load_dataset("breast_cancer", rows=200, flip=0.1, seed=0)
>>> report = evaluate_methods(task, ["loo", "knn_shapley"], exact_players=None)
>>> sorted(report.results)
['knn_shapley', 'loo']
"""

from dataworth.evaluate.agreement import (
    EXACT_MAX_PLAYERS,
    agreement_table,
    exact_agreement,
    tiny_task,
)
from dataworth.evaluate.curves import DEFAULT_FRACTIONS, RemovalCurves, curve_area, removal_curves
from dataworth.evaluate.measures import (
    average_precision,
    detection_scores,
    flipped_mask,
    low_value_order,
    recall_at,
    roc_auc,
    two_means_f1,
    two_means_split,
)
from dataworth.evaluate.runner import METHODS, QualityReport, Settings, evaluate_methods

__all__ = [
    "DEFAULT_FRACTIONS",
    "EXACT_MAX_PLAYERS",
    "METHODS",
    "QualityReport",
    "RemovalCurves",
    "Settings",
    "agreement_table",
    "average_precision",
    "curve_area",
    "detection_scores",
    "evaluate_methods",
    "exact_agreement",
    "flipped_mask",
    "low_value_order",
    "recall_at",
    "removal_curves",
    "roc_auc",
    "tiny_task",
    "two_means_f1",
    "two_means_split",
]
