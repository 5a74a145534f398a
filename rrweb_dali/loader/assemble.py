"""DALI's outputs of one iteration -> the training batches it holds, each with its wire record.

One iteration holds ``batches_per_call`` batches, one DALI sample each (see
``rrweb_dali.external_source.source``). For each sample the host copy of ``aux`` is decoded
(:mod:`rrweb_dali.external_source.wire`): its meta gives the width (no device sync), its lengths
and ids feed the finishing step (and, in the Hugging Face layout, :mod:`.layout`), its tail (raw
mode's cache counters) goes to the loader's accounting. On the CPU device this runs in the loader's background thread; on a GPU on the consumer's thread,
so the padding kernels are queued on the consumer's stream.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rrweb_dali.external_source import wire
from rrweb_dali.loader.buffers import HostBufferPool
from rrweb_dali.loader.finish_host import finish_host
from rrweb_dali.loader.finish_torch import finish_torch
from rrweb_dali.loader.layout import hf_batch
from rrweb_dali.loader.options import OutputOptions


@dataclass(frozen=True)
class Finished:
    """One training batch and the host copy of its wire record (for the loader's counters)."""

    batch: dict[str, torch.Tensor]
    # The wire meta as Python ints (rows, width, tokens, reads, gather_ns, bytes), converted on
    # the producing thread: the consumer's counting is then plain int arithmetic.
    meta: tuple[int, ...]
    tail: np.ndarray | None  # the source's tail, e.g. raw mode's cache counters

    def field(self, name: str) -> int:
        return self.meta[wire.META[name]]


class Assembler:
    """Turns one DALI iteration's outputs into :class:`Finished` batches."""

    def __init__(
        self,
        outputs: OutputOptions,
        on_gpu: bool,
        pool: HostBufferPool | None,
        on_time: Callable[[float], None] | None = None,
    ):
        """``on_time`` is told the seconds each call took (the profiler's ``finish_s``)."""
        self.outputs = outputs
        self.on_gpu = on_gpu
        self.pool = pool
        self._on_time = on_time
        # On a GPU the padding kernels that read DALI's outputs are still queued when the tensors
        # are handed out: keep the outputs of the last two iterations alive a little longer.
        self._recent: deque = deque(maxlen=2)

    def __call__(self, outputs) -> list[Finished]:
        t0 = time.perf_counter()
        if self.on_gpu:
            self._recent.append(outputs)
        out = []
        for j in range(len(outputs[1])):
            aux = np.asarray(outputs[1][j])  # the host copy, on a GPU too: no device sync
            record = wire.decode(aux)
            width = record.field("width")
            if self.on_gpu:
                n = int(record.lengths.shape[0])
                device_aux = torch.from_dlpack(outputs[2][j])
                lengths, index = wire.device_parts(device_aux, n)
                dataset = None if record.dataset is None else wire.device_dataset(device_aux, n)
                tokens = torch.from_dlpack(outputs[0][j])
                batch = finish_torch(tokens, lengths, index, width, self.outputs, dataset)
            else:
                ids = np.asarray(outputs[0][j])  # zero-copy; keeps DALI's buffer alive
                batch = finish_host(
                    ids,
                    record.lengths,
                    record.index,
                    width,
                    self.outputs,
                    self.pool,
                    record.dataset,
                )
            if self.outputs.layout == "hf":
                batch = hf_batch(batch, record.lengths, self.outputs.packing)
            tail = None if record.tail is None else record.tail.copy()
            out.append(Finished(batch, tuple(record.meta.tolist()), tail))
        if self._on_time is not None:
            self._on_time(time.perf_counter() - t0)
        return out

    def release(self) -> None:
        """Drop the DALI outputs kept for queued kernels (the pipeline is going away)."""
        self._recent.clear()
