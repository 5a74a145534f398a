"""Writing a finished local dataset directory to an object store, readers never misled.

Order is the guarantee: every shard's ``.bin`` then its ``.idx``, then ``errors.jsonl``, and the
manifest last, so a reader (which starts from the manifest) sees either no dataset or a complete
one. Uploading a shard the moment it is complete (:class:`Uploader`) lets ``preprocess`` overlap
the upload with the rest of the work.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rrweb_dali.shards.format import ShardInfo
from rrweb_dali.shards.manifest import ERRORS_NAME, MANIFEST_NAME, read_manifest
from rrweb_dali.store.location import Store
from rrweb_dali.store.options import RetryPolicy
from rrweb_dali.store.remote import index_key, token_key
from rrweb_dali.store.transfer import with_retries

logger = logging.getLogger(__name__)


class Uploader:
    """Uploads a dataset's files from ``local`` to ``store`` in the order above."""

    def __init__(self, local: str | Path, store: Store, retry: RetryPolicy | None = None):
        self.local = Path(local)
        self.store = store
        self.retry = RetryPolicy() if retry is None else retry
        self.uploaded_bytes = 0

    def _put(self, path: Path, key: str) -> None:
        with_retries(
            lambda: self.store.upload(path, key), self.retry, f"uploading {self.store.key_url(key)}"
        )
        self.uploaded_bytes += path.stat().st_size

    def shard(self, info: ShardInfo) -> None:
        """Upload one complete shard (its ``.bin``, then its ``.idx``)."""
        for key in (token_key(info), index_key(info)):
            self._put(self.local / key, key)

    def finish(self) -> None:
        """Upload ``errors.jsonl`` (when there is one), then the manifest."""
        errors = self.local / ERRORS_NAME
        if errors.is_file():
            self._put(errors, ERRORS_NAME)
        self._put(self.local / MANIFEST_NAME, MANIFEST_NAME)
        self.store.invalidate()


def upload_dataset(local: str | Path, store: Store, retry: RetryPolicy | None = None) -> int:
    """Upload the whole dataset directory ``local`` (shards, errors, manifest last); its bytes."""
    uploader = Uploader(local, store, retry)
    for info in read_manifest(local).shards:
        uploader.shard(info)
    uploader.finish()
    logger.info("uploaded %s to %s (%d bytes)", local, store.url, uploader.uploaded_bytes)
    return uploader.uploaded_bytes
