"""The DALI graph of the loader, and the vectorised padding step that completes it on the device.

Graph (one DALI "sample" per training batch, see ``external_source.source`` for why)::

    external_source(BatchSource, batch_info) -> tokens uint16 [T+1] | aux int64 (meta, lengths, ids)
      tokens.gpu(), aux.gpu()            <- only when a GPU is used (aux also stays on the host)
      cast(tokens -> int64 | int32)      <- on the device
    outputs -> torch through DLPack, bound to torch's current CUDA stream

Tokens cross to the device unpadded, as ``uint16``. Where the padding happens (measured on the
2-core dev machine, DALI 2.4 CPU-only):

* ``fn.pad`` needs one DALI sample per row, and DALI costs ~6-8 us per sample it is handed: at
  bs 256 a per-session ``fn.pad`` graph gave 0.3-1.0x the rows/s of this flat graph (4 runs;
  ``bench/gpu_check.py`` repeats the probe on a GPU).
* ``fn.multi_paste`` can scatter a flat buffer into rows inside DALI (regions of height 1), but its
  GPU kernel lays a grid of (distinct row ends) x (rows) patches, ~B^2 per batch, and on the CPU it
  was 15-35% slower than the numpy rows below (int64 needs pasting int32 pairs).
* So the padding is one vectorised gather after DALI. On a GPU, :func:`finish_torch`: a few torch
  kernels (cumsum, compare, where, index) on torch's current stream with no host sync, queued
  behind the model's work. On the CPU, :func:`finish_numpy`: one slice copy per row, 2-5x faster
  than torch's CPU gather, index_put, masked_scatter or pad_sequence there.

Both produce the same tensors (a test checks it) and pad with ``PAD_ID`` (0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from nvidia.dali import fn, types
from nvidia.dali.pipeline import Pipeline

from external_source.source import BatchSource
from rrweb_dali.loader.buffers import HostBufferPool

logger = logging.getLogger(__name__)

PAD_ID = 0
IGNORE_INDEX = -100  # label value skipped by torch's cross entropy

_DALI_INT = {"int64": types.INT64, "int32": types.INT32}
_DALI_TOKEN = {np.dtype(np.uint16): types.UINT16, np.dtype(np.uint32): types.UINT32}
TORCH_INT = {"int64": torch.int64, "int32": torch.int32}


@dataclass(frozen=True)
class OutputSpec:
    """Which tensors a batch has and their integer type."""

    dtype: str = "int64"
    labels: bool = False
    position_ids: bool = False
    packing: bool = False


def build_pipeline(
    source: BatchSource,
    token_dtype: np.dtype,
    out_dtype: str,
    device_id: int | None,
    prefetch: int = 2,
    num_threads: int = 2,
    parallel: bool = False,
    py_workers: int = 2,
) -> Pipeline:
    """Build (and ``build()``) the graph; ``device_id=None`` is the CPU-only variant of it.

    Outputs: the cast tokens and ``aux`` on the host; with a GPU also ``aux`` on the device (its
    lengths and ids feed the padding kernels; the host copy gives the batch width without a
    device-to-host sync). The executor is DALI's default dynamic one: it keeps ``prefetch``
    batches in flight ahead of the consumer (the source runs on the calling thread, or in
    ``py_workers`` spawned processes with ``parallel=True``; copy and cast on DALI's threads and
    stream), so the next batches are read, copied and cast while the model computes.
    """
    pipe = Pipeline(
        batch_size=1,
        num_threads=num_threads,
        device_id=device_id,
        prefetch_queue_depth=prefetch,
        py_num_workers=py_workers if parallel else 1,
        py_start_method="spawn",  # never fork a process that runs DALI (it can hang; dali.md)
        exec_dynamic=True,
    )
    extra = {"prefetch_queue_depth": max(prefetch, py_workers)} if parallel else {}
    with pipe:
        tokens, aux = fn.external_source(
            source=source,
            num_outputs=2,
            batch=True,
            batch_info=True,
            parallel=parallel,
            dtype=[_DALI_TOKEN[np.dtype(token_dtype)], types.INT64],
            ndim=[1, 1],
            **extra,
        )
        if device_id is None:
            pipe.set_outputs(fn.cast(tokens, dtype=_DALI_INT[out_dtype]), aux)
        else:
            tokens = fn.cast(tokens.gpu(), dtype=_DALI_INT[out_dtype])
            pipe.set_outputs(tokens, aux, aux.gpu())
    pipe.build()
    return pipe


def first_sample(tensor_list) -> torch.Tensor:
    """The only sample of a DALI output as a torch tensor, zero-copy through DLPack.

    For GPU outputs torch hands its current stream to DALI's ``__dlpack__``, which orders the
    tensor's use after DALI's work on that stream.
    """
    return torch.from_dlpack(tensor_list.as_tensor())[0]


def finish_numpy(
    tokens: np.ndarray,
    lengths: np.ndarray,
    index: np.ndarray,
    width: int,
    spec: OutputSpec,
    pool: HostBufferPool | None = None,
) -> dict[str, torch.Tensor]:
    """Host version of the padding step (CPU device): per-row slice copies of the flat rows.

    With a ``pool`` the arrays are recycled buffers (see :mod:`.buffers`: fresh pages cost
    several times the copy); every element is written, so no stale data survives. (Padding in
    the source instead, at uint16 width before the cast, was measured no faster here.)
    """
    if spec.packing:
        return _packed_numpy(tokens, lengths, index, width, spec, pool)
    take = pool.take if pool is not None else np.empty
    dtype = np.dtype(spec.dtype)
    rows = lengths.size
    row_lengths = lengths.tolist()
    mask = take((rows, width), dtype)
    mask.fill(1)  # a memset-speed fill, then zero the pad tails: ~3x faster than a comparison
    ids = take((rows, width), dtype)
    offset = 0
    for b, n in enumerate(row_lengths):  # one pass over every element; measured fastest
        ids[b, :n] = tokens[offset : offset + n]
        if n < width:
            ids[b, n:] = PAD_ID
            mask[b, n:] = 0
        offset += n
    out = {
        "input_ids": ids,
        "attention_mask": mask,
        "lengths": lengths.astype(np.int32, copy=False),
        "index": index.astype(np.int64, copy=False),
    }
    if spec.labels:
        labels = take((rows, width), dtype)
        np.copyto(labels, ids)
        for b, n in enumerate(row_lengths):
            labels[b, n:] = IGNORE_INDEX
        out["labels"] = labels
    if spec.position_ids:
        pos = take((rows, width), dtype)
        np.multiply(np.arange(width, dtype=dtype), mask, out=pos)  # the column where valid, else 0
        out["position_ids"] = pos
    return {k: torch.from_numpy(v) for k, v in out.items()}


def _packed_numpy(
    tokens, seg_lengths, seg_index, width, spec, pool: HostBufferPool | None = None
) -> dict[str, torch.Tensor]:
    """Packing outputs on the host: per-segment fills into (recycled) buffers.

    Segments never cross a row, so a segment is a run of at most ``width`` tokens: its positions
    are a slice of one ramp, its document id a fill.
    """
    take = pool.take if pool is not None else np.empty
    dtype = np.dtype(spec.dtype)
    n = tokens.size
    rows = n // width
    seg = seg_lengths.astype(np.int64, copy=False)
    cu = np.zeros(seg.size + 1, dtype=np.int32)
    np.cumsum(seg, out=cu[1:])
    ramp = np.arange(width, dtype=dtype)
    pos, doc, mask = take((n,), dtype), take((n,), np.int64), take((n,), dtype)
    mask.fill(1)
    segments = list(zip(cu[:-1].tolist(), seg.tolist(), seg_index.tolist(), strict=True))
    for start, length, session in segments:
        end = start + length
        pos[start:end] = ramp[:length]  # positions restart at every segment
        doc[start:end] = session
        if session < 0:
            mask[start:end] = 0
    ids = tokens.reshape(rows, width)
    out = {
        "input_ids": ids,
        "attention_mask": mask.reshape(rows, width),
        "position_ids": pos.reshape(rows, width),
        "document_ids": doc.reshape(rows, width),
        "cu_seqlens": cu,
        "lengths": mask.reshape(rows, width).sum(1, dtype=np.int32),
        "index": seg_index.astype(np.int64, copy=False),
    }
    if spec.labels:
        labels = take((n,), dtype)
        np.copyto(labels, tokens)
        for start, length, session in segments:
            if session < 0:
                labels[start : start + length] = IGNORE_INDEX
            elif length:
                labels[start] = IGNORE_INDEX  # a segment's first token has no context
        out["labels"] = labels.reshape(rows, width)
    return {k: torch.from_numpy(v) for k, v in out.items()}


def finish_torch(
    tokens: torch.Tensor, lengths: torch.Tensor, index: torch.Tensor, width: int, spec: OutputSpec
) -> dict[str, torch.Tensor]:
    """Device version of the padding step: a gather with no host synchronisation.

    ``tokens`` (already cast) holds the rows end to end plus one trailing 0 that every pad
    position reads. Works on any torch device; used for CUDA.
    """
    if spec.packing:
        return _packed_torch(tokens, lengths, index, width, spec)
    dev, dtype = tokens.device, TORCH_INT[spec.dtype]
    lens = lengths.to(torch.int64)
    starts = torch.cumsum(lens, 0) - lens
    col = torch.arange(width, device=dev)
    valid = col < lens[:, None]
    src = torch.where(valid, starts[:, None] + col, tokens.numel() - 1)
    ids = tokens[src]
    out = {
        "input_ids": ids,
        "attention_mask": valid.to(dtype),
        "lengths": lengths.to(torch.int32),
        "index": index.to(torch.int64),
    }
    if spec.labels:
        out["labels"] = torch.where(valid, ids, torch.full_like(ids, IGNORE_INDEX))
    if spec.position_ids:
        out["position_ids"] = torch.where(valid, col.to(dtype), torch.zeros_like(ids))
    return out


def _packed_torch(tokens, seg_lengths, seg_index, width, spec) -> dict[str, torch.Tensor]:
    dev, dtype = tokens.device, TORCH_INT[spec.dtype]
    n = tokens.numel()
    rows = n // width
    seg = seg_lengths.to(torch.int64)
    cu = torch.zeros(seg.numel() + 1, dtype=torch.int32, device=dev)
    cu[1:] = torch.cumsum(seg, 0)
    # output_size: the result's length is known, so no device-to-host sync to compute it.
    starts = torch.repeat_interleave(cu[:-1].to(dtype), seg, output_size=n)
    pos = torch.arange(n, device=dev, dtype=dtype) - starts  # restarts at every segment
    doc = torch.repeat_interleave(seg_index.to(torch.int64), seg, output_size=n)
    valid = doc >= 0
    ids = tokens.reshape(rows, width)
    out = {
        "input_ids": ids,
        "attention_mask": valid.to(dtype).reshape(rows, width),
        "position_ids": pos.reshape(rows, width),
        "document_ids": doc.reshape(rows, width),
        "cu_seqlens": cu,
        "lengths": valid.reshape(rows, width).sum(1, dtype=torch.int32),
        "index": seg_index.to(torch.int64),
    }
    if spec.labels:
        keep = (valid & (pos != 0)).reshape(rows, width)
        out["labels"] = torch.where(keep, ids, torch.full_like(ids, IGNORE_INDEX))
    return out
