"""The inputs of raw mode: the files found in the sources, in the order the plan numbers them.

The unit raw mode plans, shards and counts is **one file**, numbered in
:func:`~rrweb_dali.ingest.discover.discover` order (sorted relative paths, the order
``preprocess`` writes sessions in), so the number of units per epoch is known before any file is
read, on every rank alike.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rrweb_dali.external_source.reader import PathLike

from rrweb_dali.ingest.discover import discover
from rrweb_dali.tokenizer import Tokenizer

BYTES_PER_TOKEN = 6  # bytes on disk per token, for the bucketing proxy (5.7 on the real corpus)
# The row an unreadable file gives in padded mode; no file is planned shorter than it.
REPLACEMENT = np.array([Tokenizer.BOS, Tokenizer.EOS], dtype=np.uint16)


@dataclass(frozen=True)
class RawFiles:
    """The inputs of raw mode: paths to read (absolute) and paths to show (relative), sizes."""

    relpaths: tuple[str, ...]
    paths: tuple[str, ...]
    sizes: np.ndarray

    @classmethod
    def discover(cls, sources: PathLike | Sequence[PathLike]) -> RawFiles:
        """Every file of ``sources`` (directories, files, globs), as ``preprocess`` finds them."""
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        found = discover(list(sources))
        if not found:
            raise ValueError(f"no input file found in {list(map(str, sources))}")
        return cls(
            tuple(f.relpath for f in found),
            tuple(os.path.abspath(f.path) for f in found),
            np.array([f.size for f in found], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.paths)

    def proxy_lengths(self) -> np.ndarray:
        """Token counts guessed from file sizes: what bucketing plans with before tokenizing
        (compressed and packed files look shorter than they are)."""
        return np.maximum(self.sizes // BYTES_PER_TOKEN, REPLACEMENT.size)

    @property
    def fingerprint(self) -> str:
        """A digest of the file set: every relative path and size, in order.

        Saved with a loader's state, so that a state is never applied to another set of files
        (even one with as many files). Computed from the discovery: nothing is read or hashed.
        """
        h = hashlib.sha256(b"rrweb-dali raw files\0")
        for relpath, size in zip(self.relpaths, self.sizes.tolist(), strict=True):
            # JSON (ASCII): unambiguous whatever a path holds, undecodable bytes included
            h.update(json.dumps([relpath, size]).encode() + b"\n")
        return h.hexdigest()[:32]
