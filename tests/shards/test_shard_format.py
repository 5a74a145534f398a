"""The shard format: round trip, index math, damage detection."""

from __future__ import annotations

import numpy as np
import pytest

from rrweb_dali.shards.format import HEADER_SIZE, Shard, ShardFormatError, ShardWriter
from rrweb_dali.shards.manifest import Manifest, open_shards, verify_shard, write_manifest


def _write(tmp_path, sessions, name="shard-000000"):
    w = ShardWriter(tmp_path / "shards", name)
    fid = w.add_file("a/b.json")
    for i, s in enumerate(sessions):
        w.add(np.asarray(s, dtype=np.uint16), fid, window=i)
    return w.close()


def test_round_trip_and_index_math(tmp_path):
    rng = np.random.default_rng(0)
    sessions = [rng.integers(0, 65535, size=n, dtype=np.uint16) for n in (5, 0, 17, 1)]
    info = _write(tmp_path, sessions)
    assert info.sessions == 4 and info.tokens == 23
    shard = Shard(tmp_path / "shards" / "shard-000000")
    assert len(shard) == 4
    for i, s in enumerate(sessions):
        np.testing.assert_array_equal(shard[i], s)
        assert shard[i].base is not None  # a view of the memmap, not a copy
    np.testing.assert_array_equal(shard.index.lengths, [5, 0, 17, 1])
    np.testing.assert_array_equal(shard.index.window, [0, 1, 2, 3])
    assert shard.index.files == ["a/b.json"]
    # 16 bytes per session in the index, plus header, the closing offset and the file table.
    table = len(b'["a/b.json"]')
    assert info.idx_bytes == HEADER_SIZE + 8 * 5 + 8 * 4 + table
    # Readable with numpy alone.
    raw = np.memmap(tmp_path / "shards" / "shard-000000.bin", dtype="<u2", mode="r")
    np.testing.assert_array_equal(raw[5:22], sessions[2])


def test_nothing_visible_before_close(tmp_path):
    w = ShardWriter(tmp_path, "s")
    w.add(np.arange(3, dtype=np.uint16), w.add_file("x"))
    assert not (tmp_path / "s.bin").exists() and not (tmp_path / "s.idx").exists()
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_damage_is_refused(tmp_path):
    info = _write(tmp_path, [np.arange(100, dtype=np.uint16)])
    write_manifest(tmp_path, Manifest(tokenizer={"version": 1}, shards=[info]))
    open_shards(tmp_path, verify=True)
    bin_path = tmp_path / "shards" / "shard-000000.bin"
    data = bytearray(bin_path.read_bytes())
    data[10] ^= 0xFF
    bin_path.write_bytes(bytes(data))
    verify_shard(tmp_path, info, full=False)  # same size: the cheap check cannot see it
    with pytest.raises(ShardFormatError, match="SHA-256"):
        open_shards(tmp_path, verify=True)
    bin_path.write_bytes(bytes(data[:-2]))
    with pytest.raises(ShardFormatError, match="damaged"):
        open_shards(tmp_path)


def test_not_an_index(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"\0" * 100)
    (tmp_path / "x.bin").write_bytes(b"")
    with pytest.raises(ShardFormatError, match="magic"):
        Shard(tmp_path / "x")


def _dataset(tmp_path, lengths, max_tokens=None):
    """A one-shard dataset of sessions of ``lengths`` (tokens 1, 2, ...), and its .idx path."""
    sessions = [np.full(n, i + 1, dtype=np.uint16) for i, n in enumerate(lengths)]
    info = _write(tmp_path, sessions)
    options = {} if max_tokens is None else {"max_tokens": max_tokens}
    write_manifest(tmp_path, Manifest(tokenizer={"version": 1}, shards=[info], options=options))
    return tmp_path / "shards" / "shard-000000.idx"


def _set_offset(idx_path, i, value):
    """Overwrite offsets[i] in place (same file size: the cheap size checks cannot see it)."""
    offsets = np.memmap(idx_path, dtype="<u8", mode="r+", offset=HEADER_SIZE, shape=(i + 1,))
    offsets[i] = value
    offsets.flush()
    del offsets


@pytest.mark.parametrize(
    ("row", "value", "words"),
    [
        (2, 3, "session 1 starts at token 5 and ends at 3"),  # out of order
        (2, 10_000, "session 1 ends at token 10000, past the shard's 24"),  # past the .bin
        (1, 2**64 - 1, "session 0 ends at token 18446744073709551615"),  # wraps any arithmetic
    ],
)
def test_damaged_offsets_are_refused_at_open_naming_the_shard(tmp_path, row, value, words):
    idx = _dataset(tmp_path, [5, 7, 3, 9])
    open_shards(tmp_path)  # intact
    _set_offset(idx, row, value)
    with pytest.raises(ShardFormatError, match=r"shard-000000\.idx") as err:
        open_shards(tmp_path)
    assert words in str(err.value)
    from rrweb_dali.external_source import ShardReader

    with pytest.raises(ShardFormatError, match="shard-000000"):
        ShardReader(tmp_path)  # what the loader opens: refused before any batch


def test_rows_longer_than_the_manifest_maximum_are_refused(tmp_path):
    idx = _dataset(tmp_path, [5, 7, 3, 9], max_tokens=10)
    open_shards(tmp_path)
    # Monotonic and inside the .bin, but session 2 empty and session 3 of 12 tokens > 10.
    _set_offset(idx, 3, 12)
    with pytest.raises(ShardFormatError, match="session 3 has 12 tokens, more than the dataset's"):
        open_shards(tmp_path)
    # Without a recorded maximum the shard's own token count is the only bound: it opens.
    Shard(idx.with_suffix(""))


def test_offset_check_is_chunked_and_finds_the_first_bad_row(tmp_path, monkeypatch):
    import rrweb_dali.shards.format as fmt

    monkeypatch.setattr(fmt, "CHECK_CHUNK", 3)  # several chunks over a small index
    lengths = [2, 0, 4, 1, 3, 5, 2, 2]
    idx = _dataset(tmp_path, lengths)
    np.testing.assert_array_equal(Shard(idx.with_suffix("")).index.lengths, lengths)
    _set_offset(idx, 7, 14)  # offsets ... 15, 14, 19: session 6 (in the third chunk) decreases
    with pytest.raises(ShardFormatError, match="session 6 starts at token 15 and ends at 14"):
        Shard(idx.with_suffix(""))
