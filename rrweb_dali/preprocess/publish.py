"""``preprocess(..., out="s3://bucket/prefix")``: preprocess locally, upload as shards complete.

The dataset is made by the ordinary local :func:`~rrweb_dali.preprocess.preprocess` in a staging
directory, so it is as crash-safe and resumable as a local run, and byte-identical to one. Each
shard is handed over (``on_shard``) the moment its group is finished and uploaded by one
background thread while the workers go on; after the run, ``errors.jsonl`` and, last, the
manifest (:class:`~rrweb_dali.store.upload.Uploader`). A reader starts from the manifest, so it
sees either no dataset or a complete one.

What the destination may hold, checked before any work:

* nothing: a new dataset;
* a finished dataset (a ``manifest.json``): refused. A dataset in a store is never changed in
  place, since nodes may be training from it and the manifest is what they trust; publish a new
  version under a new prefix instead (a kept local staging directory, extended by a rerun with
  more inputs, uploads as the next version);
* only shard objects (and ``errors.jsonl``) but no manifest: an upload that did not finish. It
  is resumed when the staging directory of that run is given again (it holds the finished
  groups); every shard is uploaded again, since the store cannot prove an object is the one this
  staging directory holds. Without that directory it is refused;
* anything else: refused, the run never writes among objects it did not make.

The staging directory is kept when the run fails (and named in the error), so the same command
with ``staging=`` that directory resumes; a temporary one is removed after success.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rrweb_dali.ingest.discover import STATE_DIR
from rrweb_dali.preprocess.run import PreprocessOptions, PreprocessResult, preprocess
from rrweb_dali.shards.format import ShardInfo
from rrweb_dali.shards.manifest import ERRORS_NAME, MANIFEST_NAME, SHARDS_DIR
from rrweb_dali.store.location import Store
from rrweb_dali.store.options import RetryPolicy
from rrweb_dali.store.remote import index_key, token_key
from rrweb_dali.store.transfer import with_retries
from rrweb_dali.store.upload import Uploader

logger = logging.getLogger(__name__)

#: the objects an unfinished upload leaves: shard files (``shard-GGGGGG-PPPP``) and errors.jsonl
_LEFTOVER = re.compile(rf"^(?:{SHARDS_DIR}/shard-\d{{6}}-\d{{4}}\.(?:bin|idx)|{ERRORS_NAME})$")
SHOWN = 3  # keys named in a refusal


class DestinationInUse(ValueError):
    """The destination prefix holds objects this run may not write among."""


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:SHOWN]) + (", ..." if len(keys) > SHOWN else "")


def check_destination(store: Store, staging: Path | None, retry: RetryPolicy) -> list[str]:
    """The keys already under ``store`` that this run will overwrite (an unfinished upload it
    resumes; usually none), or :class:`DestinationInUse` (see the module docstring). An
    unreachable store raises :class:`~rrweb_dali.store.location.StoreError` naming the URL; a
    missing bucket, FileNotFoundError."""
    keys = with_retries(store.list, retry, f"listing {store.url}")
    if not keys:
        bucket = store.bucket_url
        if not with_retries(store.bucket_exists, retry, f"opening {bucket}"):
            raise FileNotFoundError(errno.ENOENT, "no such bucket (create it first)", bucket)
        return []
    if MANIFEST_NAME in keys:
        raise DestinationInUse(
            f"{store.url} already holds a finished dataset ({MANIFEST_NAME}); a dataset in an "
            "object store is never changed in place (readers may be using it): choose a new "
            "prefix (to add files, rerun with the local --staging directory of that dataset and "
            "a new --out prefix)"
        )
    foreign = [k for k in keys if not _LEFTOVER.match(k)]
    if foreign:
        raise DestinationInUse(
            f"{store.url} holds {len(keys)} object(s) and is not an rrweb-dali dataset "
            f"({_listed(foreign)}); choose a new or empty prefix"
        )
    if staging is None or not (staging / STATE_DIR).is_dir():
        raise DestinationInUse(
            f"{store.url} holds {len(keys)} shard object(s) but no {MANIFEST_NAME}: an upload "
            "that did not finish. To resume it, run again with the staging directory of that "
            "run (--staging DIR, named when it failed); or choose a new prefix"
        )
    logger.info("%s: resuming an unfinished upload (%d objects there)", store.url, len(keys))
    return keys


class _Uploads:
    """Shards handed over by the run, uploaded in that order by one background thread, so the
    workers keep going while the bytes travel. The first failure stops the uploads and is raised
    in the run's thread at the next :meth:`add` (which stops the run) or at :meth:`close`."""

    def __init__(self, uploader: Uploader):
        self.uploader = uploader
        self.names: list[str] = []
        self._queue: queue.Queue[ShardInfo | None] = queue.Queue()
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._work, name="rrweb-dali-upload", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (info := self._queue.get()) is not None:
            if self._error is not None or self._cancelled.is_set():
                continue
            try:
                self.uploader.shard(info)
                self.names.append(info.name)
            except BaseException as exc:  # raised again in the run's thread
                self._error = exc

    def add(self, info: ShardInfo) -> None:
        self._raise()
        self._queue.put(info)

    def close(self) -> None:
        """Wait for every shard handed over; raise the first upload failure."""
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def cancel(self) -> None:
        """Stop after the upload in progress (the run failed)."""
        self._cancelled.set()
        self._queue.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


