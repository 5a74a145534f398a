"""The dataset part of ``meta.json``: the same summary from ``rrweb-dali profile`` and the hook.

Two runs that differ only in what they read must show it in the dashboard's config diff, so
every run records, per source: on shards the manifest's counts (shards, sessions, tokens, bytes,
dtype, tokenizer); in raw mode the sources, the files found and the cache options that decide
the tokens and how they are kept (``cache_dir``, ``cache_bytes``, ``max_tokens``, ...).

A dataset in an object store (``s3://``) is summarised from the manifest the loader already
read (``loader.reader.manifests``), never fetched again, and marked ``"remote": true``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rrweb_dali.shards.format import ShardFormatError
from rrweb_dali.shards.manifest import Manifest, read_manifest
from rrweb_dali.store.location import is_remote


def manifest_summary(root: str, m: Manifest) -> dict:
    """One dataset's counts from its manifest."""
    return {
        "path": str(root),
        "shards": len(m.shards),
        "sessions": sum(s.sessions for s in m.shards),
        "tokens": sum(s.tokens for s in m.shards),
        "bytes": sum(s.bin_bytes + s.idx_bytes for s in m.shards),
        "dtype": m.dtype,
        "format_version": m.format_version,
        "tokenizer": m.tokenizer,
    }


def shards_summary(
    shards: Sequence[str], manifests: Sequence[Manifest] | None = None
) -> list[dict]:
    """Per dataset: shards, sessions, tokens, dtype, tokenizer, from ``manifests`` (in the order
    of ``shards``) when given, else read from each local directory. A remote dataset without a
    given manifest says only where it is (reading it here would be a second download)."""
    out = []
    for i, root in enumerate(shards):
        remote = is_remote(root)
        if manifests is not None and i < len(manifests):
            out.append(manifest_summary(root, manifests[i]) | ({"remote": True} if remote else {}))
            continue
        if remote:
            out.append({"path": str(root), "remote": True})
            continue
        try:
            m = read_manifest(root)
        except (ShardFormatError, OSError) as exc:
            out.append({"path": str(root), "error": str(exc)})
            continue
        out.append(manifest_summary(root, m))
    return out


def loader_dataset(description: dict, manifests: Sequence[Manifest] | None = None) -> list[dict]:
    """The dataset summary of a loader, from its ``describe()`` (``source``) and, when it has
    them, the manifests it opened: the shards' counts, or raw mode's sources and cache options;
    ``[]`` for a loader that does not say."""
    source = description.get("source") if isinstance(description, dict) else None
    if not isinstance(source, dict):
        return []
    if source.get("kind") == "shards":
        paths = [str(p) for p in source.get("paths") or []]
        if manifests is not None and len(manifests) != len(paths):
            manifests = None  # not the loader's own: read them instead
        return shards_summary(paths, manifests)
    if source.get("kind") == "raw":
        return [{k: v for k, v in source.items() if k != "kind"} | {"kind": "raw"}]
    return []
