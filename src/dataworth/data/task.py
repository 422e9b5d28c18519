"""The Task: what is being valued (docs/design.md, section 1)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from dataworth.errors import DataworthError


def _frozen(array: np.ndarray, dtype) -> np.ndarray:
    out = np.ascontiguousarray(np.asarray(array, dtype=dtype))
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Task:
    """Training and test rows, already numeric, with labels encoded as ``0..n_classes-1``.

    Parameters
    ----------
    X_train, X_test : ndarray of shape (n, d)
        Preprocessed numeric features (float64).
    y_train, y_test : ndarray of shape (n,)
        Encoded labels (int64), indices into ``class_names``.
    feature_names : tuple of str
        Names of the ``d`` columns after encoding.
    class_names : tuple of str
        Original label of each encoded class.
    train_ids, test_ids : ndarray
        Each row's id in the user's source (row number or index label), so that values can be
        traced back.
    name : str
        A short name for reports.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    train_ids: np.ndarray
    test_ids: np.ndarray
    name: str = "task"
    metadata: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "X_train", _frozen(self.X_train, np.float64))
        set_(self, "X_test", _frozen(self.X_test, np.float64))
        set_(self, "y_train", _frozen(self.y_train, np.int64))
        set_(self, "y_test", _frozen(self.y_test, np.int64))
        set_(self, "train_ids", _frozen(self.train_ids, None))
        set_(self, "test_ids", _frozen(self.test_ids, None))
        set_(self, "feature_names", tuple(str(f) for f in self.feature_names))
        set_(self, "class_names", tuple(str(c) for c in self.class_names))
        if self.X_train.ndim != 2 or self.X_test.ndim != 2:
            raise DataworthError("X_train and X_test must be 2-D arrays (rows x features).")
        if self.X_train.shape[1] != self.X_test.shape[1]:
            raise DataworthError(
                f"X_train has {self.X_train.shape[1]} features but X_test has "
                f"{self.X_test.shape[1]}; give both the same columns."
            )
        if len(self.y_train) != len(self.X_train) or len(self.y_test) != len(self.X_test):
            raise DataworthError("Each of X_train/X_test needs exactly one label per row.")
        if len(self.train_ids) != len(self.X_train) or len(self.test_ids) != len(self.X_test):
            raise DataworthError("train_ids/test_ids need exactly one id per row.")
        if len(self.feature_names) != self.X_train.shape[1]:
            raise DataworthError("feature_names needs exactly one name per column.")
        n_classes = len(self.class_names)
        for y in (self.y_train, self.y_test):
            if len(y) and (y.min() < 0 or y.max() >= n_classes):
                raise DataworthError("Encoded labels must lie in 0..n_classes-1.")
        if not (np.isfinite(self.X_train).all() and np.isfinite(self.X_test).all()):
            raise DataworthError(
                "Features contain NaN or infinite values; impute or drop them first."
            )

    @classmethod
    def from_arrays(
        cls,
        X_train,
        y_train,
        X_test,
        y_test,
        *,
        feature_names=None,
        train_ids=None,
        test_ids=None,
        name: str = "arrays",
    ) -> Task:
        """Build a Task from numeric arrays; labels may be of any type and are encoded here.

        Parameters
        ----------
        X_train, y_train, X_test, y_test : array-like
            Numeric features and labels of the training and test rows.
        feature_names : sequence of str, optional
            Defaults to ``x0, x1, ...``.
        train_ids, test_ids : array-like, optional
            Ids of the rows in the user's source; default ``0..n-1``.
        name : str
            A short name for reports.

        Returns
        -------
        Task
        """
        X_train = np.asarray(X_train, dtype=np.float64)
        X_test = np.asarray(X_test, dtype=np.float64)
        y_train = np.asarray(y_train)
        y_test = np.asarray(y_test)
        classes = np.unique(y_train)
        unseen = np.setdiff1d(np.unique(y_test), classes)
        if unseen.size:
            raise DataworthError(
                f"Test labels {unseen.tolist()} never occur in training; "
                "use a stratified split so every class is in both."
            )
        if feature_names is None:
            feature_names = [f"x{j}" for j in range(X_train.shape[1])]
        return cls(
            X_train=X_train,
            y_train=np.searchsorted(classes, y_train),
            X_test=X_test,
            y_test=np.searchsorted(classes, y_test),
            feature_names=tuple(feature_names),
            class_names=tuple(str(c) for c in classes),
            train_ids=np.arange(len(X_train)) if train_ids is None else np.asarray(train_ids),
            test_ids=np.arange(len(X_test)) if test_ids is None else np.asarray(test_ids),
            name=name,
        )

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def fingerprint(self) -> str:
        """A stable hash of the arrays and names (not of Python object identity)."""
        h = hashlib.sha256()
        for array in (self.X_train, self.y_train, self.X_test, self.y_test):
            h.update(str(array.shape).encode())
            h.update(array.tobytes())
        h.update("\x1f".join(self.feature_names).encode())
        h.update("\x1f".join(self.class_names).encode())
        return h.hexdigest()[:32]

    def subsample_train(self, n_rows: int, seed: int = 0) -> Task:
        """A task with a stratified random subsample of ``n_rows`` training rows.

        The test rows are unchanged and every kept row keeps its source id, so values computed
        on the subsample still trace back to the user's rows.
        """
        from sklearn.model_selection import train_test_split

        if not 2 <= n_rows < self.n_train:
            raise DataworthError(
                f"A training subsample needs between 2 and {self.n_train - 1} rows; got {n_rows}."
            )
        positions = np.arange(self.n_train)
        kept, _ = train_test_split(
            positions, train_size=n_rows, stratify=self.y_train, random_state=seed
        )
        kept = np.sort(kept)
        metadata = dict(self.metadata)
        raw = metadata.get("raw_train")
        if raw is not None:
            metadata["raw_train"] = raw.iloc[kept]
        metadata["subsample_of"] = {"fingerprint": self.fingerprint, "n_train": self.n_train}
        return Task(
            X_train=self.X_train[kept],
            y_train=self.y_train[kept],
            X_test=self.X_test,
            y_test=self.y_test,
            feature_names=self.feature_names,
            class_names=self.class_names,
            train_ids=self.train_ids[kept],
            test_ids=self.test_ids,
            name=f"{self.name} ({n_rows} of {self.n_train} training rows)",
            metadata=metadata,
        )

    def positions_of(self, ids) -> np.ndarray:
        """Training positions of the given source ids, with a clear error for unknown ids."""
        lookup = {str(v): i for i, v in enumerate(self.train_ids.tolist())}
        positions, missing = [], []
        for v in np.atleast_1d(np.asarray(ids, dtype=object)).tolist():
            pos = lookup.get(str(v))
            (missing.append(v) if pos is None else positions.append(pos))
        if missing:
            shown = ", ".join(str(m) for m in missing[:5])
            raise DataworthError(
                f"Id(s) {shown} are not training rows; pick ids from the training split "
                "(see train_ids in the run folder)."
            )
        return np.asarray(positions, dtype=np.int64)
