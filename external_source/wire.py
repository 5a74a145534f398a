"""The batch wire format: how one training batch's bookkeeping crosses DALI, as one int64 vector.

Every batch source hands DALI two arrays per training batch (one DALI sample each): the flat
tokens, and ``aux``, an int64 vector laid out here. The loader reads ``aux`` back, on the host
(and, on a GPU, its device copy for the padding kernels). It is the only channel from DALI's
worker processes to the training process, so it also carries the counters of the work done.

Layout of ``aux`` (all int64)::

    [0]                 WIRE_MAGIC + WIRE_VERSION      a wrong vector fails loudly, never misreads
    [1]                 flags                          FLAG_TAIL: a source-specific tail follows;
                                                       FLAG_DATASET: a mixture's sources follow
    [2]                 n                              segments: rows (padded), segments (packing)
    [3 : 3+M]           meta, M = len(META_FIELDS)     rows, width, tokens, reads, gather_ns, bytes
    [3+M : 3+M+n]       lengths                        row lengths, or segment lengths
    [3+M+n : 3+M+2n]    ids                            session ids (``index``), -1 for padding
    [3+M+2n : 3+M+3n]   dataset (only with FLAG_DATASET) a mixture's source of each id, -1 for
                                                       padding (the ids then number rows within
                                                       their source)
    [end : ]            tail (only with FLAG_TAIL)     e.g. raw mode's cache counters

The tail's length is whatever is left, so no guesswork is needed to find it: the header says
whether there is one and ``n`` says where it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

WIRE_VERSION = 1
WIRE_MAGIC = 0x5257_4400_0000  # "RWD" in the high bytes; the low bytes hold the version
META_FIELDS = ("rows", "width", "tokens", "reads", "gather_ns", "bytes")
META = {name: i for i, name in enumerate(META_FIELDS)}
FLAG_TAIL = 1
FLAG_DATASET = 2

_HEADER = 3
_N_META = len(META_FIELDS)
_BODY = _HEADER + _N_META  # where the lengths start


class WireError(ValueError):
    """An ``aux`` vector that is not of this format or version (a bug, never bad user data)."""


@dataclass(frozen=True)
class WireBatch:
    """The parts of one decoded ``aux`` (views of it: numpy arrays or tensors, as given)."""

    meta: Any
    lengths: Any
    index: Any
    tail: Any | None
    dataset: Any | None = None  # a mixture's source of each row (or segment)

    def field(self, name: str) -> int:
        """One meta value as a Python int (read on the host copy: no device sync)."""
        return int(self.meta[META[name]])


def encode(
    meta: Sequence[int], lengths: np.ndarray, ids: np.ndarray, dataset: np.ndarray | None = None
) -> np.ndarray:
    """The ``aux`` vector of one batch; ``meta`` in :data:`META_FIELDS` order; ``dataset`` (one
    per id) for a mixture."""
    if len(meta) != _N_META:
        raise WireError(f"meta needs {_N_META} values ({', '.join(META_FIELDS)}), got {len(meta)}")
    n = int(lengths.size)
    if ids.size != n:
        raise WireError(f"{n} lengths but {ids.size} ids")
    if dataset is not None and dataset.size != n:
        raise WireError(f"{n} ids but {dataset.size} dataset numbers")
    parts = 2 if dataset is None else 3
    aux = np.empty(_BODY + parts * n, dtype=np.int64)
    aux[0], aux[1], aux[2] = WIRE_MAGIC + WIRE_VERSION, 0 if dataset is None else FLAG_DATASET, n
    aux[_HEADER:_BODY] = meta
    aux[_BODY : _BODY + n] = lengths
    aux[_BODY + n : _BODY + 2 * n] = ids
    if dataset is not None:
        aux[_BODY + 2 * n :] = dataset
    return aux


def with_tail(aux: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """``aux`` with a source-specific ``tail`` appended (and flagged)."""
    if int(aux[1]) & FLAG_TAIL:
        raise WireError("this aux vector already has a tail")
    out = np.concatenate([aux, np.asarray(tail, dtype=np.int64)])
    out[1] |= FLAG_TAIL
    return out


def set_meta(aux: np.ndarray, name: str, value: int) -> None:
    """Overwrite one meta value in place (the source fills ``gather_ns`` last)."""
    aux[_HEADER + META[name]] = value


def get_meta(aux: np.ndarray, name: str) -> int:
    """One meta value of an ``aux`` vector its maker just encoded (no validation: see
    :func:`decode` for vectors from elsewhere)."""
    return int(aux[_HEADER + META[name]])


def decode(aux) -> WireBatch:
    """Split an ``aux`` vector (numpy array or 1-D tensor) into views of its parts."""
    if aux.shape[0] < _BODY:
        raise WireError(f"aux vector of {aux.shape[0]} values is shorter than its header")
    version = int(aux[0]) - WIRE_MAGIC
    if version != WIRE_VERSION:
        raise WireError(f"aux vector of wire version {version}, this library reads {WIRE_VERSION}")
    flags, n = int(aux[1]), int(aux[2])
    ids_end = _BODY + 2 * n
    end = ids_end + n if flags & FLAG_DATASET else ids_end
    if n < 0 or aux.shape[0] < end or (aux.shape[0] > end and not flags & FLAG_TAIL):
        raise WireError(f"aux vector of {aux.shape[0]} values does not hold {n} segments")
    tail = aux[end:] if flags & FLAG_TAIL else None
    dataset = aux[ids_end:end] if flags & FLAG_DATASET else None
    lengths, ids = aux[_BODY : _BODY + n], aux[_BODY + n : ids_end]
    return WireBatch(aux[_HEADER:_BODY], lengths, ids, tail, dataset)


def device_parts(device_aux, n: int) -> tuple[Any, Any]:
    """``(lengths, ids)`` of a device copy of ``aux`` whose host copy said ``n`` segments.

    Sliced by the host's ``n``, so nothing is read back from the device (no sync).
    """
    return device_aux[_BODY : _BODY + n], device_aux[_BODY + n : _BODY + 2 * n]


def device_dataset(device_aux, n: int) -> Any:
    """The ``dataset`` part of a device copy of ``aux`` whose host copy has one (no sync)."""
    return device_aux[_BODY + 2 * n : _BODY + 3 * n]
