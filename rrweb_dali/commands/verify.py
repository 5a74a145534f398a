"""``rrweb-dali verify DIR``: recompute every shard's SHA-256 and compare it with the manifest."""

from __future__ import annotations

import argparse
import sys

from rrweb_dali.commands._args import UsageError, add_command
from rrweb_dali.commands._table import format_kv
from rrweb_dali.shards.format import Shard, ShardFormatError
from rrweb_dali.shards.manifest import read_manifest, shard_stem, verify_shard


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "verify",
        help="check every shard of a dataset against the SHA-256 in its manifest",
        description=(
            "Read every byte of every shard listed in DIR/manifest.json, recompute its SHA-256 "
            "(.bin then .idx) and check sizes, index structure and session counts. Exit 0 when "
            "all shards match; exit 1 naming each bad shard otherwise; exit 2 when DIR is not a "
            "dataset."
        ),
        examples=["rrweb-dali verify data/"],
    )
    p.add_argument("dataset", metavar="DIR", help="a directory written by `rrweb-dali preprocess`")
    p.set_defaults(func=main)


def check_shard(root, info) -> None:
    """Hash, sizes, then the index itself: a shard must also open and hold the recorded counts."""
    verify_shard(root, info, full=True)
    shard = Shard(shard_stem(root, info))
    if len(shard) != info.sessions or shard.index.tokens != info.tokens:
        raise ShardFormatError(
            f"shard {info.name}: session or token counts differ from the manifest"
        )


def main(args: argparse.Namespace) -> int:
    try:
        manifest = read_manifest(args.dataset)
    except (KeyError, TypeError) as exc:
        raise UsageError(
            f"{args.dataset}: manifest.json is not a dataset manifest ({exc})"
        ) from None
    bad: list[str] = []
    total_bytes = 0
    for info in manifest.shards:
        try:
            check_shard(args.dataset, info)
        except (ShardFormatError, OSError) as exc:
            print(f"BAD shard {info.name}: {exc}", file=sys.stderr)
            bad.append(info.name)
            continue
        total_bytes += info.bin_bytes + info.idx_bytes
    print(
        format_kv(
            [
                ("dataset", args.dataset),
                ("shards checked", len(manifest.shards)),
                ("bytes hashed", total_bytes),
                ("bad shards", ", ".join(bad) if bad else "none"),
            ]
        )
    )
    if bad:
        print(
            f"error: {len(bad)} shard(s) do not match the manifest: {', '.join(bad)}",
            file=sys.stderr,
        )
        return 1
    return 0
