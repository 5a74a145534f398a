"""The DALI graph of the loader, and the one function that reaches into DALI's internals.

Graph (one DALI sample per training batch, ``batches_per_call`` samples per iteration; see
``rrweb_dali.external_source.source`` for why)::

    external_source(BatchSource, batch_info) -> tokens uint16 | aux int64 (see .wire)
      tokens.gpu(), aux.gpu()            <- only when a GPU is used (aux also stays on the host)
      cast(tokens -> int64 | int32)      <- on the device (DALI's threads on the CPU device)
    outputs -> torch through DLPack (bound to torch's current CUDA stream), zero-copy

On a GPU the tokens cross unpadded, as ``uint16``, and :mod:`.finish_torch` pads them on torch's
current stream with no host sync. On the CPU device the source lays the rows out already padded
(``Transport.pad_on_host``), so the cast output *is* ``input_ids`` and :mod:`.finish_host` only
builds the mask (and labels, positions). Measured on the 2-core dev machine (DALI 2.4 CPU-only),
bs 64 x 2,048 tokens: the earlier graph (unpadded rows, cast, then numpy row copies into int64)
took ~0.4-0.5 ms per batch after DALI; this one ~0.2.

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

import numpy as np
from nvidia.dali import fn, types
from nvidia.dali.pipeline import Pipeline

from rrweb_dali.external_source.source import BatchSource
from rrweb_dali.loader.options import PipelineOptions

logger = logging.getLogger(__name__)

_DALI_INT = {"int64": types.INT64, "int32": types.INT32}
_DALI_TOKEN = {np.dtype(np.uint16): types.UINT16, np.dtype(np.uint32): types.UINT32}


def build_pipeline(
    source: BatchSource, token_dtype: np.dtype, out_dtype: str, options: PipelineOptions
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
    device_id, prefetch = options.device_id, options.prefetch
    parallel, py_workers = options.parallel, options.py_workers
    pipe = Pipeline(
        batch_size=source.transport.batches_per_call,  # one sample per training batch
        num_threads=options.num_threads,
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


def close_pipeline(pipe: Pipeline) -> None:
    """Stop a pipeline's executor and its Python worker processes now, not at garbage collection.

    DALI 2.x has no public call for this: ``Pipeline`` shuts its executor down in ``__del__``
    (``_shutdown``) and closes the worker pool of ``parallel=True`` through a finalizer on
    ``_py_pool``. A loader must free both when it rebuilds its pipeline (worker processes hold
    hundreds of MB each), so this is the one place that calls them, guarded so that a DALI
    without them only loses the early release.
    """
    shutdown = getattr(pipe, "_shutdown", None)
    pool = getattr(pipe, "_py_pool", None)
    if shutdown is None:
        logger.debug("this DALI (%s) has no Pipeline._shutdown; left to the GC", _dali_version())
    else:
        shutdown()
    if pool is not None and callable(getattr(pool, "close", None)):
        pool.close()


def _dali_version() -> str:
    import nvidia.dali

    return getattr(nvidia.dali, "__version__", "unknown")
