"""What a dataset (or a selection of it) holds, as data and as text: :class:`Summary` and the
length :class:`Histogram`.

Percentiles are nearest-rank (``numpy``'s ``inverted_cdf``): the ``q``-th percentile is a length
some sequence really has, the smallest with at least ``q`` % of the sequences at or below it.
Formats: the reader detects a file's format and compression by content, and neither the manifest
nor ``errors.jsonl`` records them per kept file, so the summary counts sessions by file name
kind (:func:`~rrweb_dali.dataset.table.name_kind`) and says so.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rrweb_dali.dataset.table import name_kind

if TYPE_CHECKING:
    from rrweb_dali.dataset.dataset import Dataset

PERCENTILES = (0, 5, 25, 50, 75, 95, 99, 100)
FORMATS_NOTE = "by file name; the detected format is not recorded per file"
# Manifest totals shown with a summary: the directory's preprocessing, not the selection's.
MANIFEST_TOTALS = ("files_read", "sessions", "files_rejected", "files_noted", "skipped_overflow")


@dataclass(frozen=True)
class Histogram:
    """``counts[k]`` sequences have a length in ``[edges[k], edges[k + 1])``, the last bin
    including its right edge, as ``numpy.histogram`` counts."""

    counts: np.ndarray
    edges: np.ndarray

    def ranges(self) -> list[str]:
        """Each bin's range as text: ``513 - 870`` (inclusive) when the edges are integers, as
        :func:`length_histogram` makes them, else ``[a, b)``."""
        e = self.edges
        if np.all(e == np.round(e)):
            ints = e.astype(np.int64).tolist()
            last = len(ints) - 2
            return [
                f"{a} - {b if k == last else max(a, b - 1)}"
                for k, (a, b) in enumerate(itertools.pairwise(ints))
            ]
        return [
            f"[{a:g}, {b:g}{']' if k == len(e) - 2 else ')'}"
            for k, (a, b) in enumerate(itertools.pairwise(e.tolist()))
        ]

    def render(self, width: int = 40) -> str:
        """One text line a bin: its range, its count and a bar of up to ``width`` ``#``."""
        if not self.counts.size:
            return "(no sequences)"
        top = max(int(self.counts.max()), 1)
        ranges = self.ranges()
        if all(" - " in r for r in ranges):  # align both ends of inclusive ranges
            ends = [r.split(" - ") for r in ranges]
            wa, wb = (max(len(e[i]) for e in ends) for i in (0, 1))
            ranges = [f"{a.rjust(wa)} - {b.rjust(wb)}" for a, b in ends]
        pad = max(len(r) for r in ranges)
        cpad = max(len(f"{int(c):,}") for c in self.counts)
        lines = []
        for r, c in zip(ranges, self.counts.tolist(), strict=True):
            bar = "#" * round(width * c / top)
            lines.append(f"{r.rjust(pad)}  {c:>{cpad},}  {bar}".rstrip())
        return "\n".join(lines)


