"""The public structural tokenizer: rrweb events -> uint16 token ids, and back to readable text.

Why structural and not BPE over JSON: keys, ids and punctuation carry no behaviour, so a byte-level
BPE spends most tokens on them. This tokenizer writes one token per piece of structure (event type,
source, interaction, element open/close, attribute name), buckets numbers (time deltas, viewport-
relative coordinates, sizes), caps text, and replaces CSS/images/base64 with a blob token plus a
size bucket. The vocabulary is fixed (see :mod:`rrweb_dali.tokenizer.vocab`), so equal configs
give equal ids on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rrweb_dali.tokenizer import vocab
from rrweb_dali.tokenizer.decode import Renderer
from rrweb_dali.tokenizer.encode import EventEncoder

PAD_ID: int = vocab.PAD_ID
BOS_ID: int = vocab.BOS_ID
EOS_ID: int = vocab.EOS_ID

MAX_TEXT_BYTES_LIMIT = 1 << 16
# encode() converts internal ids (final id - BYTE_BASE) through int16.
assert np.iinfo(np.int16).max >= vocab.VOCAB_SIZE - vocab.BYTE_BASE


class Tokenizer:
    """rrweb events -> 1-D uint16 token ids (BOS ... EOS); deterministic, never raises on events.

    ``max_text_bytes`` caps each text field (text node, attribute value, input text, URL) in UTF-8
    bytes; a longer field is cut and followed by ``<TRUNC>``.
    """

    PAD: int = PAD_ID
    BOS: int = BOS_ID
    EOS: int = EOS_ID
    NAME = "rrweb-dali-structural"

    def __init__(self, max_text_bytes: int = 64) -> None:
        if max_text_bytes.__class__ is not int or not 0 <= max_text_bytes <= MAX_TEXT_BYTES_LIMIT:
            raise ValueError(
                f"max_text_bytes must be an int in [0, {MAX_TEXT_BYTES_LIMIT}], "
                f"got {max_text_bytes!r}"
            )
        self.max_text_bytes = max_text_bytes
        self.vocab_size: int = vocab.VOCAB_SIZE
        self.version: int = vocab.VERSION
        self._encoder = EventEncoder(max_text_bytes)
        self._renderer: Renderer | None = None

    def encode(self, events: list[dict]) -> np.ndarray:
        """Token ids of one session's events: uint16, 1-D, BOS first, EOS last."""
        internal = self._encoder.encode(events)
        # Internal ids lie in [-BYTE_BASE, vocab_size - BYTE_BASE): int16 holds them, and after
        # the shift they are the final ids, non-negative, so the uint16 view is exact.
        ids = np.fromiter(internal, dtype=np.int16, count=len(internal))
        ids += vocab.BYTE_BASE
        return ids.view(np.uint16)

    def decode(self, ids: Iterable[int]) -> str:
        """A readable rendering, one event per line (lossy: it shows what the model sees)."""
        if self._renderer is None:
            self._renderer = Renderer()
        return self._renderer.render(ids)

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
            "options": {"max_text_bytes": self.max_text_bytes},
        }

    def __reduce__(self):
        """Pickle as its options only (worker processes rebuild the memo caches)."""
        return (Tokenizer, (self.max_text_bytes,))

    def __repr__(self) -> str:
        return (
            f"Tokenizer(max_text_bytes={self.max_text_bytes}) "
            f"# version {self.version}, vocab {self.vocab_size}"
        )
