"""``Tokenizer.decode`` of batches and tensors, ``batch_decode`` (stops at padding, skips specials)
and the bounded rendering of long lines."""

from __future__ import annotations

import numpy as np
import pytest

from rrweb_dali.synth import generate_session
from rrweb_dali.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer, vocab

TOK = Tokenizer()


@pytest.fixture(scope="module")
def sessions() -> list[np.ndarray]:
    """Three synthetic sessions' tokens, cut to different lengths (the last keeps its EOS)."""
    full = [TOK.encode(generate_session(3, i)) for i in range(3)]
    return [full[0][:700], full[1][:120], full[2][-300:]]


def _padded(rows: list[np.ndarray], extra: int = 5) -> np.ndarray:
    batch = np.full((len(rows), max(map(len, rows)) + extra), PAD_ID, dtype=np.int64)
    for j, row in enumerate(rows):
        batch[j, : len(row)] = row
    return batch


def test_decode_of_a_2d_array_is_one_string_per_row(sessions):
    rows = [s[:100] for s in sessions]
    batch = np.stack(rows)
    assert TOK.decode(batch) == [TOK.decode(r) for r in rows]
    assert TOK.decode([list(r) for r in sessions]) == [TOK.decode(r) for r in sessions]  # ragged
    assert TOK.decode(batch[:0]) == []
    assert isinstance(TOK.decode(sessions[0]), str)


@pytest.mark.parametrize("skip", [True, False])
def test_batch_decode_of_a_padded_batch_is_each_row_without_its_pads(sessions, skip):
    batch = _padded(sessions)
    assert (batch == PAD_ID).sum() > 0
    texts = TOK.batch_decode(batch, skip_special_tokens=skip)
    assert texts == [TOK.decode(row, skip_special_tokens=skip) for row in sessions]
    assert all("<PAD>" not in t for t in texts)
    # decode shows everything, pads included
    assert all("<PAD>" in t for t in TOK.decode(batch))


def test_skip_special_tokens_drops_bos_eos_and_pad_only(sessions):
    ids = sessions[2]
    assert ids[-1] == EOS_ID
    kept = [i for i in ids.tolist() if i not in (BOS_ID, EOS_ID, PAD_ID)]
    assert TOK.decode(ids, skip_special_tokens=True) == TOK.decode(kept)
    text = TOK.batch_decode(_padded([np.concatenate([[BOS_ID], ids])]))[0]
    assert "<BOS>" not in text and "<EOS>" not in text and text == TOK.decode(kept)
    shown = TOK.batch_decode(_padded([ids]), skip_special_tokens=False)[0]
    assert shown.endswith("<EOS>")


def test_tensors_decode_like_arrays(sessions):
    torch = pytest.importorskip("torch")
    batch = _padded(sessions)
    for dtype in (torch.int64, torch.int32):
        t = torch.from_numpy(batch).to(dtype)
        assert TOK.decode(t) == TOK.decode(batch)
        assert TOK.decode(t[0]) == TOK.decode(batch[0])
        assert TOK.batch_decode(t) == TOK.batch_decode(batch)
    assert TOK.decode(torch.tensor(BOS_ID)) == "<BOS>"


class _FakeTensor:
    """What decode needs of a tensor (torch need not be installed): detach, cpu, numpy."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.calls: list[str] = []

    def detach(self) -> _FakeTensor:
        self.calls.append("detach")
        return self

    def cpu(self) -> _FakeTensor:
        self.calls.append("cpu")
        return self

    def numpy(self) -> np.ndarray:
        self.calls.append("numpy")
        return self.array


def test_anything_tensor_like_is_brought_to_the_host(sessions):
    batch = _padded(sessions)
    fake = _FakeTensor(batch)
    assert TOK.batch_decode(fake) == TOK.batch_decode(batch)
    assert fake.calls == ["detach", "cpu", "numpy"]


def test_non_integer_ids_are_refused():
    with pytest.raises(TypeError):
        TOK.decode(np.array([1.0, 2.0]))
    with pytest.raises(TypeError):
        TOK.decode([1, 2.5])
    with pytest.raises(ValueError):
        TOK.decode(np.zeros((2, 2, 2), dtype=np.int64))


def test_long_lines_are_bounded_with_a_count_of_what_is_left_out():
    dt = vocab.RANGES["DT"][0]
    close = vocab.SPECIAL["</>"]
    names = (TOK.token_name(dt), "</?>")  # a close with no open tag renders as </?>
    ids = [dt] + [close] * 50
    full = TOK.decode(ids)
    assert full == " ".join([names[0]] + [names[1]] * 50)
    bound = 30
    fit = (bound - len(names[0])) // (len(names[1]) + 1)  # closes that fit after the delta
    expected = " ".join([names[0]] + [names[1]] * fit) + f" ... [+{50 - fit} tokens]"
    assert TOK.decode(ids, max_line_chars=bound) == expected
    assert TOK.decode(ids, max_line_chars=len(full)) == full
    with pytest.raises(ValueError):
        TOK.decode(ids, max_line_chars=0)


def test_bounded_snapshots_keep_every_line_and_a_prefix_of_each(sessions):
    ids = TOK.encode(generate_session(3, 0))
    full = TOK.decode(ids).splitlines()
    bounded = TOK.decode(ids, max_line_chars=80).splitlines()
    assert len(bounded) == len(full) and max(map(len, full)) > 1000
    cut = 0
    for whole, short in zip(full, bounded, strict=True):
        if short == whole:
            assert len(whole) <= 80
            continue
        cut += 1
        head, _, marker = short.rpartition(" ... [+")
        assert whole.startswith(head) and len(head) <= 80
        hidden = int(marker.rstrip(" tokens]").replace(",", ""))
        assert 0 < hidden < len(ids)
    assert cut > 0
    # a tighter bound leaves out more tokens of the snapshot line
    snap = next(k for k, line in enumerate(full) if " FULL " in line)
    counts = []
    for bound in (40, 200, 2000):
        line = TOK.decode(ids, max_line_chars=bound).splitlines()[snap]
        counts.append(int(line.rpartition("[+")[2].split()[0].replace(",", "")))
    assert counts[0] > counts[1] > counts[2] > 0
