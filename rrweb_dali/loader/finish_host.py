"""The finishing step on the host (the CPU device): DALI's output becomes the batch's tensors.

Padded mode: the source laid the rows out already padded (``Transport.pad_on_host``) and DALI
cast them, so that output *is* ``input_ids`` (zero-copy); this builds the mask, labels and
positions from the row lengths with fills into recycled buffers (see :mod:`.buffers`: fresh
pages cost several times the fill), every element written, so no stale data survives.

Packing mode: per-segment fills. Segments never cross a row, so a segment is a run of at most
``width`` tokens: its positions are a slice of one ramp, its document id a fill.

The keys and their types come from :mod:`.fields`.
"""

from __future__ import annotations

import numpy as np
import torch

from rrweb_dali.loader.buffers import HostBufferPool
from rrweb_dali.loader.fields import IGNORE_INDEX, check_implements, fields_for
from rrweb_dali.loader.options import OutputOptions


class _Fresh:
    """Stands in for a pool when none is given: fresh arrays, plain tensors."""

    @staticmethod
    def take(shape: tuple[int, ...], dtype) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def export(arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(arr)


@check_implements(packing=False)
class _Padded:
    def __init__(self, ids, lengths, index, width, pool, dataset=None):
        rows = lengths.size
        self._dataset = dataset
        self._ids = ids.reshape(rows, width)
        self._lengths, self._index, self._width, self._pool = lengths, index, width, pool
        self._short = [(b, n) for b, n in enumerate(lengths.tolist()) if n < width]
        self._mask: np.ndarray | None = None

    def input_ids(self, dtype: str) -> np.ndarray:
        return self._ids  # DALI cast it to ``dtype`` already

    def attention_mask(self, dtype: str) -> np.ndarray:
        if self._mask is None:
            mask = self._pool.take(self._ids.shape, dtype)
            mask.fill(1)  # a memset-speed fill, then zero the pad tails: ~3x faster than a compare
            for b, n in self._short:
                mask[b, n:] = 0
            self._mask = mask
        return self._mask

    def labels(self, dtype: str) -> np.ndarray:
        labels = self._pool.take(self._ids.shape, dtype)
        np.copyto(labels, self._ids)
        for b, n in self._short:
            labels[b, n:] = IGNORE_INDEX
        bad = self._index < 0  # rows standing in for unreadable raw files must not train
        if bad.any():
            labels[bad] = IGNORE_INDEX
        return labels

    def position_ids(self, dtype: str) -> np.ndarray:
        mask = self.attention_mask(dtype)
        pos = self._pool.take(self._ids.shape, dtype)
        np.multiply(np.arange(self._width, dtype=dtype), mask, out=pos)  # column where valid
        return pos

    def lengths(self, dtype: str) -> np.ndarray:
        return self._lengths.astype(dtype, copy=False)

    def index(self, dtype: str) -> np.ndarray:
        return self._index.astype(dtype, copy=False)

    def dataset(self, dtype: str) -> np.ndarray:
        return self._dataset.astype(dtype, copy=False)


@check_implements(packing=True)
class _Packed:
    def __init__(self, tokens, seg_lengths, seg_index, width, pool, dataset=None):
        self._dataset = dataset
        self._n = tokens.size
        self._rows, self._width, self._pool = self._n // width, width, pool
        self._ids = tokens.reshape(self._rows, width)
        seg = seg_lengths.astype(np.int64, copy=False)
        self._cu = np.zeros(seg.size + 1, dtype=np.int32)
        np.cumsum(seg, out=self._cu[1:])
        self._index = seg_index
        self._segments = list(
            zip(self._cu[:-1].tolist(), seg.tolist(), seg_index.tolist(), strict=True)
        )
        # Padding segments (session -1) exist only in the epoch's last row: usually none.
        self._padding = [(a, n) for a, n, session in self._segments if session < 0]
        self._pos: np.ndarray | None = None
        self._doc: np.ndarray | None = None

    def _positions_and_documents(self, pos_dtype: str) -> None:
        """Both per-segment fills in one pass over the segments (Python's loop is the cost)."""
        shape = (self._rows, self._width)
        pos, doc = self._pool.take(shape, pos_dtype), self._pool.take(shape, np.int64)
        flat_pos, flat_doc = pos.reshape(-1), doc.reshape(-1)  # views that stay in here
        ramp = np.arange(self._width, dtype=pos_dtype)
        for start, length, session in self._segments:
            end = start + length
            flat_pos[start:end] = ramp[:length]  # positions restart at every segment
            flat_doc[start:end] = session
        self._pos, self._doc = pos, doc

    def input_ids(self, dtype: str) -> np.ndarray:
        return self._ids

    def attention_mask(self, dtype: str) -> np.ndarray:
        mask = self._pool.take((self._rows, self._width), dtype)
        mask.fill(1)
        flat = mask.reshape(-1)
        for start, length in self._padding:
            flat[start : start + length] = 0
        return mask

    def labels(self, dtype: str) -> np.ndarray:
        labels = self._pool.take((self._rows, self._width), dtype)
        np.copyto(labels, self._ids)
        flat = labels.reshape(-1)
        for start, length, session in self._segments:
            if session < 0:
                flat[start : start + length] = IGNORE_INDEX
            elif length:
                flat[start] = IGNORE_INDEX  # a segment's first token has no context
        return labels

    def position_ids(self, dtype: str) -> np.ndarray:
        if self._pos is None:
            self._positions_and_documents(dtype)
        return self._pos

    def document_ids(self, dtype: str) -> np.ndarray:
        if self._doc is None:
            self._positions_and_documents("int64")
        return self._doc

    def cu_seqlens(self, dtype: str) -> np.ndarray:
        return self._cu

    def seq_idx(self, dtype: str) -> np.ndarray:
        """Each token's segment number in the batch (a fill per segment, like the ids)."""
        out = self._pool.take((self._rows, self._width), dtype)
        flat = out.reshape(-1)
        for number, (start, length, _) in enumerate(self._segments):
            flat[start : start + length] = number
        return out

    def lengths(self, dtype: str) -> np.ndarray:
        """Real tokens per row: the width less the padding segments in it (no pass over the
        mask)."""
        lengths = np.full(self._rows, self._width, dtype=dtype)
        for start, length in self._padding:
            lengths[start // self._width] -= length
        return lengths

    def index(self, dtype: str) -> np.ndarray:
        return self._index.astype(dtype, copy=False)

    def dataset(self, dtype: str) -> np.ndarray:
        return self._dataset.astype(dtype, copy=False)


def finish_host(
    ids: np.ndarray,
    lengths: np.ndarray,
    index: np.ndarray,
    width: int,
    outputs: OutputOptions,
    pool: HostBufferPool | None = None,
    dataset: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """The batch of one DALI sample on the host: ``ids`` (``[B * width]``, the output type),
    the rows' (or segments') lengths and session ids from the wire (and a mixture's sources);
    see the module doc."""
    pool = _Fresh() if pool is None else pool
    kind = _Packed if outputs.packing else _Padded
    build = kind(ids, lengths, index, width, pool, dataset)
    return {name: pool.export(getattr(build, name)(dtype)) for name, dtype in fields_for(outputs)}
