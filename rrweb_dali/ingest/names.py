"""File names as text that every output can hold, losslessly.

POSIX file names are bytes. Python hands names that are not valid UTF-8 over as ``str`` with
lone surrogates (``os.fsdecode``'s ``surrogateescape``: byte ``0xff`` becomes ``"\\udcff"``),
which JSON writers, the shard format and cache keys cannot encode. Every name that leaves this
process (the manifest, ``errors.jsonl``, shard file tables, cache keys) goes through
:func:`portable_name`, and :func:`name_bytes` gives the original bytes back:

* a name that is valid UTF-8 and holds no backslash is kept as it is (the common case);
* any other name is written with each byte that is not part of valid UTF-8 as ``\\xNN`` and each
  backslash as ``\\\\``, so ``b"bad-\\xff.json"`` is stored as ``bad-\\xff.json`` and a stored name
  maps back to exactly one name on disk.

A valid name with a backslash in it is therefore stored with the backslash doubled; on POSIX
systems such names are rare, and the doubling is what keeps the mapping one-to-one.
"""

from __future__ import annotations

import os
import re

_ESCAPE = re.compile(rb"\\\\|\\x([0-9a-f]{2})")


def portable_name(name: str | os.PathLike) -> str:
    """The name as valid Unicode text, losslessly (see the module docstring)."""
    raw = os.fsencode(name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\\" not in text:
        return text
    escaped = raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    return escaped


def name_bytes(stored: str) -> bytes:
    """The bytes of the name on disk that :func:`portable_name` stored as ``stored``."""
    raw = stored.encode("utf-8")
    if b"\\" not in raw:
        return raw
    return _ESCAPE.sub(
        lambda m: b"\\" if m.group(1) is None else bytes.fromhex(m.group(1).decode()), raw
    )


def disk_name(stored: str) -> str:
    """The name on disk as Python's file functions take it (``os.fsdecode`` of its bytes)."""
    return os.fsdecode(name_bytes(stored))
