"""Saved states are checked, never coerced: another dataset, seed or plan, and malformed fields,
each refused with the field named."""

from __future__ import annotations

import pytest
from rrweb_dali.external_source.state import LoaderStateError

from rrweb_dali.loader import make_loader


@pytest.fixture(scope="module")
def state(dataset):
    root, _ = dataset
    loader = make_loader(root, batch_size=16, device="cpu", seed=1)
    it = iter(loader)
    for _ in range(3):
        next(it)
    return loader.state_dict()


def test_a_state_of_another_dataset_of_the_same_size_is_refused(state, tmp_path, write_dataset):
    write_dataset(tmp_path, seed=123)  # as many sessions, other tokens
    other = make_loader(tmp_path, batch_size=16, device="cpu", seed=1)
    assert len(other.reader) == state["plan"]["sessions"]
    with pytest.raises(LoaderStateError, match="another dataset"):
        other.load_state_dict(state)
    other.load_state_dict(state, allow_other_dataset=True)
    assert other.state_dict()["consumed"] == 48


def test_a_state_of_another_seed_is_refused_and_never_adopted(dataset, state):
    root, _ = dataset
    loader = make_loader(root, batch_size=16, device="cpu", seed=2)
    with pytest.raises(LoaderStateError, match="seed 1"):
        loader.load_state_dict(state)
    loader.load_state_dict(state, allow_other_seed=True)
    assert loader.state_dict()["seed"] == 2  # the loader keeps its own seed
    with pytest.raises(LoaderStateError, match="plan differs"):
        make_loader(root, batch_size=16, device="cpu", seed=1, shuffle=False).load_state_dict(state)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"epoch": -1}, "'epoch'"),
        ({"epoch": "80"}, "'epoch'"),
        ({"epoch": 80.9}, "'epoch'"),
        ({"epoch": True}, "'epoch'"),
        ({"consumed": "48"}, "'consumed'"),
        ({"seed": None}, "'seed'"),
        ({"world_size": 0}, "'world_size'"),
        ({"rank": 9}, "'rank'"),
        ({"version": 1}, "'version'"),
        ({"dataset": 7}, "'dataset'"),
        ({"plan": []}, "'plan'"),
        ({"extra": 1}, "unknown fields"),
        ({"consumed": 10**6}, "'consumed'"),
    ],
)
def test_malformed_fields_are_named(dataset, state, change, field):
    root, _ = dataset
    loader = make_loader(root, batch_size=16, device="cpu", seed=1)
    with pytest.raises(LoaderStateError, match=field) as error:
        loader.load_state_dict({**state, **change})
    assert isinstance(error.value, ValueError)


def test_not_a_dict_and_missing_fields(dataset, state):
    root, _ = dataset
    loader = make_loader(root, batch_size=16, device="cpu", seed=1)
    with pytest.raises(LoaderStateError, match="got list"):
        loader.load_state_dict(list(state.items()))
    broken = dict(state)
    del broken["epoch"]
    with pytest.raises(LoaderStateError, match="no 'epoch' field"):
        loader.load_state_dict(broken)
    loader.load_state_dict(state)  # the good one still loads
    assert loader.state_dict() == state
