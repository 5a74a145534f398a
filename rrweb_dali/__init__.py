"""rrweb-dali: rrweb session recordings to GPU training batches.

The light parts (reading, tokenizing, shards) import with numpy and orjson alone; the loader needs
DALI and torch, so :func:`make_loader` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rrweb_dali.errors import REASONS, SessionError
from rrweb_dali.ingest import ReadLimits, ReadReport, Session, load_session, read_session
from rrweb_dali.tokenizer import Tokenizer

if TYPE_CHECKING:
    from rrweb_dali.loader import make_loader

__version__ = "0.1.0"

__all__ = [
    "REASONS",
    "ReadLimits",
    "ReadReport",
    "Session",
    "SessionError",
    "Tokenizer",
    "__version__",
    "load_session",
    "make_loader",
    "read_session",
]


def __getattr__(name: str) -> Any:
    if name == "make_loader":
        from rrweb_dali.loader import make_loader

        return make_loader
    raise AttributeError(f"module 'rrweb_dali' has no attribute {name!r}")
