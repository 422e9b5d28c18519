"""The evaluation store: an embedded SQLite database that caches utilities and journals progress.

Two jobs share one file in the run folder (docs/design.md, section 3):

* a cache of ``U(S)``, keyed by the utility's fingerprint and the subset key
  (:func:`dataworth.engine.hashing.subset_key`), holding the score, optionally the per-prediction
  vector, and whether the degenerate-subset policy produced the value;
* a journal of each method's progress: one JSON state per run key, plus an append-only list of
  JSON items (e.g. "permutation 7 done, with these marginals").

Every write is one transaction, so a crash loses at most the batch in flight. The engine writes
from the main process only; the file is in WAL mode with a busy timeout so that a second process
opening it (a ``report`` while a run goes on, say) neither corrupts it nor fails at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataworth.errors import DataworthError

#: Version of the tables below. A store written with a newer schema is refused, not guessed at.
SCHEMA_VERSION = 1

# Stored in the SQLite header (PRAGMA application_id) so that `file(1)` and this module can tell a
# dataworth store from any other SQLite database. The bytes spell "DWST".
_APPLICATION_ID = 0x44575354

# How long a connection waits for a lock held by another process before giving up, in seconds.
_BUSY_TIMEOUT_S = 30.0

# Keys per `IN (...)` query. SQLite builds before 3.32 allow at most 999 bound parameters.
_QUERY_CHUNK = 900

# Per-prediction vectors are stored as little-endian float64 whatever the host's byte order, so a
# store can move between machines.
_VECTOR_DTYPE = np.dtype("<f8")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    fingerprint    TEXT    NOT NULL,
    subset         BLOB    NOT NULL,
    score          REAL,             -- NULL encodes NaN: SQLite has no NaN and stores it as NULL
    per_prediction BLOB,             -- little-endian float64, or NULL when not computed
    fallback       INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, subset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal_state (
    run_key TEXT PRIMARY KEY,
    state   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_items (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key TEXT NOT NULL,
    item    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_items_by_run ON journal_items (run_key, id);
"""


@dataclass(frozen=True)
class StoredEvaluation:
    """One cached utility value.

    Attributes
    ----------
    score : float
        The utility ``U(S)``.
    per_prediction : ndarray of shape (n_test,) or None
        The per-test-point values the score aggregates, when they were computed.
    fallback : bool
        True when the degenerate-subset policy, not the learner, produced the value.
    """

    score: float
    per_prediction: np.ndarray | None = None
    fallback: bool = False


Row = tuple[bytes, StoredEvaluation] | tuple[bytes, float, np.ndarray | None, bool]


def _json_default(obj: Any) -> Any:
    # Journals naturally hold numpy values (marginals, counters); store them as plain JSON.
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"Object of type {type(obj).__name__} cannot be written to the journal")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _encode_row(fingerprint: str, row: Any) -> tuple[str, bytes, float | None, bytes | None, int]:
    """Turn one ``put_many`` row into the parameters of the upsert."""
    if len(row) == 2:
        key, ev = row
        if not isinstance(ev, StoredEvaluation):
            raise TypeError(f"expected (key, StoredEvaluation), got (key, {type(ev).__name__})")
        score, per_prediction, fallback = ev.score, ev.per_prediction, ev.fallback
    elif len(row) == 4:
        key, score, per_prediction, fallback = row
    else:
        raise TypeError(
            "each row must be (key, StoredEvaluation) or (key, score, vector, fallback)"
        )
    if not isinstance(key, bytes | bytearray | memoryview):
        raise TypeError(f"subset keys must be bytes, got {type(key).__name__}")
    score = float(score)
    blob = None
    if per_prediction is not None:
        vec = np.asarray(per_prediction, dtype=_VECTOR_DTYPE)
        if vec.ndim != 1:
            raise ValueError(f"per_prediction must be one-dimensional, got shape {vec.shape}")
        blob = vec.tobytes()
    return (
        fingerprint,
        bytes(key),
        (None if math.isnan(score) else score),
        blob,
        int(bool(fallback)),
    )


def _decode(score: float | None, blob: bytes | None, fallback: int) -> StoredEvaluation:
    vec = None if blob is None else np.frombuffer(blob, dtype=_VECTOR_DTYPE).astype(np.float64)
    return StoredEvaluation(
        score=math.nan if score is None else float(score),
        per_prediction=vec,
        fallback=bool(fallback),
    )


