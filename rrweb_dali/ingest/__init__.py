"""Ingestion: any rrweb recording file -> an ordered, de-duplicated list of event dicts.

``read_session(path)`` is the entry point; ``load_session`` adds a :class:`ReadReport` saying
what was found, skipped, dropped or salvaged. Bad input raises
:class:`rrweb_dali.errors.SessionError` with a machine-readable reason.
"""

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest.limits import ReadLimits
from rrweb_dali.ingest.reader import (
    ReadReport,
    Session,
    check_dom_depth,
    load_session,
    parse_session_bytes,
    read_file_bytes,
    read_session,
)
from rrweb_dali.ingest.structure import SESSION_FLAGS

__all__ = [
    "SESSION_FLAGS",
    "ReadLimits",
    "ReadReport",
    "Session",
    "SessionError",
    "check_dom_depth",
    "load_session",
    "parse_session_bytes",
    "read_file_bytes",
    "read_session",
]
