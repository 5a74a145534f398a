"""``preprocess --out s3://...`` on a real S3 server (moto, 127.0.0.1): the uploaded objects are
the local dataset's bytes, the manifest goes last, the loader's batches equal the local ones, a
prefix in use is refused, a failed upload resumes from its staging directory, an unreachable store
is one error line; plus the per-shard hook of the local run and ``--storage-option`` parsing."""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import pytest
import torch

import rrweb_dali
from rrweb_dali import make_loader
from rrweb_dali.cli import main as cli_main
from rrweb_dali.commands._args import storage_option
from rrweb_dali.preprocess import PreprocessOptions, preprocess
from rrweb_dali.preprocess.publish import DestinationInUse
from rrweb_dali.shards.manifest import read_manifest
from rrweb_dali.store import RetryPolicy, Store, StoreError

SAMPLES = Path(rrweb_dali.__file__).parent / "samples"
OPTIONS = PreprocessOptions(group_files=2)  # 9 groups, one shard each
CLI_OPTIONS = ["--group-files", "2", "--workers", "2", "--no-progress"]
ONE_TRY = RetryPolicy(attempts=1)


@pytest.fixture(scope="module")
def local_dataset(tmp_path_factory) -> Path:
    """The samples preprocessed into a local directory, the reference for every upload here."""
    out = tmp_path_factory.mktemp("local") / "ds"
    preprocess([SAMPLES], out, OPTIONS, workers=2)
    return out


