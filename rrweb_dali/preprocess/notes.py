"""What a file that loaded lost or lacks, as the fields of its ``errors.jsonl`` line.

A file can load and still not be whole: the reader skipped parts of it
(:attr:`~rrweb_dali.ingest.ReadReport.skipped`, by kind), kept events without a timestamp,
flagged the recording as a whole (:data:`~rrweb_dali.ingest.SESSION_FLAGS`), or the
tokenizer wrote MALFORMED / unknown tokens for parts it could not read
(:meth:`~rrweb_dali.tokenizer.Tokenizer.fault_counts`). Those are its *notes*: always all five
keys on the line of a file that loaded (salvaged, skipped or noted), summed into the manifest.
"""

from __future__ import annotations

from rrweb_dali.ingest import ReadReport


def file_notes(report: ReadReport, faults: dict[str, int]) -> dict:
    """The per-file counts of what a file that loaded lost or lacks (see :mod:`.run`)."""
    return {
        "parts_skipped": dict(sorted(report.skipped.items())),
        "missing_timestamps": report.missing_timestamps,
        "flags": sorted(report.flags),
        "malformed_parts": faults.get("malformed", 0),
        "unknown_parts": faults.get("unknown", 0),
    }


def any_notes(notes: dict) -> bool:
    """Whether there is anything to say (a file without notes gets no line of its own)."""
    return any(notes.values())


def notes_text(notes: dict) -> str:
    """The notes as the line's ``detail``: ``parts skipped 2 (not_event 2); flags no_dom``."""
    parts = []
    if notes["parts_skipped"]:
        lost = ", ".join(f"{k} {n}" for k, n in notes["parts_skipped"].items())
        parts.append(f"parts skipped {sum(notes['parts_skipped'].values())} ({lost})")
    for key, label in (
        ("missing_timestamps", "events without a timestamp"),
        ("malformed_parts", "malformed parts"),
        ("unknown_parts", "unknown parts"),
    ):
        if notes[key]:
            parts.append(f"{label} {notes[key]}")
    if notes["flags"]:
        parts.append("flags " + ", ".join(notes["flags"]))
    return "; ".join(parts)
