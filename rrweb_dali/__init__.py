"""rrweb-dali: rrweb session recordings to GPU training batches.

The light parts (reading, tokenizing) import with numpy and orjson alone. The rest is imported on
first use: :func:`make_loader` needs DALI and torch (``pip install 'rrweb-dali[torch,dali]'``),
:func:`open_dataset` numpy alone, and the shard reader, preprocessing and loader state are only
loaded when asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rrweb_dali.errors import REASONS, SessionError
from rrweb_dali.extras import MissingDependency
from rrweb_dali.ingest import ReadLimits, ReadReport, Session, load_session, read_session
from rrweb_dali.tokenizer import Tokenizer

if TYPE_CHECKING:
    from rrweb_dali.dataset import Dataset, open_dataset
    from rrweb_dali.external_source import LoaderState, LoaderStateError, ShardReader
    from rrweb_dali.loader import Loader, make_loader
    from rrweb_dali.preprocess import PreprocessOptions, PreprocessResult
    from rrweb_dali.shards.format import ShardFormatError

# The one place the version is written; pyproject.toml reads it from here.
__version__ = "0.1.0"

# Public names imported on first use, and the module that holds each. (``preprocess()`` itself is
# ``rrweb_dali.preprocess.preprocess``: here the name is its subpackage.)
_LAZY = {
    "Dataset": "rrweb_dali.dataset",
    "open_dataset": "rrweb_dali.dataset",
    "Loader": "rrweb_dali.loader",
    "make_loader": "rrweb_dali.loader",
    "LoaderState": "rrweb_dali.external_source",
    "LoaderStateError": "rrweb_dali.external_source",
    "ShardReader": "rrweb_dali.external_source",
    "PreprocessOptions": "rrweb_dali.preprocess",
    "PreprocessResult": "rrweb_dali.preprocess",
    "ShardFormatError": "rrweb_dali.shards.format",
}

__all__ = [
    "REASONS",
    "Dataset",
    "Loader",
    "LoaderState",
    "LoaderStateError",
    "MissingDependency",
    "PreprocessOptions",
    "PreprocessResult",
    "ReadLimits",
    "ReadReport",
    "Session",
    "SessionError",
    "ShardFormatError",
    "ShardReader",
    "Tokenizer",
    "__version__",
    "load_session",
    "make_loader",
    "open_dataset",
    "read_session",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rrweb_dali' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