def _has_finished_groups(staging: Path) -> bool:
    state = staging / STATE_DIR
    return state.is_dir() and any(state.glob("group-*.json"))


def publish(
    sources: Sequence[str | os.PathLike],
    url: str,
    options: PreprocessOptions | None = None,
    *,
    staging: str | os.PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    workers: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = False,
    worker_memory: int | None = None,
) -> PreprocessResult:
    """Preprocess ``sources`` and upload the dataset to ``url`` (``s3://bucket/prefix``).

    ``staging`` is the local directory the dataset is made in (default: a new temporary one,
    removed after success; give one on a disk with room for the whole dataset, or to keep a local
    copy). ``storage_options`` go to fsspec (``{"endpoint_url": ...}``; default: the standard AWS
    variables); ``retry`` is how often each request is tried. The other keywords are
    :func:`~rrweb_dali.preprocess.preprocess`'s. Raises :class:`DestinationInUse` for a prefix
    that already holds objects (see the module docstring), StoreError for a store that stays
    unreachable. On failure the staging directory is kept and named in a note on the exception.
    """
    retry = RetryPolicy() if retry is None else retry
    store = Store(url, storage_options)
    given = None if staging is None else Path(staging)
    before = check_destination(store, given, retry)
    root = given if given is not None else Path(tempfile.mkdtemp(prefix="rrweb-dali-staging-"))
    uploader = Uploader(root, store, retry)
    uploads = _Uploads(uploader)
    try:
        result = preprocess(
            sources,
            root,
            options,
            workers=workers,
            executor=executor,
            ray_address=ray_address,
            progress=progress,
            worker_memory=worker_memory,
            on_shard=uploads.add,
        )
        uploads.close()
        _check_complete(result, uploads.names)
        _check_still_free(store, retry)
        uploader.finish()  # errors.jsonl, then the manifest: the dataset appears
    except BaseException as exc:
        uploads.cancel()
        if given is None and not _has_finished_groups(root):
            shutil.rmtree(root, ignore_errors=True)  # nothing there to resume
        else:
            note = (
                f"the finished groups are kept in {root}: run the same command again with "
                f"--staging {root} to resume"
                if given is None
                else f"the finished groups are kept in {root}: run the same command again to resume"
            )
            if isinstance(exc, Exception) and hasattr(exc, "add_note"):  # Python 3.11+
                exc.add_note(note)
            else:  # Ctrl-C (no error line carries the note), or no notes on Python 3.10
                logger.warning("%s", note)
        raise
    stray = sorted(set(before) - _keys(result))
    if stray:
        logger.warning(
            "%s: %d object(s) left by the unfinished upload are not in the dataset (%s); "
            "readers ignore them",
            store.url,
            len(stray),
            _listed(stray),
        )
    if given is None:
        shutil.rmtree(root, ignore_errors=True)
    logger.info("uploaded %s (%d bytes)", store.url, uploader.uploaded_bytes)
    return dataclasses.replace(result, store_url=store.url, uploaded_bytes=uploader.uploaded_bytes)


def _keys(result: PreprocessResult) -> set[str]:
    keys = {MANIFEST_NAME, ERRORS_NAME}
    for info in result.manifest.shards:
        keys.update((token_key(info), index_key(info)))
    return keys


def _check_complete(result: PreprocessResult, uploaded: list[str]) -> None:
    """Every shard of the manifest was uploaded, each once: the manifest may follow."""
    want = sorted(s.name for s in result.manifest.shards)
    if sorted(uploaded) != want:
        missing = sorted(set(want) - set(uploaded))
        raise RuntimeError(
            f"bug: {len(uploaded)} shard(s) uploaded for a manifest of {len(want)} "
            f"(missing: {_listed(missing)}); the manifest was not uploaded"
        )


def _check_still_free(store: Store, retry: RetryPolicy) -> None:
    """No other run published a dataset here meanwhile (its manifest would be replaced)."""
    store.invalidate()
    manifest = store.key_url(MANIFEST_NAME)
    if not with_retries(lambda: store.exists(MANIFEST_NAME), retry, f"checking {manifest}"):
        return
    raise DestinationInUse(
        f"{store.url}: another run published a dataset here during this one; this run's "
        "manifest was not uploaded (choose a new prefix)"
    )
