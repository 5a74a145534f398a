"""The output fields of a batch: one table, shared by the host and the device finishing paths.

A batch is a ``dict[str, torch.Tensor]``. Which keys it has, and each key's integer type, is
decided here once; :mod:`.finish_host` (the CPU device) and :mod:`.finish_torch` (a GPU) compute
the values, each with one method per field named like it. Adding a field is one entry below and
one method on each path (an import-time check fails if a path lacks one).

Types: ``input_ids``, ``attention_mask`` and ``position_ids`` take the requested ``dtype``
(``int64`` or ``int32``); ``labels`` are always ``int64``, the target type cross-entropy takes,
whatever ``input_ids`` use; ``lengths`` and ``cu_seqlens`` are ``int32``; ``index`` and
``document_ids`` are ``int64`` session ids.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from rrweb_dali.loader.options import OutputOptions

PAD_ID = 0
IGNORE_INDEX = -100  # label value skipped by torch's cross entropy


@dataclass(frozen=True)
class Field:
    """One key of a batch: its name, when it is present, and its integer type."""

    name: str
    dtype: str  # "ids" (the requested dtype) or a fixed numpy/torch dtype name
    present: Callable[[OutputOptions], bool]

    def dtype_for(self, outputs: OutputOptions) -> str:
        return outputs.dtype if self.dtype == "ids" else self.dtype


def _always(_: OutputOptions) -> bool:
    return True


FIELDS: tuple[Field, ...] = (
    Field("input_ids", "ids", _always),
    Field("attention_mask", "ids", _always),
    Field("labels", "int64", lambda o: o.labels),
    Field("position_ids", "ids", lambda o: o.position_ids or o.packing),
    Field("document_ids", "int64", lambda o: o.packing),
    Field("cu_seqlens", "int32", lambda o: o.packing),
    Field("lengths", "int32", _always),
    Field("index", "int64", _always),
)


@functools.lru_cache(maxsize=64)
def fields_for(outputs: OutputOptions) -> tuple[tuple[str, str], ...]:
    """``(name, dtype)`` of every field a batch has under ``outputs``, in batch order."""
    return tuple((f.name, f.dtype_for(outputs)) for f in FIELDS if f.present(outputs))


def check_implements(packing: bool) -> Callable[[type], type]:
    """Class decorator: a finishing path must have a method for every field its mode can have."""

    def check(cls: type) -> type:
        everything = OutputOptions(labels=True, position_ids=True, packing=packing)
        names = [name for name, _ in fields_for(everything)]
        missing = [name for name in names if not callable(getattr(cls, name, None))]
        if missing:
            raise TypeError(f"{cls.__name__} does not build the fields {missing}")
        return cls

    return check
