"""Data-OOB: each point's out-of-bag score in a bagged ensemble of trees.

Kwon and Zou, "Data-OOB: Out-of-bag Estimate as a Simple and Efficient Data Value", ICML 2023.

* ``oob``: the method (:func:`data_oob`).
* ``bagged``: the bagged decision trees grown by compiled kernels, the features sorted once.
* ``forest_bags``: the same bags grown as scikit-learn random forests (the fallback).
* ``kernels``: the compiled CART kernels (imported only when Numba is installed).
"""

from __future__ import annotations

from dataworth.methods.trees.oob import TREES_MIN_ROWS, bootstrap_counts, data_oob

__all__ = ["TREES_MIN_ROWS", "bootstrap_counts", "data_oob"]
