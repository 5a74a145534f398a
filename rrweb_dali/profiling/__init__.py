"""Profiling: run folders that ``rrweb-dali profile``, the benches and training loops write, and
the dashboard reads.

* :class:`RunWriter` / :class:`ThroughputMeter`: write a run from any loop (bench variants).
* :func:`profile`: ``with profile(loader, RUNS, name) as loader:`` records a training loop.
* :func:`rrweb_dali.profiling.session.run_profile`: what ``rrweb-dali profile`` runs (it imports
  the DALI loader, so it is not imported here).

The file format is described in :mod:`rrweb_dali.profiling.runfiles`.
"""

from rrweb_dali.profiling.meter import SampleBuilder, ThroughputMeter, batch_counts
from rrweb_dali.profiling.recorder import LoaderProfiler, ProfiledLoader, profile
from rrweb_dali.profiling.runfiles import (
    SCHEMA_VERSION,
    STAGES,
    JsonlTail,
    RunWriter,
    read_json,
    read_jsonl_tail,
    warmup_end,
)

__all__ = [
    "SCHEMA_VERSION",
    "STAGES",
    "JsonlTail",
    "LoaderProfiler",
    "ProfiledLoader",
    "RunWriter",
    "SampleBuilder",
    "ThroughputMeter",
    "batch_counts",
    "profile",
    "read_json",
    "read_jsonl_tail",
    "warmup_end",
]