def length_histogram(lengths: np.ndarray, bins: int | object = 10) -> Histogram:
    """Sequences by length. ``bins`` an int: up to that many bins of about equal width with
    integer edges from the shortest to the longest length (fewer when the lengths span fewer
    values); else explicit edges, as ``numpy.histogram`` takes them. No sequences: no bins."""
    if isinstance(bins, bool) or (isinstance(bins, int) and bins < 1):
        raise ValueError(f"bins must be a positive int or a sequence of edges, got {bins!r}")
    if not lengths.size:
        return Histogram(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
    if isinstance(bins, int):
        lo, hi = int(lengths.min()), int(lengths.max())
        edges = np.unique(np.round(np.linspace(lo, hi, bins + 1)))
        bins = edges if edges.size > 1 else np.array([lo, hi], dtype=np.float64)
    counts, edges = np.histogram(lengths, bins=bins)
    return Histogram(counts.astype(np.int64), edges)


def length_percentiles(lengths: np.ndarray) -> dict[str, int]:
    """``{"min", "p5", ..., "p99", "max"}`` of ``lengths`` (nearest-rank; empty: none)."""
    if not lengths.size:
        return {}
    values = np.percentile(lengths, PERCENTILES, method="inverted_cdf")
    names = ["min" if q == 0 else "max" if q == 100 else f"p{q}" for q in PERCENTILES]
    return {name: int(v) for name, v in zip(names, values, strict=True)}


@dataclass(frozen=True)
class Summary:
    """What :meth:`Dataset.summary` reports (``str()`` of it is the text ``print(ds)`` shows).

    Counts are of the dataset's own sequences (a selection's, if any): ``sessions`` the distinct
    sessions among them, ``split_sessions`` those of them that were split, ``formats`` sessions
    by file name kind. ``manifest_totals`` are the directory's preprocessing counts (files read,
    rejected, ...), whatever the selection.
    """

    path: str
    sequences: int
    sessions: int
    tokens: int
    split_sessions: int
    shards: int
    lengths: dict[str, int]
    mean_length: float
    formats: dict[str, int]
    tokenizer: dict
    options: dict
    selected: bool = False
    manifest_totals: dict = field(default_factory=dict)
    rejected_by_reason: dict = field(default_factory=dict)
    formats_note: str = FORMATS_NOTE

    def rows(self) -> list[tuple[str, str]]:
        """(label, text) pairs: the body of ``str()`` (the CLI shows them too)."""
        lengths = ", ".join(f"{k} {v:,}" for k, v in self.lengths.items()) or "none"
        formats = ", ".join(f"{k} {v:,}" for k, v in self.formats.items()) or "none"
        tok = self.tokenizer
        rows = [
            ("dataset", self.path + (" (a selection)" if self.selected else "")),
            ("sequences", f"{self.sequences:,}"),
            ("sessions", f"{self.sessions:,} ({self.split_sessions:,} split into windows)"),
            ("tokens", f"{self.tokens:,} in {self.shards:,} shards"),
            ("tokens per sequence", f"{lengths}; mean {self.mean_length:,.1f}"),
            ("sessions by file kind", f"{formats} ({self.formats_note})"),
            (
                "tokenizer",
                f"{tok.get('tokenizer')} version {tok.get('version')}, "
                f"vocab {tok.get('vocab_size')}, options {tok.get('options')}",
            ),
            ("options", ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))),
        ]
        totals = ", ".join(f"{k} {v:,}" for k, v in self.manifest_totals.items())
        if totals:
            rows.append(("preprocessing", totals))
        if self.rejected_by_reason:
            reasons = ", ".join(f"{k} {v:,}" for k, v in self.rejected_by_reason.items())
            rows.append(("rejected by reason", reasons))
        return rows

    def __str__(self) -> str:
        rows = self.rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def summarize(ds: Dataset) -> Summary:
    """The :class:`Summary` of ``ds`` (its selection, if any), from the tables: no token is read."""
    table = ds.table
    ids = ds.ids
    lengths = table.lengths[ids]
    sessions = table.session[ids]
    present = np.flatnonzero(np.bincount(sessions, minlength=len(table.sources)))
    windows_in_directory = np.bincount(table.session, minlength=len(table.sources))
    kinds = Counter(name_kind(table.sources[s]) for s in present.tolist())
    manifest = ds.manifest
    totals = manifest.totals
    return Summary(
        path=ds.path,
        sequences=int(ids.size),
        sessions=int(present.size),
        tokens=int(lengths.sum()),
        split_sessions=int((windows_in_directory[present] > 1).sum()),
        shards=len(manifest.shards),
        lengths=length_percentiles(lengths),
        mean_length=float(lengths.mean()) if lengths.size else 0.0,
        formats=dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        tokenizer=manifest.tokenizer,
        options=manifest.options,
        selected=ds.is_selection,
        manifest_totals={k: totals[k] for k in MANIFEST_TOTALS if k in totals},
        rejected_by_reason=dict(totals.get("rejected_by_reason") or {}),
    )
