"""Tests for the evaluation store and subset keys."""

from __future__ import annotations

import math
import pickle
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from dataworth.engine.hashing import KEY_BYTES, subset_key, subset_keys
from dataworth.engine.store import SCHEMA_VERSION, EvaluationStore, StoredEvaluation
from dataworth.errors import DataworthError

FP = "utility-fingerprint-1"


def _keys(n_subsets: int, n_points: int = 40, seed: int = 0) -> tuple[np.ndarray, list[bytes]]:
    rng = np.random.default_rng(seed)
    masks = rng.random((n_subsets, n_points)) < 0.5
    return masks, subset_keys(masks)


# -- hashing ------------------------------------------------------------------------------------


def test_subset_keys_match_single_keys_and_are_stable() -> None:
    masks, keys = _keys(50, n_points=13)
    assert keys == [subset_key(m) for m in masks]
    assert all(isinstance(k, bytes) and len(k) == KEY_BYTES for k in keys)
    # 0/1 integer masks give the same key as booleans.
    assert subset_key(masks[0].astype(np.int8)) == keys[0]
    # A fixed value pins the derivation: a change would silently orphan every existing store.
    mask = np.array([True, False, True, True, False])
    assert subset_key(mask).hex() == subset_keys(mask[None, :])[0].hex()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import numpy as np; from dataworth.engine.hashing import subset_key;"
            "print(subset_key(np.array([True, False, True, True, False])).hex())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == subset_key(mask).hex()


def test_subset_key_distinguishes_length_and_content() -> None:
    # Same packed bytes ([1] and [1, 0] both pack to 0x80) but different lengths.
    assert subset_key(np.array([True])) != subset_key(np.array([True, False]))
    assert subset_key(np.zeros(8, bool)) != subset_key(np.zeros(9, bool))
    masks, keys = _keys(2000, n_points=30)
    distinct_masks = len({m.tobytes() for m in masks})
    assert len(set(keys)) == distinct_masks
    assert subset_keys(np.zeros((0, 5), bool)) == []


@pytest.mark.parametrize("bad", [np.zeros((2, 3), bool), np.array([0, 2, 1]), np.array([0.0, 1.0])])
def test_subset_key_rejects_bad_masks(bad: np.ndarray) -> None:
    with pytest.raises(DataworthError):
        subset_key(bad)


# -- cache ------------------------------------------------------------------------------------


def test_roundtrip() -> None:
    masks, keys = _keys(3)
    vec = np.array([0.25, -1.5, np.inf, 1e-300])
    with EvaluationStore() as store:
        written = store.put_many(
            FP,
            [
                (keys[0], StoredEvaluation(0.75, vec, False)),
                (keys[1], 0.5, None, True),  # tuple form
                (keys[2], float("nan"), None, False),  # NaN survives SQLite's NULL
            ],
        )
        assert written == 3
        got = store.get_many(FP, [*keys, subset_key(~masks[0])])
        assert set(got) == set(keys)
        assert got[keys[0]].score == 0.75 and not got[keys[0]].fallback
        np.testing.assert_array_equal(got[keys[0]].per_prediction, vec)
        assert got[keys[0]].per_prediction.dtype == np.float64
        assert got[keys[0]].per_prediction.flags.writeable
        assert got[keys[1]] == StoredEvaluation(0.5, None, True)
        assert math.isnan(got[keys[2]].score)
        assert store.count(FP) == 3
        # Fingerprints are separate namespaces.
        assert store.get_many("other", keys) == {}
        assert store.count("other") == 0


def test_upsert_replaces_and_never_loses_per_prediction() -> None:
    _, keys = _keys(2)
    with EvaluationStore() as store:
        store.put_many(FP, {keys[0]: StoredEvaluation(0.5), keys[1]: StoredEvaluation(0.6)})
        # The caller needs per-prediction values: rows without them count as missing.
        assert set(store.get_many(FP, keys)) == set(keys)
        assert store.get_many(FP, keys, require_per_prediction=True) == {}
        # The refit writes the richer row, which replaces the old one.
        store.put_many(FP, {keys[0]: StoredEvaluation(0.5, np.array([1.0, 0.0]))})
        got = store.get_many(FP, keys, require_per_prediction=True)
        assert list(got) == [keys[0]]
        np.testing.assert_array_equal(got[keys[0]].per_prediction, [1.0, 0.0])
        # A later poorer row (no vector) does not erase the stored vector.
        store.put_many(FP, {keys[0]: StoredEvaluation(0.5, None, False)})
        got = store.get_many(FP, keys[:1])
        np.testing.assert_array_equal(got[keys[0]].per_prediction, [1.0, 0.0])
        assert store.count(FP) == 2


def test_many_keys_are_fast() -> None:
    _, keys = _keys(5000, n_points=200)
    per_pred = np.linspace(0, 1, 50)
    with EvaluationStore() as store:
        start = time.perf_counter()
        store.put_many(FP, ((k, float(i), per_pred, i % 7 == 0) for i, k in enumerate(keys)))
        got = store.get_many(FP, keys)
        elapsed = time.perf_counter() - start
        assert len(got) == 5000 and store.count(FP) == 5000
        assert [got[k].score for k in keys] == [float(i) for i in range(5000)]
        assert sum(got[k].fallback for k in keys) == len(range(0, 5000, 7))
        assert elapsed < 2.0, f"5,000 keys took {elapsed:.2f} s"


