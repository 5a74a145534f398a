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
