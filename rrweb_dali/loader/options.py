"""The loader's options by concern: what a batch holds (:class:`OutputOptions`) and how the
DALI pipeline runs (:class:`PipelineOptions`). The plan and the transport of the batches are in
:mod:`rrweb_dali.external_source.options`; :func:`rrweb_dali.loader.make_loader` maps its
keywords onto all four. Each validates itself, so a wrong value fails where it is given, naming the option.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

DTYPES = ("int64", "int32")
# "plain": every field in one dict (the default); "hf": Hugging Face model inputs only, the
# bookkeeping apart (see .layout).
LAYOUTS = ("plain", "hf")


@dataclass(frozen=True)
class OutputOptions:
    """Which tensors a batch has, the integer type of the token-shaped ones, and their layout."""

    dtype: str = "int64"
    labels: bool = False
    position_ids: bool = False
    packing: bool = False
    layout: str = "plain"
    mixture: bool = False  # a ``dataset`` tensor: each row's (or segment's) source

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PipelineOptions:
    """How the DALI pipeline runs: where, how far ahead, and on how many threads/processes.

    ``device_id`` None is DALI's CPU-only mode. ``prefetch`` is both DALI's queue depth and how
    many iterations the loader's background thread finishes ahead of the training loop.
    ``parallel`` runs the batch source in ``py_workers`` spawned processes.
    ``next_epoch_ahead``: when a pass ends, start the next epoch's iterations at once (see
    :mod:`.runner`); right for shards, which never change, and off for raw files, which may
    change between epochs and must then be read anew.
    """

    device_id: int | None = None
    prefetch: int = 2
    num_threads: int = 2
    parallel: bool = False
    py_workers: int = 2
    next_epoch_ahead: bool = True

    def __post_init__(self) -> None:
        for name in ("prefetch", "num_threads", "py_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int of at least 1, got {value!r}")
        if self.device_id is not None and (
            isinstance(self.device_id, bool)
            or not isinstance(self.device_id, int)
            or self.device_id < 0
        ):
            raise ValueError(f"device_id must be None or a GPU index, got {self.device_id!r}")

    def to_dict(self) -> dict:
        return asdict(self)
