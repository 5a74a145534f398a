"""The DALI graph of the loader, and the vectorised padding step that completes it on the device.

Graph (one DALI sample per training batch, ``batches_per_call`` samples per iteration; see
``external_source.source`` for why)::

    external_source(BatchSource, batch_info) -> tokens uint16 | aux int64 (meta, lengths, ids)
      tokens.gpu(), aux.gpu()            <- only when a GPU is used (aux also stays on the host)
      cast(tokens -> int64 | int32)      <- on the device (DALI's threads on the CPU device)
    outputs -> torch through DLPack (bound to torch's current CUDA stream), zero-copy

On a GPU the tokens cross unpadded, as ``uint16``, and :func:`finish_torch` pads them: a few
torch kernels (cumsum, compare, where, index) on torch's current stream with no host sync, queued
behind the model's work. On the CPU device the source lays the rows out already padded
(``pad_on_host``), so the cast output *is* ``input_ids`` and :func:`finish_host` only builds the
mask (and labels, positions) with fills into recycled buffers. Measured on the 2-core dev machine
(DALI 2.4 CPU-only), bs 64 x 2,048 tokens: the earlier graph (unpadded rows, cast, then numpy
row copies into int64) took ~0.4-0.5 ms per batch after DALI; this one ~0.2.

Where else the padding could happen, measured there:

* ``fn.pad`` needs one DALI sample per row, and DALI costs ~6-8 us per sample it is handed: at
  bs 256 a per-session ``fn.pad`` graph gave 0.3-1.0x the rows/s of this flat graph (4 runs;
  ``bench/gpu_check.py`` repeats the probe on a GPU).
* ``fn.multi_paste`` can scatter a flat buffer into rows inside DALI (regions of height 1), but its
  GPU kernel lays a grid of (distinct row ends) x (rows) patches, ~B^2 per batch, and on the CPU it
  was 15-35% slower than numpy row copies (int64 needs pasting int32 pairs).
* A mask from DALI arithmetic on the CPU: ``ids != 0`` and its cast cost DALI ~0.35 ms per bs-64
  batch (and assumes no 0 inside a session); ``ramp < lengths`` with broadcasting cost more
  still (1.13 against 0.80 ms per batch in a prototype). The numpy fill takes ~0.1 ms.

Both paths produce the same tensors (a test checks it) and pad with ``PAD_ID`` (0).
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
    iterations in flight ahead of ``run()`` (the source runs on the thread calling ``run()``, the
    loader's background thread, or in ``py_workers`` spawned processes with ``parallel=True``;
    copy and cast on DALI's threads and stream). With the dynamic executor an output buffer is
    reused only once nothing refers to it, so the tensors handed out may be DALI's own.
    """
    pipe = Pipeline(
        batch_size=source.config.batches_per_call,  # one sample per training batch
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


def finish_host(
    ids: np.ndarray,
    lengths: np.ndarray,
    index: np.ndarray,
    width: int,
    spec: OutputSpec,
    pool: HostBufferPool | None = None,
) -> dict[str, torch.Tensor]:
    """Host version of the padding step (CPU device), for rows the source padded (``pad_on_host``)
    and DALI cast: ``ids`` (``[B * width]``, the output type) becomes ``input_ids`` as it is,
    zero-copy; this builds the mask (and labels, positions) from the lengths.

    With a ``pool`` the new arrays are recycled buffers (see :mod:`.buffers`: fresh pages cost
    several times the fill); every element is written, so no stale data survives.
    """
    if spec.packing:
        return _packed_numpy(ids, lengths, index, width, spec, pool)
    take = pool.take if pool is not None else np.empty
    dtype = np.dtype(spec.dtype)
    rows = lengths.size
    ids = ids.reshape(rows, width)
    short = [(b, n) for b, n in enumerate(lengths.tolist()) if n < width]
    mask = take((rows, width), dtype)
    mask.fill(1)  # a memset-speed fill, then zero the pad tails: ~3x faster than a comparison
    for b, n in short:
        mask[b, n:] = 0
    out = {
        "input_ids": ids,
        "attention_mask": mask,
        "lengths": lengths.astype(np.int32, copy=False),
        "index": index.astype(np.int64, copy=False),
    }
    if spec.labels:
        labels = take((rows, width), dtype)
        np.copyto(labels, ids)
        for b, n in short:
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