def test_failed_batch_leaves_nothing(tmp_path) -> None:
    _, keys = _keys(10)

    def rows():
        for i, k in enumerate(keys):
            if i == 6:
                raise RuntimeError("fit crashed mid-batch")
            yield k, StoredEvaluation(float(i))

    with EvaluationStore(tmp_path / "store.sqlite") as store:
        store.put_many(FP, {keys[9]: StoredEvaluation(9.0)})
        with pytest.raises(RuntimeError, match="mid-batch"):
            store.put_many(FP, rows())
        # A malformed row (2-D vector) rolls back too.
        with pytest.raises(ValueError, match="one-dimensional"):
            store.put_many(
                FP, [(keys[0], 0.0, None, False), (keys[1], 1.0, np.ones((2, 2)), False)]
            )
        assert store.count(FP) == 1
        assert list(store.get_many(FP, keys)) == [keys[9]]
        # The store is still usable after the rollback.
        store.put_many(FP, {keys[0]: StoredEvaluation(0.0)})
        assert store.count(FP) == 2


def test_persistence_across_reopen(tmp_path) -> None:
    path = tmp_path / "run" / "store.sqlite"
    path.parent.mkdir()
    _, keys = _keys(20)
    with EvaluationStore(path) as store:
        store.put_many(FP, [(k, float(i), np.array([i, -i]), False) for i, k in enumerate(keys)])
        store.journal_put("tmc", {"done": 3, "marginals": np.arange(3.0)})
        store.journal_append("tmc", {"perm": 0})
    assert store.closed
    with EvaluationStore(str(path)) as store:
        got = store.get_many(FP, keys)
        assert [got[k].score for k in keys] == [float(i) for i in range(20)]
        np.testing.assert_array_equal(got[keys[5]].per_prediction, [5.0, -5.0])
        assert store.journal_get("tmc") == {"done": 3, "marginals": [0.0, 1.0, 2.0]}
        assert store.journal_items("tmc") == [{"perm": 0}]
    # WAL mode, so another process can read while the engine writes.
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_two_connections_to_one_file(tmp_path) -> None:
    path = tmp_path / "store.sqlite"
    _, keys = _keys(4)
    with EvaluationStore(path) as writer, EvaluationStore(path) as reader:
        writer.put_many(FP, {keys[0]: StoredEvaluation(1.0)})
        assert reader.count(FP) == 1
        reader.put_many(FP, {keys[1]: StoredEvaluation(2.0)})
        assert set(writer.get_many(FP, keys)) == set(keys[:2])


# -- journal ----------------------------------------------------------------------------------


def test_journal_state_and_ordering() -> None:
    with EvaluationStore(None) as store:
        assert store.journal_get("tmc/seed=0") is None
        assert store.journal_items("tmc/seed=0") == []
        store.journal_put("tmc/seed=0", {"n_done": 1})
        store.journal_put("tmc/seed=0", {"n_done": 2, "rng": [1, 2]})
        assert store.journal_get("tmc/seed=0") == {"n_done": 2, "rng": [1, 2]}
        # Interleave two run keys; each keeps its own insertion order.
        for i in range(30):
            store.journal_append("tmc/seed=0", {"perm": i, "values": np.full(2, i / 3)})
            if i % 3 == 0:
                store.journal_append("ame", {"sample": i})
        items = store.journal_items("tmc/seed=0")
        assert [it["perm"] for it in items] == list(range(30))
        assert items[10]["values"] == [10 / 3, 10 / 3]  # floats round-trip exactly
        assert [it["sample"] for it in store.journal_items("ame")] == list(range(0, 30, 3))
        store.journal_clear("tmc/seed=0")
        assert store.journal_get("tmc/seed=0") is None
        assert store.journal_items("tmc/seed=0") == []
        assert len(store.journal_items("ame")) == 10
        with pytest.raises(TypeError):
            store.journal_put("x", {"bad": object()})


# -- bad files and life cycle -----------------------------------------------------------------


def test_text_file_is_refused(tmp_path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(DataworthError, match="not a dataworth evaluation store"):
        EvaluationStore(path)
    assert path.read_text().startswith("this is not a database")  # left untouched


def test_other_sqlite_database_is_refused(tmp_path) -> None:
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(DataworthError, match="not a dataworth evaluation store"):
        EvaluationStore(path)


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "store.sqlite"
    EvaluationStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(DataworthError, match="newer"):
        EvaluationStore(path)


def test_empty_file_becomes_a_store(tmp_path) -> None:
    path = tmp_path / "store.sqlite"
    path.touch()
    with EvaluationStore(path) as store:
        assert store.count(FP) == 0


def test_missing_folder_is_a_dataworth_error(tmp_path) -> None:
    with pytest.raises(DataworthError, match="Cannot open"):
        EvaluationStore(tmp_path / "no" / "such" / "store.sqlite")


def test_not_picklable_and_close_is_idempotent() -> None:
    store = EvaluationStore()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(store)
    store.close()
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.count(FP)