@pytest.fixture
def tmp_root(tmp_path, monkeypatch) -> Path:
    """Where default (temporary) staging directories go in this test, to see them removed."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def storage_flags(bucket) -> list[str]:
    return [
        arg for k, v in bucket.storage_options.items() for arg in ("--storage-option", f"{k}={v}")
    ]


def objects(bucket, prefix: str) -> dict[str, bytes]:
    fs = bucket.fs()
    root = "/".join(part for part in (bucket.name, prefix) if part)
    return {p[len(root) + 1 :]: fs.cat_file(p) for p in fs.find(root)}


def dataset_files(local: Path) -> dict[str, bytes]:
    wanted = [
        "manifest.json",
        "errors.jsonl",
        *(f"shards/{p.name}" for p in (local / "shards").iterdir()),
    ]
    return {k: (local / k).read_bytes() for k in wanted}


def batches(loader) -> list[dict]:
    out = [{k: v.clone() for k, v in b.items()} for b in loader]
    loader.close()
    return out


def assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) and a
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert torch.equal(x[k], y[k]), k


def assert_loads_like(url: str, bucket, local: Path, cache: Path) -> None:
    kw = dict(device="cpu", batch_size=4, seed=5)
    remote = make_loader(url, storage_options=bucket.storage_options, cache_dir=cache, **kw)
    assert_same_batches(batches(make_loader(str(local), **kw)), batches(remote))


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


# ---------------------------------------------------------------- uploading


def test_the_cli_uploads_the_local_datasets_bytes(
    s3_bucket, local_dataset, tmp_path, tmp_root, capsys
):
    url = f"{s3_bucket.url}/runs/v1"
    rc = cli_main(
        ["preprocess", str(SAMPLES), "--out", url, *CLI_OPTIONS, *storage_flags(s3_bucket)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    got = objects(s3_bucket, "runs/v1")
    want = dataset_files(local_dataset)
    assert sorted(got) == sorted(want) and len(got) == 2 + 2 * 9
    assert got == want  # byte for byte: the upload is the local dataset
    total = sum(len(v) for v in want.values())
    assert out.splitlines()[-1] == f"uploaded {total / 1e6:,.1f} MB to {url}"
    assert f"dataset   {url}" in out and f"{url}/errors.jsonl" in out
    assert list(tmp_root.iterdir()) == []  # the temporary staging directory is gone
    assert_loads_like(url, s3_bucket, local_dataset, tmp_path / "cache")


def test_the_python_api_keeps_a_given_staging_directory(s3_bucket, local_dataset, tmp_path):
    url = f"{s3_bucket.url}/api"
    staging = tmp_path / "staging"
    result = preprocess(
        [SAMPLES], url, OPTIONS, staging=staging, storage_options=s3_bucket.storage_options
    )
    assert result.store_url == url and result.out == staging
    got = objects(s3_bucket, "api")
    assert result.uploaded_bytes == sum(len(v) for v in got.values())
    assert got == dataset_files(staging) == dataset_files(local_dataset)
    assert read_manifest(staging).shards == read_manifest(local_dataset).shards
    assert_loads_like(url, s3_bucket, local_dataset, tmp_path / "cache")


def test_a_bucket_root_and_the_aws_variables(
    s3_bucket, local_dataset, monkeypatch, tmp_root, capsys
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.server.endpoint)
    rc = cli_main(["preprocess", str(SAMPLES), "--out", s3_bucket.url + "/", *CLI_OPTIONS])
    assert rc == 0, capsys.readouterr().err
    assert objects(s3_bucket, "").keys() == dataset_files(local_dataset).keys()


def test_the_manifest_is_uploaded_last(s3_bucket, local_dataset, tmp_path, monkeypatch):
    order: list[str] = []
    real_upload = Store.upload

    def upload(store, local, key):
        if key == "manifest.json":  # every other object is already readable in the store
            listed = set(objects(s3_bucket, "last"))
            assert listed == set(dataset_files(local_dataset)) - {"manifest.json"}
        real_upload(store, local, key)
        order.append(key)

    monkeypatch.setattr(Store, "upload", upload)
    preprocess(
        [SAMPLES],
        f"{s3_bucket.url}/last",
        OPTIONS,
        staging=tmp_path / "staging",
        storage_options=s3_bucket.storage_options,
        workers=2,
    )
    assert order[-2:] == ["errors.jsonl", "manifest.json"]
    shards = order[:-2]
    assert len(shards) == 18 and len(set(shards)) == 18  # each object once
    for i in range(0, len(shards), 2):  # a shard's tokens, then its index
        assert shards[i].endswith(".bin") and shards[i + 1] == shards[i][:-4] + ".idx"


def test_the_hook_hands_over_each_shard_complete_before_the_manifest(tmp_path):
    out = tmp_path / "ds"
    seen = []

    def on_shard(info):
        assert not (out / "manifest.json").exists()
        assert (out / "shards" / f"{info.name}.bin").stat().st_size == info.bin_bytes
        assert (out / "shards" / f"{info.name}.idx").stat().st_size == info.idx_bytes
        seen.append(info)

    preprocess([SAMPLES], out, OPTIONS, workers=2, on_shard=on_shard)
    shards = read_manifest(out).shards
    assert sorted(seen, key=lambda s: s.name) == shards
    seen.clear()
    preprocess([SAMPLES], out, OPTIONS, workers=2, on_shard=lambda s: seen.append(s))
    assert seen == shards  # a rerun hands over the groups finished before, in group order


def test_store_keywords_need_a_store_url(tmp_path, capsys):
    with pytest.raises(ValueError, match="object-store out"):
        preprocess([SAMPLES], tmp_path / "ds", staging=tmp_path / "s")
    rc = cli_main(["preprocess", str(SAMPLES), "--out", str(tmp_path / "d"), "--staging", "x"])
    assert rc == 2
    assert error_lines(capsys.readouterr().err) == [
        "error: --staging need(s) --out s3://BUCKET/PREFIX"
    ]
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------- what the prefix may hold


def run_cli(bucket, url, *extra) -> int:
    return cli_main(
        ["preprocess", str(SAMPLES), "--out", url, *CLI_OPTIONS, *storage_flags(bucket), *extra]
    )


def test_a_prefix_holding_other_objects_is_refused(s3_bucket, tmp_root, capsys):
    s3_bucket.fs().pipe_file(f"{s3_bucket.name}/mixed/notes.txt", b"mine")
    assert run_cli(s3_bucket, f"{s3_bucket.url}/mixed") == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert f"{s3_bucket.url}/mixed holds 1 object(s)" in lines[0] and "notes.txt" in lines[0]
    assert objects(s3_bucket, "mixed") == {"notes.txt": b"mine"}
    assert list(tmp_root.iterdir()) == []  # refused before any work


def test_a_finished_dataset_is_never_changed_in_place(s3_bucket, tmp_root, capsys):
    url = f"{s3_bucket.url}/v1"
    assert run_cli(s3_bucket, url) == 0
    before = objects(s3_bucket, "v1")
    capsys.readouterr()
    assert run_cli(s3_bucket, url) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "already holds a finished dataset" in line and "choose a new prefix" in line
    assert objects(s3_bucket, "v1") == before


def test_a_missing_bucket_is_named(s3_bucket, tmp_root, capsys):
    assert run_cli(s3_bucket, "s3://no-such-bucket-here/ds") == 2
    assert error_lines(capsys.readouterr().err) == [
        "error: s3://no-such-bucket-here: no such bucket (create it first)"
    ]


def test_a_dataset_published_meanwhile_is_not_overwritten(s3_bucket, tmp_path, monkeypatch):
    real_upload = Store.upload
    theirs = f"{s3_bucket.name}/race/manifest.json"

    def upload(store, local, key):
        real_upload(store, local, key)
        if key.endswith(".idx"):  # another run publishes while this one uploads
            s3_bucket.fs().pipe_file(theirs, b"{}")

    monkeypatch.setattr(Store, "upload", upload)
    with pytest.raises(DestinationInUse, match="another run published"):
        preprocess(
            [SAMPLES],
            f"{s3_bucket.url}/race",
            OPTIONS,
            staging=tmp_path / "staging",
            storage_options=s3_bucket.storage_options,
        )
    assert s3_bucket.fs().cat_file(theirs) == b"{}"


# ---------------------------------------------------------------- failures


def test_a_failed_upload_resumes_from_its_staging_directory(
    s3_bucket, local_dataset, tmp_path, tmp_root, monkeypatch, capsys
):
    url = f"{s3_bucket.url}/flaky"
    real_upload = Store.upload

    def failing(store, local, key):
        if key == "shards/shard-000004-0000.bin":
            raise ConnectionResetError("connection reset by peer")
        real_upload(store, local, key)

    monkeypatch.setattr(Store, "upload", failing)
    assert run_cli(s3_bucket, url, "--store-attempts", "1") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert f"uploading {url}/shards/shard-000004-0000.bin: failed 1 times" in line
    (staging,) = tmp_root.iterdir()  # kept, and named with the flag that resumes it
    assert f"--staging {staging} to resume" in line
    left = objects(s3_bucket, "flaky")
    assert left and "manifest.json" not in left  # no reader sees the half-written dataset
    monkeypatch.setattr(Store, "upload", real_upload)

    assert run_cli(s3_bucket, url) == 2  # shards there, but not this run's staging directory
    (line,) = error_lines(capsys.readouterr().err)
    assert "an upload that did not finish" in line and "--staging DIR" in line

    assert run_cli(s3_bucket, url, "--staging", str(staging)) == 0
    out = capsys.readouterr().out
    run_now, before = map(int, re.search(r"(\d+) run now, (\d+) done before", out).groups())
    assert before >= 5 and run_now + before == 9  # the groups finished before are not read again
    assert objects(s3_bucket, "flaky") == dataset_files(local_dataset)
    assert staging.is_dir()  # given, so kept
    assert_loads_like(url, s3_bucket, local_dataset, tmp_path / "cache")


def test_an_unreachable_store_is_one_error_line(s3_bucket, tmp_root, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    url = "s3://bucket/prefix"
    rc = cli_main(
        [
            "preprocess",
            str(SAMPLES),
            "--out",
            url,
            "--store-attempts",
            "1",
            "--storage-option",
            f"endpoint_url=http://127.0.0.1:{port}",
            "--storage-option",
            'config_kwargs={"retries": {"max_attempts": 1}}',
        ]
    )
    assert rc == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: listing {url}: failed 1 times") and "connect" in line
    assert list(tmp_root.iterdir()) == []
    with pytest.raises(StoreError, match=f"listing {url}"):
        preprocess(
            [SAMPLES],
            url,
            retry=ONE_TRY,
            storage_options={
                "endpoint_url": f"http://127.0.0.1:{port}",
                "config_kwargs": {"retries": {"max_attempts": 1}},
            },
        )


# ---------------------------------------------------------------- --storage-option


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("endpoint_url=http://127.0.0.1:9000", ("endpoint_url", "http://127.0.0.1:9000")),
        ("anon=true", ("anon", True)),
        ("max_concurrency=8", ("max_concurrency", 8)),
        ('key="123"', ("key", "123")),
        (
            'client_kwargs={"region_name": "eu-west-1"}',
            ("client_kwargs", {"region_name": "eu-west-1"}),
        ),
        ("secret=a=b", ("secret", "a=b")),
        ("token=", ("token", "")),
        ("profile=null", ("profile", None)),
    ],
)
def test_storage_option_values_are_json_when_they_parse(text, want):
    assert storage_option(text) == want


@pytest.mark.parametrize("text", ["endpoint_url", "=x", " =x"])
def test_a_storage_option_without_a_key_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        storage_option(text)


def test_a_repeated_storage_option_is_refused(s3_bucket, tmp_root, capsys):
    rc = run_cli(s3_bucket, f"{s3_bucket.url}/x", "--storage-option", "key=other")
    assert rc == 2
    assert error_lines(capsys.readouterr().err) == ["error: --storage-option key given twice"]
    assert objects(s3_bucket, "x") == {}
