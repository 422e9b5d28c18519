"""The degenerate-subset policy: prior-only, add-one smoothing, ties to the full-data majority."""

from __future__ import annotations

import numpy as np

from dataworth.learners.degenerate import class_preference, is_degenerate, prior_predictions


def test_empty_set_is_uniform_and_predicts_the_majority():
    y = np.array([0, 1, 1, 2, 1, 0])  # majority class 1
    proba, labels = prior_predictions(y, np.zeros((1, 6), bool), n_classes=3, n_test=4)
    np.testing.assert_allclose(proba, np.full((1, 4, 3), 1 / 3))
    assert (labels == 1).all()


def test_single_class_subset_is_smoothed():
    y = np.array([0, 0, 1, 1, 1])
    mask = np.array([[True, True, False, False, False]])
    proba, labels = prior_predictions(y, mask, n_classes=2, n_test=2)
    np.testing.assert_allclose(proba[0, 0], [3 / 4, 1 / 4])  # (2+1)/(2+2), (0+1)/(2+2)
    assert (labels == 0).all()


def test_ties_go_to_first_of_equally_frequent_classes():
    y = np.array([2, 2, 1, 1, 0])  # classes 1 and 2 tie for the majority: class 1 comes first
    assert class_preference(y, 3)[0] == 1
    _, labels = prior_predictions(y, np.zeros((1, 5), bool), n_classes=3, n_test=1)
    assert labels[0, 0] == 1


def test_is_degenerate():
    y = np.array([0, 0, 1])
    masks = np.array([[0, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1]], bool)
    np.testing.assert_array_equal(is_degenerate(y, masks, 2), [True, True, False, False])
