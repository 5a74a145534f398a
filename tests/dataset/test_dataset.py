"""``open_dataset``: records against the shards, indexing, selections, session ids, summary."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

import rrweb_dali
from rrweb_dali.dataset import Dataset, Record, SequenceTable, open_dataset
from rrweb_dali.ingest import load_session
from rrweb_dali.preprocess import preprocess
from rrweb_dali.shards.format import ShardFormatError
from rrweb_dali.shards.manifest import read_manifest
from rrweb_dali.synth import write_synth_corpus
from rrweb_dali.tokenizer import Tokenizer


def test_open_dataset_is_exported_lazily():
    assert rrweb_dali.open_dataset is open_dataset and rrweb_dali.Dataset is Dataset
    assert "open_dataset" in rrweb_dali.__all__ and "open_dataset" in dir(rrweb_dali)


def test_every_record_is_its_shard_row(dataset_dir, shard_rows):
    ds = open_dataset(dataset_dir)
    rows = shard_rows(dataset_dir)
    assert len(ds) == len(rows) == sum(s.sessions for s in read_manifest(dataset_dir).shards)
    for i, (tokens, source, window) in enumerate(rows):
        r = ds[i]
        assert isinstance(r, Record) and r.index == i
        assert r.tokens.dtype == np.uint16 and np.array_equal(r.tokens, tokens)
        assert (r.source, r.window) == (source, window)
        assert len(r) == len(tokens)
        # zero-copy: a read-only view of the memory map, not an array of its own
        assert not r.tokens.flags.owndata and not r.tokens.flags.writeable


def test_sources_windows_and_sessions_describe_the_files(dataset_dir):
    ds = open_dataset(dataset_dir)
    src = dataset_dir.parent / "src"
    errors = [json.loads(line) for line in (dataset_dir / "errors.jsonl").read_text().splitlines()]
    rejected = {e["path"] for e in errors if e["status"] == "rejected"}
    on_disk = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    assert rejected == {"broken.json"}
    by_source: dict[str, list[Record]] = {}
    for r in ds:
        by_source.setdefault(r.source, []).append(r)
    assert set(by_source) == on_disk - rejected
    tok = Tokenizer()
    for source, records in by_source.items():
        # a file's windows: numbered 0, 1, ... in order, one session id, and together its tokens
        assert [r.window for r in records] == list(range(len(records))), source
        assert len({r.session for r in records}) == 1, source
        joined = np.concatenate([r.tokens for r in records])
        assert np.array_equal(joined, tok.encode(load_session(src / source).events)), source
    # session ids: the files numbered in order of their first sequence
    first = sorted(by_source, key=lambda s: by_source[s][0].index)
    assert [by_source[s][0].session for s in first] == list(range(len(first)))
    assert any(len(r) > 1 for r in by_source.values())  # the test covers split sessions


def test_session_ids_survive_adding_files(tmp_path, make_corpus, dataset_options):
    src = make_corpus(tmp_path / "src")
    out = tmp_path / "out"
    preprocess([src], out, dataset_options, workers=1)
    before = [(r.index, r.source, r.window, r.session) for r in open_dataset(out)]
    write_synth_corpus(src / "added", 3, seed=5, workers=1)
    preprocess([src], out, dataset_options, workers=1)
    after = open_dataset(out)
    assert len(after) > len(before)
    assert [(r.index, r.source, r.window, r.session) for r in after][: len(before)] == before
    new = {r.session for r in after[len(before) :]}
    assert min(new) == max(s for *_, s in before) + 1 and len(new) == 3


def test_negative_indices_and_bounds(dataset_dir):
    ds = open_dataset(dataset_dir)
    n = len(ds)
    assert ds[-1].index == n - 1 and ds[-n].index == 0
    assert ds[np.int64(2)].index == 2
    for bad in (n, -n - 1):
        with pytest.raises(IndexError):
            ds[bad]
    with pytest.raises(TypeError):
        ds[np.array([0.5])]


def test_slices_and_arrays_are_views_of_the_same_records(dataset_dir):
    ds = open_dataset(dataset_dir)
    n = len(ds)
    for key in (slice(2, 9), slice(None, None, 3), slice(-5, None), slice(8, 1, -2)):
        view = ds[key]
        assert isinstance(view, Dataset)
        assert [r.index for r in view] == list(range(n))[key]
        assert all(np.array_equal(a.tokens, ds[a.index].tokens) for a in view)
    picked = ds[[5, -1, 0, 5]]
    assert [r.index for r in picked] == [5, n - 1, 0, 5]
    assert [r.index for r in ds[np.array([3, 1], dtype=np.uint8)]] == [3, 1]
    mask = np.arange(n) % 4 == 1
    assert [r.index for r in ds[mask]] == list(np.flatnonzero(mask))
    # a view of a view: positions inside the view
    inner = ds[4:20][[0, -1, 2]]
    assert [r.index for r in inner] == [4, 19, 6]
    assert len(ds[5:5]) == 0 and list(ds[[]]) == []
    with pytest.raises(IndexError):
        ds[[0, n]]
    with pytest.raises(IndexError):
        ds[np.ones(n - 1, dtype=bool)]


def test_index_tensors_map_batches_back(dataset_dir):
    torch = pytest.importorskip("torch")
    ds = open_dataset(dataset_dir)
    index = torch.tensor([7, 0, 3])
    assert [r.index for r in ds.by_index(index)] == [7, 0, 3]
    assert [r.index for r in ds[index]] == [7, 0, 3]
    assert ds.by_index(torch.tensor(4)).index == 4
    # by_index is the directory's numbering, whatever the view
    view = ds[10:]
    assert view.by_index(2).index == 2 and view[0].index == 10
    with pytest.raises(IndexError):
        ds.by_index(-1)


def test_select_by_ids_mask_or_function(dataset_dir):
    ds = open_dataset(dataset_dir)
    n = len(ds)
    picked = open_dataset(dataset_dir, select=[9, 2, 2, 5])
    assert [r.index for r in picked] == [2, 5, 9] and picked.is_selection
    mask = np.zeros(n, dtype=bool)
    mask[[1, 4]] = True
    assert [r.index for r in open_dataset(dataset_dir, select=mask)] == [1, 4]

    def first_windows(table: SequenceTable) -> np.ndarray:
        return table.window == 0

    firsts = open_dataset(dataset_dir, select=first_windows)
    assert [r.window for r in firsts] == [0] * len(firsts)
    assert len(firsts) == len({r.session for r in ds})
    for bad in ([n], [-1], np.ones(n + 1, dtype=bool)):
        with pytest.raises(ValueError):
            open_dataset(dataset_dir, select=bad)
    assert not ds.is_selection


def _nearest_rank(values: list[int], q: int) -> int:
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


def _kind(name: str) -> str:
    for kind in (".json.gz", ".jsonl", ".json"):
        if name.endswith(kind):
            return kind
    raise AssertionError(name)


@pytest.mark.parametrize("which", ["all", "view"])
def test_summary_numbers_recomputed(dataset_dir, which):
    full = open_dataset(dataset_dir)
    ds = full if which == "all" else full[1::2]
    records = list(ds)
    lengths = [len(r) for r in records]
    s = ds.summary()
    assert s.sequences == len(records) and s.tokens == sum(lengths)
    assert s.sessions == len({r.session for r in records})
    windows = Counter(r.source for r in full)
    assert s.split_sessions == len({r.source for r in records if windows[r.source] > 1})
    assert s.lengths["min"] == min(lengths) and s.lengths["max"] == max(lengths)
    for q in (5, 25, 50, 75, 95, 99):
        assert s.lengths[f"p{q}"] == _nearest_rank(lengths, q), q
    assert s.mean_length == pytest.approx(sum(lengths) / len(lengths))
    kinds = Counter(_kind(src) for src in {r.source for r in records})
    assert s.formats == dict(kinds) and list(s.formats.values()) == sorted(kinds.values())[::-1]
    manifest = read_manifest(dataset_dir)
    assert s.tokenizer == manifest.tokenizer == Tokenizer().config()
    assert s.options == manifest.options
    assert s.manifest_totals["files_rejected"] == 1 and s.rejected_by_reason == {"truncated": 1}
    assert s.selected is (which == "view")
    text = str(ds)
    for shown in (f"{s.sequences:,}", f"{s.tokens:,}", f"p50 {s.lengths['p50']:,}", ".json.gz"):
        assert shown in text, shown
    assert "format is not recorded" in text


def test_length_histogram_counts(dataset_dir):
    ds = open_dataset(dataset_dir)
    lengths = [len(r) for r in ds]
    for bins in (1, 5, 10):
        h = ds.length_histogram(bins=bins)
        assert len(h.edges) == len(h.counts) + 1 <= bins + 1
        assert h.edges[0] == min(lengths) and h.edges[-1] == max(lengths)
        last = len(h.counts) - 1
        for k, count in enumerate(h.counts.tolist()):
            lo, hi = h.edges[k], h.edges[k + 1]
            inside = [x for x in lengths if lo <= x < hi or (k == last and x == hi)]
            assert count == len(inside), (bins, k)
    explicit = ds.length_histogram(bins=[0, 1000, 30_000])
    assert explicit.counts.tolist() == [
        sum(x < 1000 for x in lengths),
        sum(x >= 1000 for x in lengths),
    ]
    lines = ds.length_histogram(bins=4).render(width=20).splitlines()
    assert len(lines) == 4 and max(line.count("#") for line in lines) == 20
    with pytest.raises(ValueError):
        ds.length_histogram(bins=0)


def test_the_tokenizer_decodes_the_records(dataset_dir):
    ds = open_dataset(dataset_dir)
    assert ds.tokenizer.config() == read_manifest(dataset_dir).tokenizer
    assert ds.tokenizer.decode(ds[0].tokens).startswith("<BOS>")


def test_a_foreign_tokenizer_is_refused_not_guessed(tmp_path, write_dataset):
    sessions = write_dataset(tmp_path / "ds", n=20, shards=2)
    ds = open_dataset(tmp_path / "ds")
    assert [len(r) for r in ds] == [len(s) for s in sessions]
    with pytest.raises(ValueError, match="tokenizer"):
        _ = ds.tokenizer
    assert ds.summary().sessions == 2  # write_dataset: one file per shard


def test_an_empty_dataset(tmp_path):
    (tmp_path / "src").mkdir()
    preprocess([tmp_path / "src"], tmp_path / "out", workers=1)
    ds = open_dataset(tmp_path / "out")
    s = ds.summary()
    assert (len(ds), s.sequences, s.sessions, s.tokens, s.lengths) == (0, 0, 0, 0, {})
    assert ds.length_histogram().counts.size == 0 and "none" in str(ds)


def test_a_damaged_file_column_is_an_error(tmp_path, write_dataset):
    write_dataset(tmp_path / "ds", n=10, shards=1)
    idx = next((tmp_path / "ds" / "shards").glob("*.idx"))
    data = bytearray(idx.read_bytes())
    file_id_at = 64 + 8 * (10 + 1) + 4 * 3  # session 3's file_id (see shards/format.py)
    data[file_id_at : file_id_at + 4] = (7).to_bytes(4, "little")
    idx.write_bytes(bytes(data))
    ds = open_dataset(tmp_path / "ds")  # opening checks offsets only; the table is read later
    with pytest.raises(ShardFormatError, match="session 3"):
        ds[0]
    with pytest.raises(ShardFormatError):
        ds.summary()


def test_not_a_dataset(tmp_path):
    with pytest.raises(ShardFormatError, match="manifest"):
        open_dataset(tmp_path)
