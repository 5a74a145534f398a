"""The finishing step on a GPU: a gather and a few elementwise kernels, with no host sync.

``tokens`` (already cast by DALI) hold the rows end to end plus one trailing 0 that every pad
position reads; the kernels (cumsum, compare, where, index) run on torch's current stream, queued
behind the model's work. The batch width and the segment count come from the host copy of the
wire vector, so nothing is read back from the device. Works on any torch device (the tests run
it on the CPU against :mod:`.finish_host`). The keys and their types come from :mod:`.fields`.
"""

from __future__ import annotations

import torch

from rrweb_dali.loader.fields import IGNORE_INDEX, check_implements, fields_for
from rrweb_dali.loader.options import OutputOptions

_TORCH = {"int64": torch.int64, "int32": torch.int32}


@check_implements(packing=False)
class _Padded:
    def __init__(self, tokens, lengths, index, width, dataset=None):
        self._dataset = dataset
        dev = tokens.device
        lens = lengths.to(torch.int64)
        starts = torch.cumsum(lens, 0) - lens
        self._col = torch.arange(width, device=dev)
        self._valid = self._col < lens[:, None]
        src = torch.where(self._valid, starts[:, None] + self._col, tokens.numel() - 1)
        self._ids, self._lengths, self._index = tokens[src], lengths, index

    def input_ids(self, dtype: str) -> torch.Tensor:
        return self._ids

    def attention_mask(self, dtype: str) -> torch.Tensor:
        return self._valid.to(_TORCH[dtype])

    def labels(self, dtype: str) -> torch.Tensor:
        keep = self._valid & (self._index >= 0)[:, None]  # unreadable raw files do not train
        return torch.where(keep, self._ids.to(_TORCH[dtype]), IGNORE_INDEX)

    def position_ids(self, dtype: str) -> torch.Tensor:
        return torch.where(self._valid, self._col.to(_TORCH[dtype]), 0)

    def lengths(self, dtype: str) -> torch.Tensor:
        return self._lengths.to(_TORCH[dtype])

    def index(self, dtype: str) -> torch.Tensor:
        return self._index.to(_TORCH[dtype])

    def dataset(self, dtype: str) -> torch.Tensor:
        return self._dataset.to(_TORCH[dtype])


@check_implements(packing=True)
class _Packed:
    def __init__(self, tokens, seg_lengths, seg_index, width, dataset=None):
        self._dataset = dataset
        dev, n = tokens.device, tokens.numel()
        self._shape = (n // width, width)
        self._seg = seg = seg_lengths.to(torch.int64)
        self._cu = torch.zeros(seg.numel() + 1, dtype=torch.int32, device=dev)
        self._cu[1:] = torch.cumsum(seg, 0)
        # output_size: the result's length is known, so no device-to-host sync to compute it.
        starts = torch.repeat_interleave(self._cu[:-1].to(torch.int64), seg, output_size=n)
        self._pos = torch.arange(n, device=dev) - starts  # restarts at every segment
        self._doc = torch.repeat_interleave(seg_index.to(torch.int64), seg, output_size=n)
        self._valid = self._doc >= 0
        self._ids, self._index = tokens.reshape(self._shape), seg_index

    def input_ids(self, dtype: str) -> torch.Tensor:
        return self._ids

    def attention_mask(self, dtype: str) -> torch.Tensor:
        return self._valid.to(_TORCH[dtype]).reshape(self._shape)

    def labels(self, dtype: str) -> torch.Tensor:
        keep = (self._valid & (self._pos != 0)).reshape(self._shape)
        return torch.where(keep, self._ids.to(_TORCH[dtype]), IGNORE_INDEX)

    def position_ids(self, dtype: str) -> torch.Tensor:
        return self._pos.to(_TORCH[dtype]).reshape(self._shape)

    def document_ids(self, dtype: str) -> torch.Tensor:
        return self._doc.to(_TORCH[dtype]).reshape(self._shape)

    def cu_seqlens(self, dtype: str) -> torch.Tensor:
        return self._cu

    def seq_idx(self, dtype: str) -> torch.Tensor:
        n, segments = self._pos.numel(), self._cu.numel() - 1
        number = torch.arange(segments, dtype=_TORCH[dtype], device=self._cu.device)
        return torch.repeat_interleave(number, self._seg, output_size=n).reshape(self._shape)

    def lengths(self, dtype: str) -> torch.Tensor:
        return self._valid.reshape(self._shape).sum(1, dtype=_TORCH[dtype])

    def index(self, dtype: str) -> torch.Tensor:
        return self._index.to(_TORCH[dtype])

    def dataset(self, dtype: str) -> torch.Tensor:
        return self._dataset.to(_TORCH[dtype])


def finish_torch(
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    index: torch.Tensor,
    width: int,
    outputs: OutputOptions,
    dataset: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The batch of one DALI sample on its device (``dataset``: a mixture's sources); see the
    module doc."""
    kind = _Packed if outputs.packing else _Padded
    build = kind(tokens, lengths, index, width, dataset)
    return {name: getattr(build, name)(dtype) for name, dtype in fields_for(outputs)}
