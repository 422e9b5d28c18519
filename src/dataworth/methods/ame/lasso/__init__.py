"""AME's cross-validated LASSO (Tibshirani 1996), solved on Gram matrices for many folds at once.

* ``cv``: the cross-validated paths over one Gram matrix, many folds and targets together.
* ``folds``: each fold's float32 problem and the walks down the grid of penalties.
* ``kernels``: the compiled coordinate-descent path (imported only when Numba is installed).
* ``paths``: scikit-learn's LASSO path as the CV calls it, and the compiled path's loader.
* ``working``: the LASSO at one penalty on a working set of columns, checked on the rest.
"""
