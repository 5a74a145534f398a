"""Preprocessing: a tree of rrweb files -> memory-mapped token shards, in parallel.

:func:`preprocess` is the entry point (``rrweb-dali preprocess`` on the command line). The parts,
one job each: :mod:`.plan` groups the inputs into independent tasks (persisted, so runs resume
and grow), :mod:`.task` runs one group (read, tokenize, overflow policy, shards), :mod:`.executor`
runs groups on a process pool or Ray, :mod:`.crash` recovers a group whose worker died, and
:mod:`.run` ties them together and writes ``errors.jsonl`` and ``manifest.json``.

What preprocessing shares with raw mode lives below both: finding the inputs
(:mod:`rrweb_dali.ingest.discover`), the overflow policy (:mod:`rrweb_dali.tokenizer.windows`)
and the process pool (:mod:`rrweb_dali.parallel`). The inputs and the policy are part of this
package's interface, so they are exported here too.
"""

from rrweb_dali.ingest.discover import InputFile, discover
from rrweb_dali.preprocess.plan import PlanMismatch
from rrweb_dali.preprocess.run import PreprocessOptions, PreprocessResult, preprocess
from rrweb_dali.tokenizer.windows import POLICIES, Overflow, apply_overflow

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
