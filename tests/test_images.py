"""Image folders (``--images DIR``): pixels read with Pillow, ids that name the files, the checks.

A folder of 3 classes x 12 drawn 8x8 shapes is built in ``tmp_path``; nothing here needs torch
(the CNN on images is in ``test_networks.py``).
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dataworth.cli import app
from dataworth.data.checks import DataCheckWarning
from dataworth.data.images import read_image_folder
from dataworth.data.load import load_dataset
from dataworth.errors import DataworthError
from image_folder import SHAPES, make_folder

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "shapes")


def test_pixels_are_the_images_resized_and_flattened(folder) -> None:
    found = read_image_folder(folder, image_size=4)
    assert found.shape == (1, 4, 4)  # every image grey: one channel
    assert len(found.frame) == 3 * 12 and not found.findings
    assert sorted(set(found.frame["label"])) == list(SHAPES)
    # Against Pillow directly: the same resize, scaled to [0, 1], row by row.
    image = Image.open(folder / "cross" / "05.png").convert("RGB")
    expected = np.asarray(image.resize((4, 4), Image.Resampling.BILINEAR), float)[..., 0] / 255
    row = found.frame.loc["cross/05.png"].drop("label").to_numpy(float)
    np.testing.assert_allclose(row, expected.ravel())


def test_colour_images_keep_three_channels(tmp_path) -> None:
    found = read_image_folder(make_folder(tmp_path / "c", per_class=3, colour=True), 8)
    assert found.shape == (3, 8, 8)
    assert found.frame.shape[1] == 3 * 64 + 1
    assert list(found.frame.columns[:1]) == ["r_0_0"] and "b_7_7" in found.frame.columns


def test_a_task_from_images_names_its_files_and_keeps_the_shape(folder) -> None:
    task = load_dataset(images=folder, image_size=8, train_size=24, seed=1)
    assert task.n_train == 24 and task.n_test == 12 and task.n_features == 64
    assert task.metadata["image_shape"] == (1, 8, 8)
    assert all(str(i).split("/")[0] in SHAPES for i in task.train_ids)
    assert task.class_names == SHAPES
    again = load_dataset(images=folder, image_size=8, train_size=24, seed=1)
    np.testing.assert_array_equal(task.X_train, again.X_train)


def test_unreadable_files_and_duplicates_are_named(folder) -> None:
    (folder / "circle" / "broken.png").write_text("not a picture")
    (folder / "square" / "notes.txt").write_text("a text file among the squares")
    shutil.copy(folder / "cross" / "03.png", folder / "cross" / "03-copy.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = load_dataset(images=folder, image_size=8, train_size=30, seed=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataCheckWarning)]
    unreadable = [m for m in messages if "cannot be read" in m]
    assert len(unreadable) == 2
    assert any("'circle/broken.png'" in m for m in unreadable)
    assert any("'square/notes.txt'" in m for m in unreadable)
    assert all("\n" not in m for m in messages)
    checks = {f.check for f in task.metadata["checks"]}
    # The copy is a duplicate image (in one split, or in both); the pixels' column checks
    # (a pixel that predicts the label, constant border pixels) say nothing about images.
    assert checks & {"duplicate_rows", "train_test_overlap"}
    assert not checks & {"label_leakage", "constant_column", "identifier"}
    assert task.n_train + task.n_test == 37


def test_a_class_too_small_for_the_split_is_reported(folder) -> None:
    (folder / "star").mkdir()
    shutil.copy(folder / "circle" / "00.png", folder / "star" / "only.png")
    with pytest.raises(DataworthError) as error:
        load_dataset(images=folder, image_size=8, seed=0, strict=True)
    assert "star" in str(error.value)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda root: root / "missing", "is not a folder"),
        (lambda root: (root / "flat").mkdir() or root / "flat", "has no subfolders"),
    ],
)
def test_bad_folders_are_refused_in_one_line(tmp_path, make, words) -> None:
    result = runner.invoke(app, ["loo", "--images", str(make(tmp_path)), "--points", "2"])
    assert result.exit_code == 2
    assert words in result.output and "Traceback" not in result.output


def test_the_commands_read_an_image_folder(folder, tmp_path) -> None:
    (folder / "circle" / "broken.png").write_text("not a picture")
    result = runner.invoke(
        app,
        ["loo", "--images", str(folder), "--image-size", "8", "--points", "3", "--seed", "2"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "Image file 'circle/broken.png' cannot be read" in result.output
    # The values name the images: their ids are the files' paths.
    assert any(f"{shape}/" in result.output for shape in SHAPES)
    bad = runner.invoke(app, ["loo", "--images", str(folder), "--image-size", "1"])
    assert bad.exit_code == 2 and "--image-size" in bad.output
    both = runner.invoke(app, ["loo", "--images", str(folder), "--csv", str(tmp_path / "x.csv")])
    assert both.exit_code == 2 and "not --csv and --images" in both.output


def test_the_report_shows_the_images_behind_a_prediction_and_the_flagged_ones(folder, tmp_path):
    from dataworth.study import run_study, steps_named
    from dataworth.study.config import StudyConfig

    shown = load_dataset(images=folder, image_size=8, seed=0).test_ids[2]
    config = StudyConfig(
        images=str(folder), image_size=8, seed=0, baselines=["logreg"], ame_subsets=60,
        ame_target=f"test:{shown}", loo_points=5, out=str(tmp_path / "run"),
    )  # fmt: skip
    names = ("data", "baseline", "loo", "ame", "summary", "report")
    run_study(config, steps=steps_named(*names), root=tmp_path)
    run = tmp_path / "run"
    stem = "ame_test_" + shown.replace("/", "_").replace(".", "_")
    assert (run / f"{stem}.csv").exists() or (run / f"{stem}.parquet").exists()
    figures = {p.stem for p in (run / "figures").glob("*.png")}
    # The prediction as pictures (no heat map of pixels), and each method's lowest images.
    assert {f"{stem}_images", "loo_thumbs", f"{stem}_thumbs"} <= figures
    assert f"{stem}_rows" not in figures
    html = (run / "report.html").read_text()
    assert "largest positive AME" in html and "flags as harmful" in html
    markdown = (run / "report.md").read_text()
    assert f"figures/{stem}_images.png" in markdown and "figures/loo_thumbs.png" in markdown
