"""Classified errors for bad input.

Every file a user hands us either reads, or fails with a :class:`SessionError` whose ``reason``
comes from the small fixed set :data:`REASONS`. Callers (the preprocessor, the raw loader) record
the reason and go on with the next file: bad input never takes the process down.

Any *other* exception raised while reading or tokenizing one file is a bug or an input shape
nobody foresaw. Callers catch it too and record it under the closest existing reason
(:func:`classify_unexpected`), so that the error reasons stay a small fixed set:

============================  ==================  ===========================================
exception                     reason              why
============================  ==================  ===========================================
``OSError``                   ``io_error``        the file could not be read
``MemoryError``               ``too_large``       the file needs more memory than we have
``RecursionError``            ``too_deep``        nesting beyond what a recursive step handles
``UnicodeError``              ``not_json``        text that does not decode
anything else                 ``not_rrweb``       it parsed, but its structure is not rrweb we
                                                  know
(the worker process died)     ``worker_crashed``  reading the file killed the process (the OOM
                                                  killer's SIGKILL, a crash in native code),
                                                  even alone in a fresh process
============================  ==================  ===========================================
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
        "worker_crashed",  # reading it killed the process (e.g. the OOM killer), even alone
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


def classify_unexpected(exc: BaseException) -> str:
    """The error reason for an exception that is not a SessionError (see the module docstring)."""
    if isinstance(exc, OSError):
        return "io_error"
    if isinstance(exc, MemoryError):
        return "too_large"
    if isinstance(exc, RecursionError):
        return "too_deep"
    if isinstance(exc, UnicodeError):
        return "not_json"
    return "not_rrweb"
