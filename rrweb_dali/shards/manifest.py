"""``manifest.json``: what a dataset directory holds, and the checks that it is intact.

The manifest is the single source of truth for a dataset: the shard list (with sizes and a SHA-256
per shard), the format and tokenizer versions, totals and the options used. It is written
atomically (temporary name, then rename), so a reader sees either the old or the new manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rrweb_dali.shards.format import (
    FORMAT_VERSION,
    Shard,
    ShardFormatError,
    ShardInfo,
    file_sha256,
)

MANIFEST_NAME = "manifest.json"
ERRORS_NAME = "errors.jsonl"
SHARDS_DIR = "shards"
FORMAT_NAME = "rrweb-dali-shards"


@dataclass
class Manifest:
    """The parsed ``manifest.json`` of a dataset directory."""

    tokenizer: dict
    dtype: str = "uint16"
    format_version: int = FORMAT_VERSION
    shards: list[ShardInfo] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "dtype": self.dtype,
            "tokenizer": self.tokenizer,
            "totals": self.totals,
            "options": self.options,
            "shards": [s.to_json() for s in self.shards],
            **self.extra,
        }

    @classmethod
    def from_json(cls, obj: dict) -> Manifest:
        if obj.get("format") != FORMAT_NAME:
            raise ShardFormatError(f"not a rrweb-dali manifest (format {obj.get('format')!r})")
        known = {"format", "format_version", "dtype", "tokenizer", "totals", "options", "shards"}
        return cls(
            tokenizer=obj["tokenizer"],
            dtype=obj["dtype"],
            format_version=obj["format_version"],
            shards=[ShardInfo.from_json(s) for s in obj["shards"]],
            totals=obj.get("totals", {}),
            options=obj.get("options", {}),
            extra={k: v for k, v in obj.items() if k not in known},
        )


def name_os_error(exc: OSError, path: str | os.PathLike) -> OSError:
    """``exc``, made to name ``path`` if it names no file (a failed ``write`` on a full disk,
    ENOSPC or EFBIG, names none), so that the one-line error says where the run stopped."""
    if exc.filename is None:
        exc.filename = os.fspath(path)
    return exc


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write ``obj`` as indented JSON (sorted keys: byte-identical for equal content) atomically.

    Every string must be valid Unicode: file names go through
    :func:`~rrweb_dali.ingest.names.portable_name` before they get here."""
    tmp = path.with_name(path.name + ".tmp")
    data = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise name_os_error(exc, tmp) from None


def write_manifest(root: str | Path, manifest: Manifest) -> Path:
    path = Path(root) / MANIFEST_NAME
    write_json_atomic(path, manifest.to_json())
    return path


def read_manifest(root: str | Path) -> Manifest:
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise ShardFormatError(f"{root}: no {MANIFEST_NAME}; is this a preprocessed dataset?")
    try:
        obj = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ShardFormatError(f"{path}: not valid JSON ({exc})") from None
    return check_manifest(Manifest.from_json(obj), path)


def check_manifest(manifest: Manifest, where: str | Path) -> Manifest:
    """``manifest``, unless its format version is not the one this library reads."""
    if manifest.format_version != FORMAT_VERSION:
        raise ShardFormatError(
            f"{where}: format version {manifest.format_version}, this library reads {FORMAT_VERSION}"
        )
    return manifest


def row_bound(manifest: Manifest) -> int | None:
    """The longest row the dataset may hold (its ``max_tokens`` option), where it records one."""
    value = manifest.options.get("max_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def shard_stem(root: str | Path, info: ShardInfo) -> Path:
    return Path(root) / SHARDS_DIR / info.name


def verify_shard(root: str | Path, info: ShardInfo, full: bool = True) -> None:
    """Raise :class:`ShardFormatError` unless the shard matches its manifest entry.

    ``full=False`` checks headers and sizes only (cheap, done whenever a dataset is opened);
    ``full=True`` also recomputes the SHA-256 of every byte.
    """
    stem = shard_stem(root, info)
    bin_path, idx_path = stem.with_suffix(".bin"), stem.with_suffix(".idx")
    for p, expected in ((bin_path, info.bin_bytes), (idx_path, info.idx_bytes)):
        if not p.is_file():
            raise ShardFormatError(f"{p}: missing (listed in the manifest)")
        if p.stat().st_size != expected:
            raise ShardFormatError(
                f"{p}: {p.stat().st_size} bytes, the manifest says {expected}; the shard is damaged"
            )
    if full:
        digest = file_sha256(bin_path, idx_path)
        if digest != info.sha256:
            raise ShardFormatError(
                f"shard {info.name}: SHA-256 {digest[:16]}... does not match the manifest's "
                f"{info.sha256[:16]}...; the shard is damaged or was changed after preprocessing"
            )


def open_shards(root: str | Path, verify: bool = False) -> tuple[Manifest, list[Shard]]:
    """Open every shard of a dataset directory, checking sizes and index offsets (rows no longer
    than the manifest's ``max_tokens``, where it records one), and hashes when ``verify``."""
    manifest = read_manifest(root)
    max_length = row_bound(manifest)
    shards = []
    for info in manifest.shards:
        verify_shard(root, info, full=verify)
        shard = Shard(shard_stem(root, info), max_length)
        if len(shard) != info.sessions or shard.index.tokens != info.tokens:
            raise ShardFormatError(f"shard {info.name}: counts differ from the manifest")
        shards.append(shard)
    return manifest, shards
