"""Resource limits for reading one session file.

Session files come from the wild (uploads, exports, other people's buckets), so every dimension
that can blow up memory or time has a ceiling: decompressed size (a gzip bomb stops there), DOM
nesting (a hostile 20,000-level tree must not reach a recursive consumer) and the number of
events. Exceeding a limit is a classified :class:`~rrweb_dali.errors.SessionError`, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadLimits:
    """Ceilings applied while reading one file.

    ``max_bytes`` bounds the bytes on disk *and* the decompressed bytes of the file, counted
    together with every nested stream inside it (packed event strings, PostHog ``cv`` payloads),
    so the total JSON text parsed for one file never exceeds it. ``max_depth`` bounds the nesting
    of serialized DOM nodes (``childNodes`` levels) in full snapshots and mutation adds.
    ``max_events`` bounds the events found in the file (counted before duplicates are dropped,
    because it protects memory, not the result).
    """

    max_bytes: int = 1 << 30
    max_depth: int = 400
    max_events: int = 2_000_000

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_events"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ReadLimits.{name} must be a positive int, got {value!r}")
