"""Built-in datasets, the registry, synthetic label noise, user sources and determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, make_classification

import dataworth as dw
from dataworth.data import (
    DatasetDescription,
    get_dataset,
    list_datasets,
    load_dataset,
    make_synthetic,
    register_dataset,
)
from dataworth.data import sources as sources_module


def test_list_datasets_reports_shapes():
    table = list_datasets().set_index("name")
    assert {"breast_cancer", "wine", "digits", "iris", "synthetic"} <= set(table.index)
    assert list(table.columns) == ["description", "rows", "features", "classes"]
    assert table.loc["breast_cancer", ["rows", "features", "classes"]].tolist() == [569, 30, 2]
    assert table.loc["wine", ["rows", "features", "classes"]].tolist() == [178, 13, 3]
    assert table.loc["digits", ["rows", "features", "classes"]].tolist() == [1797, 64, 10]
    assert table.loc["iris", ["rows", "features", "classes"]].tolist() == [150, 4, 3]
    assert table.loc["synthetic", ["rows", "features", "classes"]].tolist() == [1000, 10, 2]


def test_default_is_breast_cancer_with_sklearn_class_order():
    task = load_dataset(train_size=400, seed=0)
    assert task.name == "breast_cancer"
    assert (task.n_train, task.n_test, task.n_features) == (400, 169, 30)
    assert task.class_names == ("malignant", "benign")
    # The encoding matches scikit-learn's own targets, traced through the ids.
    bunch = load_breast_cancer()
    np.testing.assert_array_equal(task.y_train, bunch.target[task.train_ids])
    np.testing.assert_array_equal(task.y_test, bunch.target[task.test_ids])
    assert sorted(np.concatenate([task.train_ids, task.test_ids]).tolist()) == list(range(569))
    assert task.metadata["source"]["kind"] == "builtin"
    json.dumps(task.metadata["source"])


def test_public_entry_point_matches_design():
    task = dw.data.load_dataset("iris", train_size=0.5, seed=3)
    assert isinstance(task, dw.Task)
    assert (task.n_train, task.n_test, task.n_classes) == (75, 75, 3)


def test_fingerprint_is_deterministic_and_seed_dependent():
    a = load_dataset("wine", train_size=100, seed=5, flip=0.1)
    b = load_dataset("wine", train_size=100, seed=5, flip=0.1)
    c = load_dataset("wine", train_size=100, seed=6, flip=0.1)
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.train_ids, b.train_ids)
    np.testing.assert_array_equal(a.metadata["flipped_ids"], b.metadata["flipped_ids"])
    assert a.fingerprint != c.fingerprint


def test_synthetic_noise_is_recorded_against_the_clean_generator():
    raw = make_synthetic()
    X_clean, y_clean = make_classification(
        n_samples=1000,
        n_features=10,
        n_informative=5,
        n_redundant=2,
        n_classes=2,
        flip_y=0.0,
        random_state=0,
    )
    np.testing.assert_allclose(raw.frame.drop(columns="target").to_numpy(), X_clean)
    noisy = raw.noisy_ids
    assert len(noisy) == 100 and len(np.unique(noisy)) == 100
    labels = raw.frame["target"].to_numpy()
    # Exactly the recorded rows disagree with the generator's clean labels.
    assert (labels[noisy] != y_clean[noisy]).all()
    clean_rows = np.setdiff1d(np.arange(1000), noisy)
    np.testing.assert_array_equal(labels[clean_rows], y_clean[clean_rows])
    np.testing.assert_array_equal(raw.clean_labels.to_numpy(), y_clean)


def test_synthetic_task_carries_noisy_training_ids():
    task = load_dataset("synthetic", seed=1)
    raw = make_synthetic()
    in_train = np.intersect1d(task.train_ids, raw.noisy_ids)
    np.testing.assert_array_equal(task.metadata["flipped_ids"], np.sort(in_train))
    np.testing.assert_array_equal(task.metadata["noisy_source_ids"], raw.noisy_ids)
    positions = task.positions_of(task.metadata["flipped_ids"])
    assert (task.y_train[positions] != task.metadata["clean_y_train"][positions]).all()
    assert task.metadata["description"].split["n_train_noisy"] == len(in_train)


def test_flip_changes_exactly_the_recorded_training_labels():
    task = load_dataset("wine", train_size=120, seed=2, flip=0.25)
    clean = task.metadata["clean_y_train"]
    changed = np.flatnonzero(task.y_train != clean)
    assert len(changed) == round(0.25 * 120)
    np.testing.assert_array_equal(np.sort(task.train_ids[changed]), task.metadata["flipped_ids"])
    np.testing.assert_array_equal(task.metadata["raw_train"]["target"].cat.codes, clean)
    # Test labels are never touched.
    assert task.metadata["description"].split["n_flipped"] == 30


def test_flip_on_synthetic_never_flips_noisy_rows_back():
    task = load_dataset("synthetic", seed=0, flip=0.2)
    n_noisy = task.metadata["description"].split["n_train_noisy"]
    flipped = task.metadata["flipped_ids"]
    assert len(flipped) == n_noisy + 140
    # Every row wrong by design (source noise or flip) differs from the generator's label.
    raw = make_synthetic()
    generator = raw.clean_labels.to_numpy()[task.train_ids]
    np.testing.assert_array_equal(task.metadata["clean_y_train"], generator)
    np.testing.assert_array_equal(np.sort(task.train_ids[task.y_train != generator]), flipped)
    source_labels = raw.frame["target"].to_numpy()[task.train_ids]
    assert (task.y_train != source_labels).sum() == 140


def test_register_dataset_decorator_adds_a_named_loader():
    name = "tiny_test_dataset"
    try:

        @register_dataset(name, "three rows per class")
        def _tiny():
            frame = pd.DataFrame({"a": np.arange(6.0), "label": ["x", "y"] * 3})
            return sources_module.RawData(frame=frame, target="label", source={"name": name})

        assert get_dataset(name).description == "three rows per class"
        task = load_dataset(name, train_size=4)
        assert task.class_names == ("x", "y") and task.n_train == 4
        assert name in list_datasets()["name"].tolist()
    finally:
        sources_module._REGISTRY.pop(name, None)


def test_csv_ids_are_row_numbers_and_parquet_keeps_its_index(tmp_path):
    frame = pd.DataFrame(
        {
            "x": np.linspace(0, 1, 20),
            "colour": ["red", "blue"] * 10,
            "label": ["a"] * 10 + ["b"] * 10,
        },
        index=np.arange(100, 120),
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    from_csv = load_dataset(csv=tmp_path / "d.csv", target="label", train_size=10)
    from_parquet = load_dataset(parquet=tmp_path / "d.parquet", target="label", train_size=10)
    from_frame = load_dataset(frame=frame, target="label", train_size=10)
    assert set(from_csv.train_ids) | set(from_csv.test_ids) == set(range(20))
    assert set(from_parquet.train_ids) | set(from_parquet.test_ids) == set(range(100, 120))
    # The same seed gives the same rows whatever the source format.
    np.testing.assert_array_equal(from_csv.train_ids + 100, from_parquet.train_ids)
    np.testing.assert_array_equal(from_frame.train_ids, from_parquet.train_ids)
    assert from_csv.fingerprint == from_frame.fingerprint == from_parquet.fingerprint
    assert from_csv.metadata["source"] == {
        "kind": "csv",
        "path": str(tmp_path / "d.csv"),
        "name": "d",
        "target": "label",
        "n_rows": 20,
    }
    assert from_csv.name == "d"


def test_description_numbers_and_json(tmp_path):
    frame = pd.DataFrame(
        {
            "n": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0],
            "c": ["u", "v", "u", None, "u", "v", "w", "u"],
            "y": [0, 0, 0, 0, 1, 1, 1, 1],
        }
    )
    task = load_dataset(frame=frame, target="y", train_size=4, seed=0)
    d = task.metadata["description"]
    assert isinstance(d, DatasetDescription)
    assert (d.n_rows, d.n_features, d.n_numeric, d.n_categorical) == (8, 2, 1, 1)
    assert (d.n_missing_cells, d.n_rows_with_missing) == (2, 2)
    feats = d.features.set_index("feature")
    assert feats.loc["n", "missing"] == 1 and feats.loc["c", "missing"] == 1
    assert feats.loc["n", "mean"] == pytest.approx(33 / 7)
    assert feats.loc["n", "std"] == pytest.approx(np.std([1, 2, 4, 5, 6, 7, 8], ddof=1))
    assert (feats.loc["n", "min"], feats.loc["n", "max"]) == (1.0, 8.0)
    assert feats.loc["c", "distinct"] == 3 and np.isnan(feats.loc["c", "mean"])
    labels = d.labels.set_index("class")
    assert labels["count"].tolist() == [4, 4]
    assert labels["train_count"].tolist() == [2, 2] and labels["test_share"].tolist() == [0.5, 0.5]
    assert d.split["kind"] == "random" and d.split["stratified"] and d.split["seed"] == 0
    payload = json.loads(json.dumps(d.to_dict()))
    assert payload["features"][1]["mean"] is None
    assert payload["split"]["n_train"] == 4
    lines = d.summary_lines()
    assert lines[0] == (
        f"8 rows and 2 features (1 numeric, 1 categorical), {task.n_features} columns after "
        "one-hot encoding."
    )
    assert "2 missing values in 2 feature(s), in 2 rows (25.0%)" in lines[1]
    assert lines[2].startswith("2 classes: 0 (4 rows, 50.0%), 1 (4 rows, 50.0%).")
    assert lines[3] == "Stratified random split (seed 0): 4 training rows and 4 test rows."


def test_poisoned_digits_plants_the_patch_and_the_label():
    from dataworth.data.poison import ATTACK_CLASS, PATCH, poisoned_digits

    task, poisons = poisoned_digits(200, 8, 5, seed=1)
    assert task.n_train == 200 and len(poisons) == 8 and task.n_test == 5
    assert (task.X_train[np.ix_(poisons, list(PATCH))] == 1.0).all()
    attack = task.class_names.index(str(ATTACK_CLASS))
    assert (task.y_train[poisons] == attack).all() and (task.y_test == attack).all()
    assert (task.X_test[:, list(PATCH)] == 1.0).all()


def test_poisoned_digits_patch_size():
    from dataworth.data.poison import PATCH, patch_pixels, poisoned_digits
    from dataworth.errors import DataworthError

    assert patch_pixels(2) == PATCH
    assert patch_pixels(3) == (0, 1, 2, 8, 9, 10, 16, 17, 18)
    task, poisons = poisoned_digits(100, 4, 3, seed=2, patch_size=3)
    assert (task.X_train[np.ix_(poisons, list(patch_pixels(3)))] == 1.0).all()
    assert (task.X_test[:, list(patch_pixels(3))] == 1.0).all()
    for bad in (0, 9, 2.5):
        with pytest.raises(DataworthError, match="patch_size"):
            patch_pixels(bad)
