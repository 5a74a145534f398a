"""Where a remote dataset lives: ``s3://bucket/prefix`` URLs and the client that reads them.

The client is fsspec's ``s3fs``. Why it and not obstore: ``storage_options`` is fsspec's own
keyword set (``endpoint_url``, ``key``, ``secret``, ``client_kwargs``, ``config_kwargs``, ...), so
what a team already passes to pandas, Hugging Face ``datasets`` or litdata works here unchanged;
credentials and the endpoint come from botocore's standard chain (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles) when none are
given; and the same option set opens GCS or Azure through fsspec later. Shards are large
sequential objects, so the client's per-request overhead does not decide the speed.

A :class:`Store` is one dataset root: keys are paths relative to it (``manifest.json``,
``shards/shard-000000.bin``).
"""

from __future__ import annotations

import os
from typing import Any

from rrweb_dali.extras import require

SCHEMES = ("s3",)


def is_remote(path: object) -> bool:
    """True for an object-store URL (``s3://...``); local paths, ``Path`` objects, are not."""
    if not isinstance(path, str) or "://" not in path:
        return False
    return path.split("://", 1)[0].lower() in SCHEMES


def check_url(url: str) -> str:
    """``url`` without a trailing slash, or a ``ValueError`` saying what is wrong with it."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in SCHEMES:
        raise ValueError(f"{url}: not an object-store URL (supported: {', '.join(SCHEMES)}://)")
    bucket = rest.split("/", 1)[0]
    if not bucket:
        raise ValueError(f"{url}: no bucket name (expected s3://BUCKET/PREFIX)")
    return f"{scheme.lower()}://{rest.rstrip('/')}"


class StoreError(OSError):
    """An object store that could not be reached or read, after every retry."""


class Store:
    """The objects under one dataset root URL, through an fsspec filesystem."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        self.url = check_url(url)
        self.storage_options = dict(storage_options or {})
        fsspec = require("fsspec", "reading s3:// datasets")
        require("s3fs", "reading s3:// datasets")
        scheme = self.url.split("://", 1)[0]
        # skip_instance_cache: a cached client would outlive a server restart's connections and
        # be shared by stores opened with other options in the same process.
        self.fs = fsspec.filesystem(scheme, skip_instance_cache=True, **self.storage_options)
        self._root = self.url.split("://", 1)[1]

    def key_url(self, key: str) -> str:
        return f"{self.url}/{key}"

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    @property
    def bucket_url(self) -> str:
        """``s3://BUCKET`` of this root."""
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}"

    def bucket_exists(self) -> bool:
        try:
            self.fs.info(self.bucket_url)
        except FileNotFoundError:
            return False
        return True

    def read_bytes(self, key: str) -> bytes:
        return self.fs.cat_file(self._path(key))

    def upload(self, local: str | os.PathLike, key: str) -> None:
        self.fs.put_file(os.fspath(local), self._path(key))

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (relative to the root); empty when there is none."""
        base = self._path(prefix).rstrip("/")
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        root = self._root + "/"
        return sorted(p[len(root) :] for p in found if p.startswith(root))

    def invalidate(self) -> None:
        """Forget listings cached by the client (another process may have written since)."""
        self.fs.invalidate_cache()
