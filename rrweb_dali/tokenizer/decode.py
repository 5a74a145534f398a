"""Token ids -> readable text, for people inspecting shards and for debugging the encoder.

One event per line (a line starts at each time-delta token), text bytes gathered into quoted
strings, element closes named after the element they close. Summaries of the token budget read
as ``d=geom"MLZ" n8`` (path commands, about 8 numbers), ``style=css{ 'display' "none" size~2^6``
and ``<EV-TRUNC>`` at the end of a cut event. Not a round trip: the encoding is
lossy on purpose (capped text, buckets, blobs), so this renders what the model sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

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

    def render(self, ids: Iterable[int]) -> str:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        names = self.names
        lines: list[str] = []
        pieces: list[str] = []
        text = bytearray()
        open_tags: list[str] = []
        glue = False

        def add(piece: str, glue_next: bool | str = False, value: bool | str = False) -> None:
            # glue_next "text": only quoted text glues on (d=geom"MLZ" n8, viewBox=geom n4)
            nonlocal glue
            if glue and value and pieces and (glue is True or value == "text"):
                piece = piece[1:] if piece[0] == "=" else piece
                pieces[-1] += piece
            else:
                pieces.append(piece)
            glue = glue_next

        def flush_text() -> None:
            if text:
                add(json.dumps(text.decode("utf-8", "replace"), ensure_ascii=False), value="text")
                text.clear()

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
                    lines.append(" ".join(pieces))
                pieces, glue = [], False
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
            lines.append(" ".join(pieces))
        return "\n".join(lines)
