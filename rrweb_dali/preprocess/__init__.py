"""Preprocessing: a tree of rrweb files -> memory-mapped token shards, in parallel.

:func:`preprocess` is the entry point (``rrweb-dali preprocess`` on the command line). The parts,
one job each: :mod:`.discover` finds the inputs, :mod:`.plan` groups them into independent tasks
(persisted, so runs resume and grow), :mod:`.task` runs one group (read, tokenize,
:mod:`.windows` overflow policy, shards), :mod:`.executor` runs groups on a process pool or Ray,
and :mod:`.run` ties them together and writes ``errors.jsonl`` and ``manifest.json``.
"""

from rrweb_dali.preprocess.discover import InputFile, discover
from rrweb_dali.preprocess.plan import PlanMismatch
from rrweb_dali.preprocess.run import PreprocessOptions, PreprocessResult, preprocess
from rrweb_dali.preprocess.windows import POLICIES, Overflow, apply_overflow

__all__ = [
    "POLICIES",
    "InputFile",
    "Overflow",
    "PlanMismatch",
    "PreprocessOptions",
    "PreprocessResult",
    "apply_overflow",
    "discover",
    "preprocess",
]
