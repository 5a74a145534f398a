"""A real S3-compatible server on 127.0.0.1 for the object-store tests: moto in server mode.

``s3_server`` is one server for the module's tests (start-up costs about a second);
``s3_bucket`` a fresh bucket per test, with the ``storage_options`` that reach it. The server can
be stopped and started again on the same port (``s3_server.restart()``): moto keeps its objects in
this process, so they survive a restart, as a real store's do.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import uuid
from dataclasses import dataclass

import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

ACCESS = {"key": "testing", "secret": "testing"}
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's threaded S3 server on a fixed loopback port, stoppable and restartable."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None
        self.start()

    def start(self) -> None:
        self._server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=self.port)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def storage_options(self) -> dict:
        return {"endpoint_url": self.endpoint, **ACCESS}


@dataclass
class Bucket:
    name: str
    server: S3Server

    @property
    def url(self) -> str:
        return f"s3://{self.name}"

    @property
    def storage_options(self) -> dict:
        return self.server.storage_options

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options)


@pytest.fixture(scope="module")
def s3_server():
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch) -> Bucket:
    """A new, empty bucket; AWS variables point nowhere else (no real credentials are read)."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ACCESS["secret"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = Bucket(f"b-{uuid.uuid4().hex[:12]}", s3_server)
    bucket.fs().mkdir(bucket.name)
    return bucket


@dataclass
class RemoteDataset:
    local: object  # the local dataset directory (pathlib.Path)
    url: str
    bucket: Bucket
    sessions: list
    shards: int

    @property
    def storage_options(self) -> dict:
        return self.bucket.storage_options


@pytest.fixture
def s3_dataset(s3_bucket, tmp_path, write_dataset) -> RemoteDataset:
    """A random token dataset of 203 sequences in 6 shards, written locally and uploaded."""
    from rrweb_dali.store import Store
    from rrweb_dali.store.upload import upload_dataset

    local = tmp_path / "local"
    sessions = write_dataset(local, shards=6, max_len=1500)
    url = f"{s3_bucket.url}/data/v1"
    upload_dataset(local, Store(url, s3_bucket.storage_options))
    return RemoteDataset(local, url, s3_bucket, sessions, 6)


@pytest.fixture(scope="session")
def batches_of():
    """``batches_of(loader, limit=None)``: the loader's batches, copied (a list of dicts)."""

    def run(loader, limit=None):
        out = []
        for batch in loader:
            out.append({k: v.clone() for k, v in batch.items()})
            if limit is not None and len(out) == limit:
                break
        return out

    return run


@pytest.fixture(scope="session")
def assert_same_batches():
    import torch

    def check(expected, got):
        assert len(got) == len(expected)
        for a, b in zip(expected, got, strict=True):
            assert a.keys() == b.keys()
            for k in a:
                assert torch.equal(a[k], b[k]), k

    return check


class StallingProxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 server that can stall: while ``stalled`` is
    set, no byte passes in either direction (connections stay open, as with a hung server)."""

    def __init__(self, target_port: int) -> None:
        import threading

        self._target = target_port
        self.stalled = threading.Event()
        self._closed = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self.held = 0  # transfers that met the stall
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # the timeout, or closed
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                if self.stalled.is_set():
                    self.held += 1
                while self.stalled.is_set() and not self._closed.is_set():
                    self._closed.wait(0.05)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for s in self._sockets:
            s.close()


@pytest.fixture
def stalling_proxy(s3_server):
    proxy = StallingProxy(s3_server.port)
    yield proxy
    proxy.close()
