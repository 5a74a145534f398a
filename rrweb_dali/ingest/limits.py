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
    because it protects memory, not the result). ``max_memory`` bounds the memory reading one
    file may take, *estimated before parsing* from the structure of the decompressed text (see
    ``rrweb_dali.ingest.parse_cost``): the file's bytes, the decompressed text and the parsed
    objects of everything decoded from it, and what orjson holds while it parses. The default
    1 GiB keeps a worker's measured peak under 1.5 GB for any input and admits recordings up to
    ~80 MB of JSON (they peak at ~9x their size while parsed); raise it to read bigger ones on a
    machine that has the memory.

    Two options turn what is otherwise reported into a rejection (reason ``not_rrweb``, the
    detail naming the option), for a trainer that wants only complete recordings:
    ``require_timestamps`` refuses a file with any event lacking a numeric ``timestamp``
    (counted in ``ReadReport.missing_timestamps`` otherwise), ``require_full_snapshot`` one
    with no FullSnapshot holding a DOM tree (report flags ``no_full_snapshot`` / ``no_dom``).
    """

    max_bytes: int = 1 << 30
    max_depth: int = 400
    max_events: int = 2_000_000
    max_memory: int = 1 << 30
    require_timestamps: bool = False
    require_full_snapshot: bool = False

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_events", "max_memory"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ReadLimits.{name} must be a positive int, got {value!r}")
        for name in ("require_timestamps", "require_full_snapshot"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ReadLimits.{name} must be a bool, got {getattr(self, name)!r}")
