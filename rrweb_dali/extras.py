"""Optional dependencies and the extras that install them.

The reader, tokenizer and shards need numpy and orjson alone; the loader needs torch and DALI, the
dashboard Streamlit, the Ray executor Ray. :func:`require` imports one of them or raises
:class:`MissingDependency`, whose message says which ``pip install 'rrweb-dali[EXTRA]'`` brings it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Top-level module -> (what to install, the extra that brings it).
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "torch"),
    "nvidia": ("nvidia-dali", "dali"),
    "streamlit": ("streamlit", "dashboard"),
    "altair": ("altair", "dashboard"),
    "pandas": ("pandas", "dashboard"),
    "vl_convert": ("vl-convert-python", "dashboard"),
    "ray": ("ray", "ray"),
    "fsspec": ("s3fs", "s3"),
    "s3fs": ("s3fs", "s3"),
}
# DALI's extra is chosen by build: the default one also runs CPU-only.
DALI_HINT = " (or [cuda12] / [cuda13] for a GPU build matching your CUDA driver)"


class MissingDependency(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def install_hint(module: str) -> str | None:
    """``pip install 'rrweb-dali[EXTRA]'`` for an optional module, None for any other."""
    known = EXTRAS.get(module.split(".")[0])
    if known is None:
        return None
    _, extra = known
    return f"pip install 'rrweb-dali[{extra}]'" + (DALI_HINT if extra == "dali" else "")


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` for ``purpose`` (e.g. "the loader"), or raise :class:`MissingDependency`
    naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing(module, purpose) from exc


def missing(module: str, purpose: str) -> MissingDependency:
    """The error :func:`require` raises, for callers that import by other means."""
    name = EXTRAS.get(module.split(".")[0], (module, ""))[0]
    hint = install_hint(module)
    return MissingDependency(
        f"{purpose} needs {name}, which is not installed" + (f": {hint}" if hint else "")
    )
