"""The public structural tokenizer: rrweb events -> uint16 token ids, and back to readable text.

Why structural and not BPE over JSON: keys, ids and punctuation carry no behaviour, so a byte-level
BPE spends most tokens on them. This tokenizer writes one token per piece of structure (event type,
source, interaction, element open/close, attribute name), buckets numbers (time deltas, viewport-
relative coordinates, sizes), caps text, and replaces CSS/images/base64 with a blob token plus a
size bucket; long geometry and styles are summarised and each event has a token budget
(:mod:`rrweb_dali.tokenizer.budget`). The vocabulary is fixed (see
:mod:`rrweb_dali.tokenizer.vocab`), so equal configs give equal ids on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rrweb_dali.tokenizer import ids as t
from rrweb_dali.tokenizer import vocab
from rrweb_dali.tokenizer.budget import DEFAULT_MAX_EVENT_TOKENS, DEFAULT_MAX_SNAPSHOT_TOKENS
from rrweb_dali.tokenizer.decode import Renderer, id_rows
from rrweb_dali.tokenizer.encode import EventEncoder

PAD_ID: int = vocab.PAD_ID
#: Final ids of the tokens that stand for a part the tokenizer could not read, by kind:
#: ``malformed`` (a part of the wrong shape) and ``unknown`` (an event type, source, interaction,
#: pointer, media action or node type outside the vocabulary).
FAULT_IDS: dict[str, np.ndarray] = {
    "malformed": np.array([t.MALFORMED + vocab.BYTE_BASE]),
    "unknown": np.array(
        [
            x + vocab.BYTE_BASE
            for x in (
                t.EVENT_UNKNOWN,
                t.SOURCE_UNKNOWN,
                t.MOUSE_UNKNOWN,
                t.POINTER_UNKNOWN,
                t.MEDIA_UNKNOWN,
                t.NODE_UNKNOWN,
            )
        ]
    ),
}
BOS_ID: int = vocab.BOS_ID
EOS_ID: int = vocab.EOS_ID

MAX_TEXT_BYTES_LIMIT = 1 << 16
MIN_EVENT_BUDGET = 4  # room for the time delta, the type, the source and one more token
MAX_EVENT_BUDGET = (1 << 31) - 1
# encode() converts internal ids (final id - BYTE_BASE) through int16.
assert np.iinfo(np.int16).max >= vocab.VOCAB_SIZE - vocab.BYTE_BASE


class Tokenizer:
    """rrweb events -> 1-D uint16 token ids (BOS ... EOS); deterministic, never raises on events.

    ``max_text_bytes`` caps each text field (text node, attribute value, input text, URL) in UTF-8
    bytes; a longer field is cut and followed by ``<TRUNC>``.

    The token budget (version 2, :mod:`rrweb_dali.tokenizer.budget`): long geometry attributes
    (``d``, ``points``, ``transform``, ``viewBox``, numeric lists), long inline styles and long
    decimals are summarised in a few tokens, so no attribute kind swamps a session; and an event
    longer than ``max_event_tokens`` tokens (a FullSnapshot: ``max_snapshot_tokens``) is cut
    there and marked ``<EV-TRUNC>``. Both budgets count the event's tokens from its time delta.
    """

    PAD: int = PAD_ID
    BOS: int = BOS_ID
    EOS: int = EOS_ID
    NAME = "rrweb-dali-structural"

    def __init__(
        self,
        max_text_bytes: int = 64,
        max_event_tokens: int = DEFAULT_MAX_EVENT_TOKENS,
        max_snapshot_tokens: int = DEFAULT_MAX_SNAPSHOT_TOKENS,
    ) -> None:
        if max_text_bytes.__class__ is not int or not 0 <= max_text_bytes <= MAX_TEXT_BYTES_LIMIT:
            raise ValueError(
                f"max_text_bytes must be an int in [0, {MAX_TEXT_BYTES_LIMIT}], "
                f"got {max_text_bytes!r}"
            )
        for name, value in (
            ("max_event_tokens", max_event_tokens),
            ("max_snapshot_tokens", max_snapshot_tokens),
        ):
            if value.__class__ is not int or not MIN_EVENT_BUDGET <= value <= MAX_EVENT_BUDGET:
                raise ValueError(
                    f"{name} must be an int in [{MIN_EVENT_BUDGET}, {MAX_EVENT_BUDGET}], "
                    f"got {value!r}"
                )
        self.max_text_bytes = max_text_bytes
        self.max_event_tokens = max_event_tokens
        self.max_snapshot_tokens = max_snapshot_tokens
        self.vocab_size: int = vocab.VOCAB_SIZE
        self.version: int = vocab.VERSION
        self._encoder = EventEncoder(max_text_bytes, max_event_tokens, max_snapshot_tokens)
        self._renderer: Renderer | None = None

    def encode(self, events: list[dict]) -> np.ndarray:
        """Token ids of one session's events: uint16, 1-D, BOS first, EOS last."""
        internal = self._encoder.encode(events)
        # Internal ids lie in [-BYTE_BASE, vocab_size - BYTE_BASE): int16 holds them, and after
        # the shift they are the final ids, non-negative, so the uint16 view is exact.
        ids = np.fromiter(internal, dtype=np.int16, count=len(internal))
        ids += vocab.BYTE_BASE
        return ids.view(np.uint16)

    @staticmethod
    def fault_counts(ids: np.ndarray) -> dict[str, int]:
        """How many parts of an encoded session the tokenizer could not read, by kind (see
        :data:`FAULT_IDS`): counted from the ids, so encoding pays nothing for it."""
        counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=vocab.VOCAB_SIZE)
        return {kind: int(counts[which].sum()) for kind, which in FAULT_IDS.items()}

    def decode(
        self,
        ids: Iterable[int] | Iterable[Iterable[int]],
        skip_special_tokens: bool = False,
        *,
        max_line_chars: int | None = None,
    ) -> str | list[str]:
        """A readable rendering, one event per line (lossy: it shows what the model sees).

        ``ids``: one sequence (a list, a 1-D array or tensor: a string) or a batch (a list of
        rows, a 2-D array or tensor on any device: a list of strings, one per row, every token
        shown, pads too; :meth:`batch_decode` stops at padding). ``skip_special_tokens`` drops
        ``<BOS>``, ``<EOS>`` and ``<PAD>`` (every other marker is content). ``max_line_chars``
        bounds each line (see :mod:`~rrweb_dali.tokenizer.decode`).
        """
        batch, rows = id_rows(ids)
        texts = [self._render(row, skip_special_tokens, max_line_chars) for row in rows]
        return texts if batch else texts[0]

    def batch_decode(
        self,
        ids: Iterable[Iterable[int]],
        skip_special_tokens: bool = True,
        *,
        max_line_chars: int | None = None,
    ) -> list[str]:
        """One string per row of a padded batch (``input_ids``), each row read up to its first
        ``<PAD>``: the tokenizer never writes PAD inside a sequence, so that is where the padding
        starts, and ``batch_decode(batch)[j] == decode(row_j_without_pads)``. The defaults follow
        Hugging Face's ``batch_decode``; a 1-D input is one row."""
        _, rows = id_rows(ids)
        pad = self.PAD
        texts = []
        for row in rows:
            if pad in row:
                row = row[: row.index(pad)]
            texts.append(self._render(row, skip_special_tokens, max_line_chars))
        return texts

    def _render(self, row: list[int], skip_special: bool, max_line_chars: int | None) -> str:
        if self._renderer is None:
            self._renderer = Renderer()
        if skip_special:
            special = (self.PAD, self.BOS, self.EOS)
            row = [i for i in row if i not in special]
        return self._renderer.render(row, max_line_chars)

    def token_name(self, token_id: int) -> str:
        """The printable name of one id."""
        if self._renderer is None:
            self._renderer = Renderer()
        return self._renderer.names[token_id]

    def config(self) -> dict:
        """JSON-able description for shard manifests: equal configs <=> equal encodings."""
        return {
            "tokenizer": self.NAME,
            "version": self.version,
            "vocab_size": self.vocab_size,
            "options": {
                "max_text_bytes": self.max_text_bytes,
                "max_event_tokens": self.max_event_tokens,
                "max_snapshot_tokens": self.max_snapshot_tokens,
            },
        }

    def __reduce__(self):
        """Pickle as its options only (worker processes rebuild the memo caches)."""
        return (Tokenizer, (self.max_text_bytes, self.max_event_tokens, self.max_snapshot_tokens))

    def __repr__(self) -> str:
        return (
            f"Tokenizer(max_text_bytes={self.max_text_bytes}, "
            f"max_event_tokens={self.max_event_tokens}, "
            f"max_snapshot_tokens={self.max_snapshot_tokens}) "
            f"# version {self.version}, vocab {self.vocab_size}"
        )
