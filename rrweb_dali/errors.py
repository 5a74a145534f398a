"""Classified errors for bad input.

Every file a user hands us either reads, or fails with a :class:`SessionError` whose ``reason``
comes from the small fixed set :data:`REASONS`. Callers (the preprocessor, the raw loader) record
the reason and go on with the next file: bad input never takes the process down.
"""

from __future__ import annotations

REASONS: frozenset[str] = frozenset(
    {
        "empty",  # no bytes, or no events after unwrapping
        "not_json",  # not JSON / JSON Lines in any form we know
        "truncated",  # cut short and nothing complete could be recovered
        "not_rrweb",  # valid JSON, but not rrweb events in any known wrapper
        "too_large",  # over a size limit (decompressed bytes, events)
        "too_deep",  # nesting deeper than the depth limit
        "bad_compression",  # gzip / zlib stream that does not decompress
        "io_error",  # the file could not be read at all
    }
)


class SessionError(ValueError):
    """A session file that cannot be read, with a machine-readable ``reason``.

    ``reason`` is one of :data:`REASONS`; ``detail`` is a short human explanation; ``path`` is the
    file it concerns, when known.
    """

    def __init__(self, reason: str, detail: str, path: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(
                f"unknown SessionError reason {reason!r}; expected one of {sorted(REASONS)}"
            )
        self.reason = reason
        self.detail = detail
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{reason}: {detail}")

    def with_path(self, path: str) -> SessionError:
        """The same error, naming ``path`` (used when a lower layer did not know the file)."""
        return SessionError(self.reason, self.detail, path)

    def __reduce__(self):  # picklable across worker processes
        return (SessionError, (self.reason, self.detail, self.path))
