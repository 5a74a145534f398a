"""Token ids -> readable text, for people inspecting shards and for debugging the encoder.

One event per line (a line starts at each time-delta token), text bytes gathered into quoted
strings, element closes named after the element they close. Summaries of the token budget read
as ``d=geom"MLZ" n8`` (path commands, about 8 numbers), ``style=css{ 'display' "none" size~2^6``
and ``<EV-TRUNC>`` at the end of a cut event. Not a round trip: the encoding is
lossy on purpose (capped text, buckets, blobs), so this renders what the model sees.

A FullSnapshot is one line, often thousands of tokens long. ``max_line_chars`` bounds every line
for people reading a terminal: a longer line keeps its first pieces (whole pieces: a token name
or a quoted string is never cut in the middle, unless a single piece is longer than the bound)
and ends with ``... [+N tokens]``, ``N`` the tokens of the pieces left out, so nothing is dropped
silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np

from rrweb_dali.tokenizer import vocab as v

_BYTE_FIRST, _BYTE_SIZE = v.RANGES["BYTE"]
_TAG_FIRST, _TAG_SIZE = v.RANGES["TAG"]
_DT_FIRST, _DT_SIZE = v.RANGES["DT"]
_X_FIRST, _X_SIZE = v.RANGES["X"]
_Y_FIRST, _Y_SIZE = v.RANGES["Y"]
_LINE_STARTS = {v.SPECIAL["<DT?>"], v.SPECIAL["<DT-NEG>"], v.BOS_ID, v.EOS_ID}
_CLOSE, _NUM = v.SPECIAL["</>"], v.SPECIAL["=num"]
_GEOM = v.SPECIAL["=geom"]
_DOCUMENT = v.RANGES["NODE"][0]  # node type 0: closed like an element
_VALUES = {v.SPECIAL["<BLOB>"]} | set(range(*(lambda f, n: (f, f + n))(*v.RANGES["COUNT"])))


class Renderer:
    """Holds the id -> name table (built once per Tokenizer) and renders id sequences."""

    def __init__(self) -> None:
        self.names = v.token_names()

    def render(self, ids: Iterable[int], max_line_chars: int | None = None) -> str:
        """One event per line; every line at most ``max_line_chars`` characters plus its
        ``... [+N tokens]`` marker when given (None: lines as long as they come)."""
        if max_line_chars is not None and (
            max_line_chars.__class__ is not int or max_line_chars < 1
        ):
            raise ValueError(
                f"max_line_chars must be a positive int or None, got {max_line_chars!r}"
            )
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        names = self.names
        lines: list[str] = []
        pieces: list[str] = []
        counts: list[int] = []  # tokens behind each piece (a quoted string: one per byte)
        text = bytearray()
        open_tags: list[str] = []
        glue = False

        def add(
            piece: str, glue_next: bool | str = False, value: bool | str = False, n: int = 1
        ) -> None:
            # glue_next "text": only quoted text glues on (d=geom"MLZ" n8, viewBox=geom n4)
            nonlocal glue
            if glue and value and pieces and (glue is True or value == "text"):
                piece = piece[1:] if piece[0] == "=" else piece
                pieces[-1] += piece
                counts[-1] += n
            else:
                pieces.append(piece)
                counts.append(n)
            glue = glue_next

        def flush_text() -> None:
            if text:
                quoted = json.dumps(text.decode("utf-8", "replace"), ensure_ascii=False)
                add(quoted, value="text", n=len(text))
                text.clear()

        def end_line() -> None:
            lines.append(join_line(pieces, counts, max_line_chars))

        for i in ids:
            i = int(i)
            if _BYTE_FIRST <= i < _BYTE_FIRST + _BYTE_SIZE:
                text.append(i - _BYTE_FIRST)
                continue
            flush_text()
            if not 0 <= i < len(names):
                add(f"<OUT_OF_VOCAB:{i}>")
                continue
            if i in _LINE_STARTS or _DT_FIRST <= i < _DT_FIRST + _DT_SIZE:
                if pieces:
                    end_line()
                pieces, counts, glue = [], [], False
            name = names[i]
            if _TAG_FIRST <= i < _TAG_FIRST + _TAG_SIZE:
                open_tags.append(name[1:])
                add(name)
            elif i == _DOCUMENT:
                open_tags.append(name)
                add(name)
            elif i == _CLOSE:
                add(f"</{open_tags.pop()}>" if open_tags else "</?>")
            elif _X_FIRST <= i < _X_FIRST + _X_SIZE:
                add(f"pos({(i - _X_FIRST + 0.5) / _X_SIZE:.2f}", glue_next=True)
            elif _Y_FIRST <= i < _Y_FIRST + _Y_SIZE:
                add(f",{(i - _Y_FIRST + 0.5) / _Y_SIZE:.2f})", value=True)
            else:
                add(
                    name,
                    glue_next="text" if i == _GEOM else name[-1] == "=" or i == _NUM,
                    value=name[0] == "=" or i in _VALUES,
                )
        flush_text()
        if pieces:
            end_line()
        return "\n".join(lines)


def join_line(pieces: list[str], counts: list[int], max_chars: int | None) -> str:
    """The pieces of one line joined by spaces; past ``max_chars``, the first pieces that fit
    and ``... [+N tokens]`` for the ``N`` tokens of the pieces not shown whole."""
    line = " ".join(pieces)
    if max_chars is None or len(line) <= max_chars:
        return line
    used, shown = 0, 0
    for piece in pieces:
        extra = len(piece) + (1 if shown else 0)
        if used + extra > max_chars:
            break
        used += extra
        shown += 1
    head = " ".join(pieces[:shown]) if shown else pieces[0][:max_chars]
    return f"{head} ... [+{sum(counts[shown:]):,} tokens]"


def id_rows(ids: object) -> tuple[bool, list[list[int]]]:
    """``(is_batch, rows)``: the token ids of one sequence (``is_batch`` False, one row) or of a
    batch (2-D), from a list, a numpy array or a tensor of any device.

    Tensors are duck-typed (``.detach()``, ``.cpu()``, ``.numpy()``) so torch stays optional.
    Ids must be integers: a float array is a mistake (logits, a mask) that would otherwise decode
    to plausible-looking nonsense."""
    for method in ("detach", "cpu", "numpy"):
        if not isinstance(ids, np.ndarray) and hasattr(ids, method):
            ids = getattr(ids, method)()
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind not in "iu":
            raise TypeError(f"token ids must be integers, got an array of {ids.dtype}")
        if ids.ndim > 2:
            raise ValueError(f"token ids must be 1-D or 2-D, got shape {ids.shape}")
        if ids.ndim == 2:
            return True, ids.tolist()
        return False, [ids.reshape(-1).tolist()]
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
        return False, [[int(ids)]]
    seq = list(ids)  # type: ignore[call-overload]
    if seq and not isinstance(seq[0], (int, np.integer)):
        rows = []
        for row in seq:
            batch, (one,) = id_rows(row)
            if batch:
                raise ValueError("token ids must be 1-D or 2-D (a list of rows of ids)")
            rows.append(one)
        return True, rows
    return False, [[_as_int(x) for x in seq]]


def _as_int(x: object) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"token ids must be integers, got {type(x).__name__} {x!r}")
    return int(x)
