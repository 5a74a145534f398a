"""The dataset part of ``meta.json``: the same summary from ``rrweb-dali profile`` and the hook.

Two runs that differ only in what they read must show it in the dashboard's config diff, so
every run records, per source: on shards the manifest's counts (shards, sessions, tokens, bytes,
dtype, tokenizer); in raw mode the sources, the files found and the cache options that decide
the tokens and how they are kept (``cache_dir``, ``cache_bytes``, ``max_tokens``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

from rrweb_dali.shards.format import ShardFormatError
from rrweb_dali.shards.manifest import read_manifest


def shards_summary(shards: Sequence[str]) -> list[dict]:
    """Per dataset directory: shards, sessions, tokens, dtype, tokenizer (from its manifest)."""
    out = []
    for root in shards:
        try:
            m = read_manifest(root)
        except (ShardFormatError, OSError) as exc:
            out.append({"path": str(root), "error": str(exc)})
            continue
        out.append(
            {
                "path": str(root),
                "shards": len(m.shards),
                "sessions": sum(s.sessions for s in m.shards),
                "tokens": sum(s.tokens for s in m.shards),
                "bytes": sum(s.bin_bytes + s.idx_bytes for s in m.shards),
                "dtype": m.dtype,
                "format_version": m.format_version,
                "tokenizer": m.tokenizer,
            }
        )
    return out


def loader_dataset(description: dict) -> list[dict]:
    """The dataset summary of a loader, from its ``describe()`` (``source``): the shards'
    manifests, or raw mode's sources and cache options; ``[]`` for a loader that does not say."""
    source = description.get("source") if isinstance(description, dict) else None
    if not isinstance(source, dict):
        return []
    if source.get("kind") == "shards":
        return shards_summary([str(p) for p in source.get("paths") or []])
    if source.get("kind") == "raw":
        return [{k: v for k, v in source.items() if k != "kind"} | {"kind": "raw"}]
    return []
