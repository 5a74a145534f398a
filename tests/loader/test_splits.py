"""make_loader's held-out splits and sequence filters: which rows, and resume under them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rrweb_dali.external_source.selection import split_of

from rrweb_dali.loader import LoaderStateError, make_loader
from rrweb_dali.shards.format import ShardWriter
from rrweb_dali.shards.manifest import Manifest, write_manifest

FILES = 300
FRACTION = 0.2


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """A token dataset of ``FILES`` source files with 1-3 windows each, over two shards:
    ``(root, sessions, names)`` with ``names[i]`` the stored source name of sequence ``i``."""
    root = tmp_path_factory.mktemp("named")
    rng = np.random.default_rng(7)
    sessions, names, infos = [], [], []
    for s, files in enumerate((range(0, 170), range(170, FILES))):
        w = ShardWriter(root / "shards", f"shard-{s:06d}")
        for k in files:
            name = f"site-{k % 7}/rec-{k:04d}.json"
            fid = w.add_file(name)
            for window in range(int(rng.integers(1, 4))):
                tokens = rng.integers(1, 60000, size=int(rng.integers(1, 200)), dtype=np.uint16)
                w.add(tokens, fid, window)
                sessions.append(tokens)
                names.append(name)
        infos.append(w.close())
    write_manifest(root, Manifest(tokenizer={"name": "test"}, shards=infos))
    return root, sessions, names


def _rows(loader, check_rows, sessions):
    out = []
    for batch in loader:
        check_rows(batch, sessions)  # index is the sequence's id in the whole dataset
        out += batch["index"].tolist()
    return out


def test_train_and_val_split_by_file(named, check_rows):
    root, sessions, names = named
    kw = {"batch_size": 16, "device": "cpu", "seed": 1, "val_fraction": FRACTION}
    train = _rows(make_loader(root, split="train", **kw), check_rows, sessions)
    val = _rows(make_loader(root, split="val", **kw), check_rows, sessions)
    assert len(train) == len(set(train)) and len(val) == len(set(val))  # world size 1: no repeats
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(range(len(sessions)))
    assert all(split_of(names[i], FRACTION) == "val" for i in val)
    assert {names[i] for i in train}.isdisjoint({names[i] for i in val})  # windows never straddle
    assert 0 < len(val) < len(train)


def test_filters_keep_exactly_the_matching_sequences(named, check_rows):
    root, sessions, names = named
    lengths = np.array([s.size for s in sessions])
    loader = make_loader(
        root,
        batch_size=16,
        device="cpu",
        min_sequence_tokens=50,
        max_sequence_tokens=150,
        source_glob="site-3/*",
    )
    got = _rows(loader, check_rows, sessions)
    want = [
        i
        for i in range(len(sessions))
        if 50 <= lengths[i] <= 150 and names[i].startswith("site-3/")
    ]
    assert sorted(got) == want and want
    assert len(loader) == -(-len(want) // 16)
    with pytest.raises(ValueError, match="raw files"):
        make_loader(raw=root, batch_size=4, device="cpu", split="val")


@pytest.mark.parametrize("options", [{}, {"packing": 128}, {"bucketing": True}])
def test_resume_under_a_split_is_exact(named, options, indices):
    root, _, _ = named
    kw = {"batch_size": 8, "device": "cpu", "seed": 3, "split": "train", **options}
    full = indices(make_loader(root, **kw))
    loader = make_loader(root, **kw)
    head = indices(loader, limit=4)
    state = loader.state_dict()
    assert state["plan"]["selection"]["split"] == "train"
    resumed = make_loader(root, **kw)
    resumed.load_state_dict(state)
    rest = indices(resumed)
    assert len(head) + len(rest) == len(full)
    assert all(torch.equal(a, b) for a, b in zip(head + rest, full, strict=True))


@pytest.mark.parametrize(
    "other",
    [
        {"split": "val"},
        {"split": "train", "val_fraction": 0.3},
        {},
        {"split": "train", "min_sequence_tokens": 2},
        {"split": "train", "source_glob": "*.json"},
    ],
)
def test_resume_with_another_selection_is_refused(named, other):
    root, _, _ = named
    state = make_loader(root, batch_size=8, device="cpu", split="train").state_dict()
    loader = make_loader(root, batch_size=8, device="cpu", **other)
    with pytest.raises(LoaderStateError, match="selection"):
        loader.load_state_dict(state)


def test_open_dataset_takes_the_same_selection(named):
    from rrweb_dali import open_dataset

    root, sessions, names = named
    for kw in ({"split": "val", "val_fraction": FRACTION}, {"min_sequence_tokens": 100}):
        loader = make_loader(root, batch_size=16, device="cpu", **kw)
        rows = sorted(i for b in loader for i in b["index"].tolist())
        ds = open_dataset(root, **kw)
        assert ds.ids.tolist() == rows and len(ds) == len(rows)
        assert all(np.array_equal(ds[k].tokens, sessions[i]) for k, i in enumerate(rows[:20]))
    both = open_dataset(root, split="train", select=np.arange(100))
    assert both.ids.tolist() == [i for i in range(100) if split_of(names[i], 0.01) == "train"]