class EvaluationStore:
    """Cache of utility values and journal of method progress, in one SQLite file.

    Parameters
    ----------
    path : str, os.PathLike or None
        The database file, created if absent. ``None`` or ``":memory:"`` gives a throwaway store
        that lives only as long as this object.

    Raises
    ------
    DataworthError
        If the file cannot be opened, is not a dataworth store, or was written with a newer
        schema than this version of dataworth reads.

    Notes
    -----
    Use it as a context manager, or call :meth:`close`. One process should write at a time (the
    engine writes from the main process only); other processes may open the same file to read.
    The object cannot be pickled: it stays in the main process, and workers receive subsets, not
    the store.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        in_memory = path is None or str(path) == ":memory:"
        self.path: str = ":memory:" if in_memory else os.fspath(path)
        try:
            # isolation_level=None: no implicit transactions; every write below opens its own
            # BEGIN IMMEDIATE ... COMMIT, so the transaction boundaries are exactly the batches.
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise DataworthError(
                f"Cannot open the evaluation store {self.path}: {exc}; check that its folder exists"
                " and is writable."
            ) from None
        try:
            self._initialise(in_memory)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    # -- set-up ------------------------------------------------------------------------------

    def _initialise(self, in_memory: bool) -> None:
        conn = self._require_open()
        try:
            if not in_memory:
                # WAL lets readers in other processes work while the engine writes, and a killed
                # writer never leaves the main file half-written. The mode is persistent, so this
                # is a no-op on later opens. A non-database file fails here with DatabaseError.
                conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit is on disk when put_many returns, so even a power cut loses at
                # most the batch in flight. One fsync per batch is cheap next to fitting models.
                conn.execute("PRAGMA synchronous=FULL")
            # Check and create under one write lock, so two processes opening a new file at the
            # same moment cannot both decide to create it.
            with self._transaction():
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                n_objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if app_id != _APPLICATION_ID:
                    if n_objects:
                        raise DataworthError(
                            f"{self.path} is an SQLite database but not a dataworth evaluation"
                            " store; use a new run folder or remove the file."
                        )
                    version = 0
                elif version > SCHEMA_VERSION:
                    raise DataworthError(
                        f"The evaluation store {self.path} has schema version {version}, newer"
                        f" than the {SCHEMA_VERSION} this dataworth reads; upgrade dataworth or"
                        " use a new run folder."
                    )
                if version < SCHEMA_VERSION:
                    # Version 1 is the first schema; later versions add their migrations here.
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.OperationalError as exc:
            # Locks, permissions, a folder in place of the file: the file may well be fine.
            raise DataworthError(f"Cannot open the evaluation store {self.path}: {exc}.") from None
        except sqlite3.DatabaseError as exc:
            raise DataworthError(
                f"{self.path} is not a dataworth evaluation store ({exc}); use a new run folder"
                " or remove the file."
            ) from None

    def _require_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the evaluation store is closed")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        conn = self._require_open()
        # IMMEDIATE takes the write lock up front, so a concurrent writer waits (busy timeout)
        # at BEGIN rather than failing half-way with "database is locked".
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (e.g. a full disk) may leave the transaction open; end it so the
            # connection stays usable and nothing of the batch is half-applied.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- utility cache -----------------------------------------------------------------------

    def get_many(
        self,
        fingerprint: str,
        keys: Sequence[bytes],
        *,
        require_per_prediction: bool = False,
    ) -> dict[bytes, StoredEvaluation]:
        """Look up cached utilities.

        Parameters
        ----------
        fingerprint : str
            The utility's fingerprint.
        keys : sequence of bytes
            Subset keys, from :func:`~dataworth.engine.hashing.subset_keys`.
        require_per_prediction : bool, default False
            If True, rows stored without a per-prediction vector count as missing, so that the
            caller refits those subsets (and :meth:`put_many` then replaces the rows).

        Returns
        -------
        dict
            ``{key: StoredEvaluation}`` for the keys found; missing keys are absent.
        """
        conn = self._require_open()
        unique = list(dict.fromkeys(bytes(k) for k in keys))
        found: dict[bytes, StoredEvaluation] = {}
        extra = " AND per_prediction IS NOT NULL" if require_per_prediction else ""
        # A read transaction gives all chunks one consistent snapshot and one lock acquisition.
        conn.execute("BEGIN")
        try:
            for start in range(0, len(unique), _QUERY_CHUNK):
                chunk = unique[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT subset, score, per_prediction, fallback FROM evaluations"
                    f" WHERE fingerprint = ? AND subset IN ({marks}){extra}",
                    (fingerprint, *chunk),
                )
                for subset, score, blob, fallback in rows:
                    found[bytes(subset)] = _decode(score, blob, fallback)
        finally:
            conn.execute("COMMIT")
        return found

    def put_many(
        self,
        fingerprint: str,
        rows: Mapping[bytes, StoredEvaluation] | Iterable[Row],
    ) -> int:
        """Store utilities in one transaction, replacing existing rows for the same keys.

        Parameters
        ----------
        fingerprint : str
            The utility's fingerprint.
        rows : mapping or iterable
            ``{key: StoredEvaluation}``, or an iterable of ``(key, StoredEvaluation)`` pairs or
            ``(key, score, per_prediction_or_None, fallback)`` tuples.

        Returns
        -------
        int
            The number of rows written.

        Notes
        -----
        If anything fails part-way (a bad row, a full disk), nothing of the batch is stored.
        A row without a per-prediction vector never erases one already stored for the same key:
        the store only ever gets richer.
        """
        items: Iterable[Any] = rows.items() if isinstance(rows, Mapping) else rows
        count = 0

        def params() -> Iterator[tuple[str, bytes, float | None, bytes | None, int]]:
            nonlocal count
            for row in items:
                yield _encode_row(fingerprint, row)
                count += 1

        with self._transaction() as conn:
            # Rows are encoded lazily inside the transaction, so an error in row k also rolls
            # back rows 0..k-1 already sent to SQLite.
            conn.executemany(
                "INSERT INTO evaluations (fingerprint, subset, score, per_prediction, fallback)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (fingerprint, subset) DO UPDATE SET"
                " score = excluded.score,"
                " per_prediction = coalesce(excluded.per_prediction, evaluations.per_prediction),"
                " fallback = excluded.fallback",
                params(),
            )
        return count

    def count(self, fingerprint: str) -> int:
        """Return the number of cached utilities for a fingerprint.

        Parameters
        ----------
        fingerprint : str
            The utility's fingerprint.

        Returns
        -------
        int
        """
        conn = self._require_open()
        return conn.execute(
            "SELECT count(*) FROM evaluations WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()[0]

    # -- journal -----------------------------------------------------------------------------

    def journal_get(self, run_key: str) -> dict[str, Any] | None:
        """Return the state last saved for a run key, or None.

        Parameters
        ----------
        run_key : str
            Identifies one method's run (method, its settings, the utility fingerprint).

        Returns
        -------
        dict or None
        """
        conn = self._require_open()
        row = conn.execute(
            "SELECT state FROM journal_state WHERE run_key = ?", (run_key,)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def journal_put(self, run_key: str, state: Mapping[str, Any]) -> None:
        """Save (replace) the state of a run key, in one transaction.

        Parameters
        ----------
        run_key : str
            Identifies one method's run.
        state : mapping
            JSON-serialisable; numpy arrays and scalars are converted to lists and numbers.
        """
        text = _dumps(dict(state))
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO journal_state (run_key, state) VALUES (?, ?)"
                " ON CONFLICT (run_key) DO UPDATE SET state = excluded.state",
                (run_key, text),
            )

    def journal_append(self, run_key: str, item: Mapping[str, Any]) -> None:
        """Append one progress item to a run key's journal, in one transaction.

        Parameters
        ----------
        run_key : str
            Identifies one method's run.
        item : mapping
            JSON-serialisable, e.g. ``{"permutation": 7, "values": array}``.
        """
        text = _dumps(dict(item))
        with self._transaction() as conn:
            conn.execute("INSERT INTO journal_items (run_key, item) VALUES (?, ?)", (run_key, text))

    def journal_items(self, run_key: str) -> list[dict[str, Any]]:
        """Return a run key's appended items, oldest first.

        Parameters
        ----------
        run_key : str
            Identifies one method's run.

        Returns
        -------
        list of dict
        """
        conn = self._require_open()
        rows = conn.execute(
            "SELECT item FROM journal_items WHERE run_key = ? ORDER BY id", (run_key,)
        )
        return [json.loads(text) for (text,) in rows]

    def journal_clear(self, run_key: str) -> None:
        """Forget a run key's state and items (to restart a method from scratch).

        Parameters
        ----------
        run_key : str
            Identifies one method's run.
        """
        with self._transaction() as conn:
            conn.execute("DELETE FROM journal_state WHERE run_key = ?", (run_key,))
            conn.execute("DELETE FROM journal_items WHERE run_key = ?", (run_key,))

    # -- life cycle --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._conn is None

    def close(self) -> None:
        """Close the database. Safe to call more than once."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> EvaluationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> Any:
        raise TypeError(
            "EvaluationStore cannot be pickled: it holds an open SQLite connection and stays in"
            " the main process; send subsets to workers and write their results from the main"
            " process."
        )

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"EvaluationStore({self.path!r}, {state})"
