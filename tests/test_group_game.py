"""The one group game and the one ``groups=`` parser that every group-valuing method uses."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from dataworth.engine.game import Game
from dataworth.engine.group_game import GroupGame, parse_groups
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.ame import ame, ame_hierarchical, ame_shapley, banzhaf
from dataworth.methods.loo import leave_group_out
from dataworth.methods.shapley import exact_shapley, group_sums, tmc_shapley

N = 12


def _additive(n: int = N) -> tuple[Game, np.ndarray]:
    w = np.linspace(-1.0, 2.0, n)
    return Game(lambda m: m @ w, n, "additive"), w


# -- accepted forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "names", "members"),
    [
        ({"a": [3, 1, 1], "b": range(4, 6)}, ["a", "b"], [[1, 3], [4, 5]]),
        ({7: np.array([0]), 8.5: (2, 3)}, ["7", "8.5"], [[0], [2, 3]]),
        ([[5, 4], np.array([0, 11])], ["group_0", "group_1"], [[4, 5], [0, 11]]),
        (((2,), (3,)), ["group_0", "group_1"], [[2], [3]]),
        (np.array([[0, 1], [2, 3]]), ["group_0", "group_1"], [[0, 1], [2, 3]]),
        (np.array([6, 2]), ["group_0", "group_1"], [[6], [2]]),  # a scalar is a group of one
        ((r for r in (range(2), range(1, 3))), ["group_0", "group_1"], [[0, 1], [1, 2]]),
        ([np.arange(N) % 3 == 0], ["group_0"], [[0, 3, 6, 9]]),  # a boolean mask
        ({"f": np.array([2.0, 1.0])}, ["f"], [[1, 2]]),  # integral floats (from pandas)
        ({"o": np.array([4, 3], dtype=object)}, ["o"], [[3, 4]]),  # Python ints (pandas)
    ],
)
def test_every_accepted_form_gives_names_and_sorted_distinct_positions(groups, names, members):
    got_names, got_members = parse_groups(groups, N)
    assert got_names == names
    assert [m.tolist() for m in got_members] == members
    assert all(m.dtype == np.int64 for m in got_members)


def test_names_can_be_given_for_a_list():
    names, members = parse_groups([[0], [1, 2]], N, names=["x", "y"])
    assert names == ["x", "y"] and [m.tolist() for m in members] == [[0], [1, 2]]


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (None, r"dict or a list of groups, not NoneType"),
        ("label", r"not 'label'; give a dict .*build_groups"),
        (5, r"not int"),
        ([], r"No groups given"),
        ({}, r"No groups given"),
        ({"a": []}, r"Group 'a' is empty"),
        ([[0], [12]], r"Group 'group_1' has positions outside 0\.\.11"),
        ({"neg": [-1, 2]}, r"Group 'neg' has positions outside 0\.\.11"),
        ({"half": [0.5, 1]}, r"Group 'half' holds 0\.5, not a training position"),
        ({"ids": ["a", "b"]}, r"Group 'ids' holds 'a', not a training position.*positions_of"),
        ({"nan": [1.0, np.nan]}, r"Group 'nan' holds nan, not a training position"),
        ({"inf": [np.inf]}, r"Group 'inf' holds inf, not a training position"),
        (
            {"z": [1j]},
            r"Group 'z' holds 1j, not a training position; give integer positions 0\.\.11",
        ),
        ({"obj": [None]}, r"Group 'obj' is not an array of training positions"),
        ({"m": np.ones(5, dtype=bool)}, r"Group 'm' is a boolean mask of shape \(5,\); .* \(12\)"),
        ({"r": [[0, 1], [2]]}, r"Group 'r' is not an array of training positions"),
    ],
)
def test_each_bad_groups_argument_gets_one_clear_line(groups, message):
    with pytest.raises(DataworthError, match=message) as info:
        parse_groups(groups, N)
    assert "\n" not in str(info.value)


def test_names_must_match_the_groups():
    with pytest.raises(DataworthError, match="one name per group of a list: 1 names for 2"):
        parse_groups([[0], [1]], N, names=["x"])
    with pytest.raises(DataworthError, match="one name per group of a list"):
        parse_groups({"a": [0]}, N, names=["x"])


@pytest.mark.parametrize(
    "method",
    [
        lambda g, groups: leave_group_out(g, groups),
        lambda g, groups: tmc_shapley(g, permutations=2, groups=groups),
        lambda g, groups: exact_shapley(g, groups=groups),
        lambda g, groups: ame(g, n_subsets=20, groups=groups),
        lambda g, groups: ame_shapley(g, n_subsets=20, groups=groups),
        lambda g, groups: banzhaf(g, n_subsets=20, groups=groups),
        lambda g, groups: ame_hierarchical(g, groups, n_subsets_groups=20, n_subsets_points=20),
    ],
)
def test_every_method_reads_groups_the_same_way(method):
    game, _ = _additive()
    for bad, message in (("label", "not 'label'"), ({"a": [0], "b": [99]}, "Group 'b' has")):
        with pytest.raises(DataworthError, match=message):
            method(game, bad)
    # A boolean mask and the positions it holds are the same group.
    as_masks = {"a": np.arange(N) < 4, "b": np.arange(N) >= 8}
    as_positions = {"a": [0, 1, 2, 3], "b": [8, 9, 10, 11]}
    one, other = method(game, as_masks), method(game, as_positions)
    one = one.groups if hasattr(one, "groups") else one
    other = other.groups if hasattr(other, "groups") else other
    np.testing.assert_array_equal(one.values, other.values)
    assert list(one.player_ids) == ["a", "b"]


# -- the game ----------------------------------------------------------------------------------


def test_point_masks_are_the_unions_of_the_groups_in_each_coalition():
    game, w = _additive()
    groups = {"a": [0, 1, 2], "b": [2, 3], "c": [11], "d": [1, 5, 7]}
    gg = GroupGame(game, groups)
    coalitions = np.array(list(itertools.product([False, True], repeat=4)))
    expected = np.zeros((len(coalitions), N), dtype=bool)
    for k, coalition in enumerate(coalitions):
        for g, members in enumerate(groups.values()):
            if coalition[g]:
                expected[k, members] = True
    np.testing.assert_array_equal(gg.point_masks(coalitions), expected)
    np.testing.assert_array_equal(gg.evaluate(coalitions).scores, expected @ w)
    np.testing.assert_array_equal(gg.sizes, [3, 2, 1, 3])
    np.testing.assert_array_equal(gg.membership.sum(axis=0)[[1, 2]], [2, 2])
    assert list(gg.names) == ["a", "b", "c", "d"] and not hasattr(gg, "task")


def test_exact_group_values_match_a_direct_enumeration_of_the_group_game():
    game, w = _additive()
    groups = [[0, 1], [1, 2, 3], [10]]
    # For an additive game, the Shapley value of group g shares each point's weight equally
    # among the groups holding it.
    holders = np.zeros(N)
    for members in groups:
        holders[members] += 1
    expected = [sum(w[i] / holders[i] for i in members) for members in groups]
    np.testing.assert_allclose(exact_shapley(game, groups=groups).values, expected, atol=1e-12)
    point_values = exact_shapley(Game(game.fn, N), groups=[[i] for i in range(N)])
    np.testing.assert_allclose(group_sums(point_values, {"a": [0, 1]}), [w[0] + w[1]])


def test_the_fingerprints_keep_the_keys_that_stores_were_written_with(cancer_small):
    u = Utility(cancer_small)
    groups = {"a": [5, 2, 2], "b": [0, 1]}
    members = [np.array([2, 5], dtype=np.int64), np.array([0, 1], dtype=np.int64)]
    membership = np.zeros((2, cancer_small.n_train), dtype=bool)
    for g, positions in enumerate(members):
        membership[g, positions] = True
    # The Shapley methods' journals: the utility's fingerprint and the packed membership matrix.
    by_matrix = hashlib.sha256(u.fingerprint.encode() + np.packbits(membership).tobytes())
    assert GroupGame(u, groups).fingerprint == by_matrix.hexdigest()[:32]
    # AME's journals: the utility's fingerprint, then each group's sorted positions.
    by_members = hashlib.sha256(u.fingerprint.encode())
    for positions in members:
        by_members.update(positions.tobytes() + b"|")
    game = GroupGame(u, groups, fingerprint_from="members")
    assert game.fingerprint == by_members.hexdigest()[:32]
    assert game.task is cancer_small and game.store is u.store
    assert GroupGame(Game(np.sum, 3), [[0]]).fingerprint is None
    with pytest.raises(DataworthError, match="Unknown fingerprint_from 'bits'"):
        GroupGame(u, groups, fingerprint_from="bits")


@pytest.mark.parametrize(
    "groups",
    [
        [[0, 1, 2], [3], [7, 8]],  # disjoint, some points in no group: a gather of the columns
        [[0, 1, 2], [2, 3], [5]],  # overlapping: the union, by the product with the incidence
    ],
)
def test_point_masks_are_the_union_of_the_groups_in(groups):
    game = GroupGame(_additive()[0], groups)
    masks = np.random.default_rng(0).random((40, len(groups))) < 0.5
    expected = np.zeros((40, N), dtype=bool)
    for g, positions in enumerate(groups):
        expected[:, positions] |= masks[:, [g]]
    np.testing.assert_array_equal(game.point_masks(masks), expected)
