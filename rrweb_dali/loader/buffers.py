"""Recycled host buffers for the CPU padding step.

Why: a padded ``[B, L]`` int64 batch is a megabyte or more, and glibc serves allocations of that
size straight from the kernel (``mmap``), so every fresh batch array is paid for again in page
faults and zeroing. Measured on the 2-core dev machine, 64 rows x 2,048 tokens: building ids and
mask in fresh arrays took ~1.3-1.9 ms, in recycled ones ~0.23 ms; the copy itself is cheap.

A buffer is handed out again only when nothing outside the pool refers to it any more: the
batch's tensors (``torch.from_numpy`` keeps the numpy view alive, the view keeps the buffer) have
all been dropped. A training loop that keeps batches simply makes the pool allocate new buffers;
nothing it holds is ever overwritten.
"""

from __future__ import annotations

import sys

import numpy as np

# getrefcount(buf) inside take(): the pool's list, the loop variable and getrefcount's argument.
_UNREFERENCED = 3


class HostBufferPool:
    """Hands out C-contiguous arrays of a requested shape, recycling buffers nobody holds."""

    def __init__(self, max_buffers: int = 16):
        if max_buffers < 1:
            raise ValueError("max_buffers must be at least 1")
        self.max_buffers = max_buffers
        self._buffers: list[np.ndarray] = []  # flat uint8 backing stores
        self.reused = 0
        self.allocated = 0

    def take(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype`` (the caller writes every element)."""
        dt = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        for buf in self._buffers:
            if buf.nbytes >= nbytes and sys.getrefcount(buf) <= _UNREFERENCED:
                self.reused += 1
                return buf[:nbytes].view(dt).reshape(shape)
        buf = np.empty(max(nbytes, 1), dtype=np.uint8)
        self.allocated += 1
        if len(self._buffers) < self.max_buffers:
            self._buffers.append(buf)
        else:  # keep the largest buffers: a small one cannot serve a wide batch
            smallest = min(range(len(self._buffers)), key=lambda i: self._buffers[i].nbytes)
            if self._buffers[smallest].nbytes < buf.nbytes:
                self._buffers[smallest] = buf
        return buf[:nbytes].view(dt).reshape(shape)
