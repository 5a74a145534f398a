"""The output fields of a batch: one table, shared by the host and the device finishing paths.

A batch is a ``dict[str, torch.Tensor]``. Which keys it has, and each key's integer type, is
decided here once; :mod:`.finish_host` (the CPU device) and :mod:`.finish_torch` (a GPU) compute
the values, each with one method per field named like it. Adding a field is one entry below and
one method on each path (an import-time check fails if a path lacks one).

Types: ``input_ids``, ``attention_mask`` and ``position_ids`` take the requested ``dtype``
(``int64`` or ``int32``); ``labels`` are always ``int64``, the target type cross-entropy takes,
whatever ``input_ids`` use; ``lengths``, ``cu_seqlens`` and ``seq_idx`` are ``int32``; ``index``
and ``document_ids`` are ``int64`` session ids; a mixture's ``dataset`` (each row's, or
segment's, source: ``index`` then numbers rows within it) is ``int64``.

The Hugging Face layout (``layout="hf"``, see :mod:`.layout`) of packing mode has no
``attention_mask`` (passing one switches off Hugging Face's packed-sequence detection) and has
``seq_idx``, each token's segment number in the batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from rrweb_dali.loader.options import LAYOUTS, OutputOptions

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


def _hf_packed(o: OutputOptions) -> bool:
    return o.packing and o.layout == "hf"


FIELDS: tuple[Field, ...] = (
    Field("input_ids", "ids", _always),
    Field("attention_mask", "ids", lambda o: not _hf_packed(o)),
    Field("labels", "int64", lambda o: o.labels),
    Field("position_ids", "ids", lambda o: o.position_ids or o.packing),
    Field("document_ids", "int64", lambda o: o.packing),
    Field("cu_seqlens", "int32", lambda o: o.packing),
    Field("seq_idx", "int32", _hf_packed),
    Field("lengths", "int32", _always),
    Field("index", "int64", _always),
    Field("dataset", "int64", lambda o: o.mixture),
)


@functools.lru_cache(maxsize=64)
def fields_for(outputs: OutputOptions) -> tuple[tuple[str, str], ...]:
    """``(name, dtype)`` of every field a batch has under ``outputs``, in batch order."""
    return tuple((f.name, f.dtype_for(outputs)) for f in FIELDS if f.present(outputs))


def check_implements(packing: bool) -> Callable[[type], type]:
    """Class decorator: a finishing path must have a method for every field its mode can have."""

    def check(cls: type) -> type:
        names = {
            name
            for layout in LAYOUTS
            for name, _ in fields_for(
                OutputOptions(
                    labels=True, position_ids=True, packing=packing, layout=layout, mixture=True
                )
            )
        }
        missing = [name for name in sorted(names) if not callable(getattr(cls, name, None))]
        if missing:
            raise TypeError(f"{cls.__name__} does not build the fields {missing}")
        return cls

    return check
