"""Token shards: the memory-mapped format (:mod:`.format`) and the dataset manifest (:mod:`.manifest`)."""

from rrweb_dali.shards.format import (
    FORMAT_VERSION,
    DType,
    Shard,
    ShardFormatError,
    ShardIndex,
    ShardInfo,
    ShardWriter,
)
from rrweb_dali.shards.manifest import (
    ERRORS_NAME,
    MANIFEST_NAME,
    SHARDS_DIR,
    Manifest,
    open_shards,
    read_manifest,
    verify_shard,
    write_manifest,
)

__all__ = [
    "ERRORS_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "SHARDS_DIR",
    "DType",
    "Manifest",
    "Shard",
    "ShardFormatError",
    "ShardIndex",
    "ShardInfo",
    "ShardWriter",
    "open_shards",
    "read_manifest",
    "verify_shard",
    "write_manifest",
]
