"""Shared fixtures: small real tasks built straight from scikit-learn's bundled datasets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from dataworth import Task


def _task(loader, n_train: int, seed: int = 0, name: str = "t") -> Task:
    X, y = loader(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, train_size=n_train, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(X_tr)
    return Task.from_arrays(scaler.transform(X_tr), y_tr, scaler.transform(X_te), y_te, name=name)


@pytest.fixture(scope="session")
def cancer_small() -> Task:
    """Breast cancer, 60 training rows: binary, fast to refit."""
    return _task(load_breast_cancer, 60, name="breast_cancer_60")


@pytest.fixture(scope="session")
def cancer_400() -> Task:
    """Breast cancer with 400 training rows, the course-sized task."""
    return _task(load_breast_cancer, 400, name="breast_cancer_400")


@pytest.fixture(scope="session")
def wine_small() -> Task:
    """Wine, 60 training rows: three classes."""
    return _task(load_wine, 60, name="wine_60")


@pytest.fixture(scope="session")
def iris_small() -> Task:
    return _task(load_iris, 45, name="iris_45")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _progress_lines_held(monkeypatch) -> None:
    """Hold the CLI's progress lines back for the whole of each test.

    Outside a terminal the CLI prints progress lines once its quiet time (2 s) has passed. On a
    loaded test machine loading data alone can take that long, and the lines would then come
    before an error that tests expect to be the only line. Tests about the lines set it back.
    """
    from dataworth.study import progress_lines

    monkeypatch.setattr(progress_lines, "QUIET", 3600.0)
