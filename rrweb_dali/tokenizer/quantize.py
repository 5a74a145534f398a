"""Numbers to bucket indexes: time deltas, coordinates, scroll offsets, sizes.

Why integer math: the same event must give the same token on every machine. Inputs are JSON
numbers (int or IEEE double); the only float operations are one multiply and a truncation, which
IEEE 754 makes identical everywhere, and nothing goes through float formatting.
All functions return an index inside their range (clamped); the encoder adds the range's base.
Each raises TypeError / ValueError / OverflowError on a non-number, which the encoder turns into
a ``<MALFORMED>`` token for that event.
"""

from __future__ import annotations

import math

from rrweb_dali.tokenizer.vocab import (
    COORD_SIZE,
    COUNT_SIZE,
    DT_SIZE,
    SCROLL_SIZE,
    SCROLL_STEPS_PER_VIEWPORT,
    SIZE_SIZE,
    VIEWPORT_SIZE,
    VIEWPORT_STEP_PX,
    log_bucket,
)

DEFAULT_VIEWPORT = (1024, 768)
"""Viewport assumed before any Meta or ViewportResize event has said otherwise."""

_SMALL = 4096
# log_bucket for 0.._SMALL-1, precomputed: time deltas and offsets are mostly small.
LOG_TABLE: tuple[int, ...] = tuple(log_bucket(d) for d in range(_SMALL))


def as_int(value) -> int:
    """A JSON number as an int, by floor; bools and non-numbers raise (they are malformed)."""
    cls = value.__class__
    if cls is int:
        return value
    if cls is float:
        return math.floor(value)  # raises on nan / inf
    raise TypeError(f"not a number: {cls.__name__}")


def log_index(d: int, size: int) -> int:
    """log_bucket of a non-negative int, clamped to ``size`` buckets."""
    b = (LOG_TABLE[d] if d > 0 else 0) if d < _SMALL else log_bucket(d)
    return b if b < size else size - 1


def dt_index(ms) -> int:
    """Bucket of a non-negative time delta in ms (float ms are floored)."""
    return log_index(as_int(ms), DT_SIZE)


def count_index(n) -> int:
    """Bucket of a small non-negative count or offset; negatives go to bucket 0."""
    n = as_int(n)
    return log_index(n, COUNT_SIZE) if n > 0 else 0


def size_index(n: int) -> int:
    """Bucket of a blob length: its bit length, clamped."""
    b = n.bit_length()
    return b if b < SIZE_SIZE else SIZE_SIZE - 1


def coord_scale(extent) -> float:
    """Multiplier taking a coordinate in px to a bucket, for a viewport ``extent`` px wide/high."""
    return COORD_SIZE / extent


def scroll_scale(extent) -> float:
    """Multiplier taking a scroll offset in px to 1/8-viewport steps."""
    return SCROLL_STEPS_PER_VIEWPORT / extent


def clamp_index(value: float, size: int) -> int:
    """Truncate a scaled value to an index in [0, size)."""
    i = int(value)
    if i < 0:
        return 0
    return i if i < size else size - 1


def viewport_index(px) -> int:
    """Bucket of a viewport width or height in VIEWPORT_STEP_PX steps."""
    i = as_int(px) // VIEWPORT_STEP_PX
    if i < 0:
        return 0
    return i if i < VIEWPORT_SIZE else VIEWPORT_SIZE - 1


def valid_extent(value) -> bool:
    """Whether a Meta / ViewportResize width or height can serve as a viewport size."""
    return value.__class__ in (int, float) and 0 < value < 1e9


__all__ = [
    "COORD_SIZE",
    "DEFAULT_VIEWPORT",
    "SCROLL_SIZE",
    "as_int",
    "clamp_index",
    "coord_scale",
    "count_index",
    "dt_index",
    "log_index",
    "scroll_scale",
    "size_index",
    "valid_extent",
    "viewport_index",
]
