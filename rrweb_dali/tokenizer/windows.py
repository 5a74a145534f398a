"""The overflow policy: what happens to a session longer than ``max_tokens``.

A pure function of one token array, so it can be tested on its own and cuts sequences the same
way wherever tokens are made: in ``preprocess`` (every policy) and in raw mode's token cache
(``truncate``), which is why a raw-mode row equals the ``preprocess --overflow truncate`` one.
The three policies:

``split`` (the default)
    Cut the session into consecutive windows of at most ``max_tokens`` tokens: plain slices,
    ``tokens[0:M]``, ``tokens[M:2M]``, ... numbered 0, 1, 2, ... (the ``window`` column of the shard
    index). No token is added or dropped, so concatenating a file's windows in window order gives
    back exactly ``Tokenizer.encode(events)``. Only window 0 starts with BOS and only the last
    window ends with EOS: BOS means "a session starts here" and EOS "the session ended here", and a
    window in the middle of a session is neither. A model (or sampler) that needs to know whether a
    sequence is a continuation reads its window number.
``truncate``
    Keep window 0 of ``split`` (the first ``max_tokens`` tokens, starting with BOS and, since the
    session did not end there, without EOS) and drop the rest.
``skip``
    Drop the whole session; the preprocessor counts it and lists the file in ``errors.jsonl``.

A session that fits (``len(tokens) <= max_tokens``) is kept whole under every policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLICIES = ("split", "truncate", "skip")

#: outcome of :func:`apply_overflow` for one session
FIT, SPLIT, TRUNCATED, SKIPPED = "fit", "split", "truncated", "skipped"


@dataclass(frozen=True)
class Overflow:
    """The windows to write for one session (views of the input, never copies) and what happened."""

    windows: list[np.ndarray]
    outcome: str  # FIT, SPLIT, TRUNCATED or SKIPPED
    dropped_tokens: int  # tokens not written (truncate and skip only)


def apply_overflow(tokens: np.ndarray, max_tokens: int, policy: str = "split") -> Overflow:
    """Apply ``policy`` to one session's ``tokens`` with a limit of ``max_tokens`` per sequence.

    ``max_tokens`` must be at least 2 (room for BOS and EOS of a whole session). Windows are
    numbered by their position in the returned list.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown overflow policy {policy!r}; expected one of {POLICIES}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
        raise ValueError(f"max_tokens must be an int >= 2, got {max_tokens!r}")
    n = int(tokens.shape[0])
    if n <= max_tokens:
        return Overflow([tokens], FIT, 0)
    if policy == "skip":
        return Overflow([], SKIPPED, n)
    if policy == "truncate":
        return Overflow([tokens[:max_tokens]], TRUNCATED, n - max_tokens)
    windows = [tokens[start : start + max_tokens] for start in range(0, n, max_tokens)]
    return Overflow(windows, SPLIT, 0)
