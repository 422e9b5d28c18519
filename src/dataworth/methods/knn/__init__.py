"""Exact Shapley values of the k-nearest-neighbour utility in closed form.

Jia, Dao, Wang, Hubis, Gurel, Li, Zhang, Spanos and Song, "Efficient Task-Specific Data
Valuation for Nearest Neighbor Algorithms", VLDB 2019.

* ``shapley``: the method (:func:`knn_shapley`) and its per-test-point matrix.
* ``kernels``: the compiled recursion (imported only when Numba is installed).
"""

from __future__ import annotations

from dataworth.methods.knn.shapley import knn_shapley, knn_shapley_matrix

__all__ = ["knn_shapley", "knn_shapley_matrix"]
