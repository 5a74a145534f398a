"""Bench: an s3:// dataset, first epoch and cached epochs, against the same shards read locally.

Side by side in one run: the first epoch downloads every shard, the later ones read the local
shard cache, and the local loader reads the same shards from a directory.

The store is moto's S3 server in its own process on 127.0.0.1 (it never shares this process's GIL),
started by the bench and stopped at the end, whatever happens. The dataset (by default the
synthetic corpus of ``bench/loader.py``: ``--synth N`` sessions preprocessed with ``--max-tokens``
split windows, cached under ``.bench-data/``; or ``--shards DIR``) is uploaded once with
``rrweb_dali.store.upload.upload_dataset``; its files are read once so local epochs find them in
the page cache. Then ``--repeats`` times, with new loaders, the same seed and options for both:

* ``local``: ``make_loader(DIR)``; ``store``: ``make_loader("s3://...", cache_dir=<new empty
  directory>)``, made after the local epoch 0 so that nothing it fetches ahead competes with it.
* Epochs in turns, local ``k`` then store ``k``, ``k = 0 .. --epochs - 1``: the store's epoch 0 is
  the *first* (cold cache: every shard downloaded, checked, cached), the later ones are *cached*.

An epoch is timed from ``iter(loader)`` to its last batch (the loop only counts rows and tokens;
both loaders must give the same counts). Ratios pair each store epoch with the local epochs of its
own repeat, so a change in the machine's load between repeats cancels; the goals apply to their
medians: cached epochs within 1.1x of the local epochs 1+ (ratio >= 1/1.1), the first epoch within
2x (>= 0.5). Also printed: CPU seconds per epoch (this process's, and the server's), which hold on
a busy machine where wall times do not; bytes downloaded, download MB/s, the time batches waited
for shards, hits and misses (``loader.cache_stats()``); and the *client ceiling*, every shard read
whole by s3fs in ``--fetch-threads`` threads with no loader, which bounds any first epoch here.

    python bench/object_store.py [--repeats R] [--epochs E] [--batch-size B] [--fetch-ahead N]
                                 [--fetch-threads N] [--no-shuffle] [--shards DIR | --synth N]
                                 [--json PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, where a sibling may shadow a module; import from
# the repository root instead (bench._data is then a namespace-package import).
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import psutil  # noqa: E402

from bench._data import add_data_args, bench_datasets, machine  # noqa: E402

CACHED_GOAL = 1 / 1.1  # cached epoch samples/s over local (within 1.1x)
FIRST_GOAL = 0.5  # first epoch samples/s over local (within 2x)
BUCKET = "bench"
ACCESS = {"key": "testing", "secret": "testing"}  # moto accepts any; nothing real is read
_STORE_TOTALS = ("download_bytes", "downloads", "download_s", "wait_s", "evictions")


def _note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- the S3 server (its own process) ---------------------------------------------------------
@dataclass
class Server:
    endpoint: str
    process: psutil.Process

    @property
    def storage_options(self) -> dict:
        return {"endpoint_url": self.endpoint, **ACCESS}

    def cpu_s(self) -> float:
        t = self.process.cpu_times()
        return t.user + t.system


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(endpoint: str) -> bool:
    """True once the server gives any HTTP answer (an error status is an answer too)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(endpoint, timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def s3_server(timeout_s: float = 30.0) -> Iterator[Server]:
    """moto's S3 server on a free loopback port for the ``with`` block, stopped on the way out
    (also when the block raises)."""
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "moto.server"]
    endpoint = f"http://127.0.0.1:{_free_port()}"
    port = endpoint.rsplit(":", 1)[1]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", port], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + timeout_s
            while not _answers(endpoint):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise SystemExit(f"the S3 server did not start ({' '.join(cmd)}):\n{tail}")
                time.sleep(0.1)
            yield Server(endpoint, psutil.Process(proc.pid))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def upload(local: Path, server: Server, prefix: str) -> dict:
    """Upload the dataset directory ``local`` to ``s3://BUCKET/prefix``; its URL, bytes, time."""
    from rrweb_dali.store import Store
    from rrweb_dali.store.upload import upload_dataset

    store = Store(f"s3://{BUCKET}/{prefix}", server.storage_options)
    if not store.fs.exists(BUCKET):
        store.fs.mkdir(BUCKET)
    t0 = time.perf_counter()
    nbytes = upload_dataset(local, store)
    return {"url": store.url, "bytes": nbytes, "seconds": time.perf_counter() - t0}


def client_ceiling(url: str, server: Server, threads: int) -> dict:
    """Every token object read whole by the loader's client (s3fs ``cat_file``: a HEAD and a GET
    each, as the loader's downloads make) in ``threads`` threads; no loader, no cache, no hashing:
    about the most a first epoch can download on this machine and server."""
    from rrweb_dali.store import Store

    store = Store(url, server.storage_options)
    keys = [k for k in store.list("shards") if k.endswith(".bin")]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        nbytes = sum(pool.map(lambda k: len(store.read_bytes(k)), keys))
    seconds = time.perf_counter() - t0
    return {"objects": len(keys), "bytes": nbytes, "mb_per_s": nbytes / seconds / 1e6}


def warm_page_cache(local: Path) -> None:
    for path in sorted(local.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                while fh.read(8 << 20):
                    pass


# ---- measuring -------------------------------------------------------------------------------
def run_epoch(loader, server: Server) -> dict:
    """One whole pass of ``loader``: wall and CPU seconds (this process's, the server's), rows,
    tokens, and for a store loader what its cache counters moved by during the pass."""
    before = loader.cache_stats()
    epoch = loader.epoch
    rows = tokens = 0
    first = None
    cpu0, server0 = time.process_time(), server.cpu_s()
    start = time.perf_counter()
    for batch in loader:
        lengths = batch["lengths"]
        rows += int(lengths.shape[0])
        tokens += int(lengths.sum())
        if first is None:
            first = time.perf_counter() - start
    seconds = time.perf_counter() - start
    out = {
        "epoch": epoch,
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu0,
        "server_cpu_s": server.cpu_s() - server0,
        "rows": rows,
        "tokens": tokens,
        "first_batch_s": first,
        "samples_per_s": rows / seconds,
        "tokens_per_s": tokens / seconds,
        "load_avg": os.getloadavg()[0],
    }
    after = loader.cache_stats()
    if after is not None and after.get("kind") == "store":
        out["store"] = {k: after[k] - (before or {}).get(k, 0) for k in _STORE_TOTALS}
        ep = after["epochs"].get(epoch, {})
        out["store"].update(hits=ep.get("hits", 0), misses=ep.get("misses", 0))
    return out


def one_repeat(make_loader, url: str, server: Server, local_dir: Path, args, options) -> dict:
    """New loaders over ``local_dir`` and ``url``, their epochs taken in turns."""
    local_epochs, store_epochs = [], []
    ceiling = client_ceiling(url, server, args.fetch_threads)
    t0 = time.perf_counter()
    local = make_loader(str(local_dir), **options)
    local_open_s = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory(prefix="rrweb-dali-bench-cache-") as cache:
            local_epochs.append(run_epoch(local, server))
            t0 = time.perf_counter()
            store = make_loader(
                url,
                storage_options=server.storage_options,
                cache_dir=cache,
                fetch_ahead=args.fetch_ahead,
                fetch_threads=args.fetch_threads,
                **options,
            )
            open_s = time.perf_counter() - t0
            try:
                store_epochs.append(run_epoch(store, server))
                for _ in range(1, args.epochs):
                    local_epochs.append(run_epoch(local, server))
                    store_epochs.append(run_epoch(store, server))
            finally:
                store.close()
    finally:
        local.close()
    for a, b in zip(local_epochs, store_epochs, strict=True):
        if (a["rows"], a["tokens"]) != (b["rows"], b["tokens"]):  # never compare unlike work
            raise SystemExit(
                f"epoch {a['epoch']}: the local loader gave {a['rows']} rows / {a['tokens']} "
                f"tokens, the store loader {b['rows']} / {b['tokens']}: the datasets differ"
            )
    return {
        "local": local_epochs,
        "store": store_epochs,
        "open_s": {"local": local_open_s, "store": open_s},
        "ceiling": ceiling,
    }


def run(args: argparse.Namespace, data) -> dict:
    from rrweb_dali.loader import make_loader

    options = dict(
        batch_size=args.batch_size,
        device=args.device,
        seed=0,
        max_length=args.max_tokens,
        shuffle=args.shuffle,
        shard_window=args.shard_window,
    )
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # botocore wants one
    repeats = []
    with s3_server() as server:
        _note(f"S3 server at {server.endpoint}; uploading {data.path} ...")
        up = upload(data.path, server, prefix=data.name)
        warm_page_cache(data.path)
        for r in range(args.repeats):
            rep = one_repeat(make_loader, up["url"], server, data.path, args, options)
            repeats.append(rep)
            _note(
                f"  repeat {r + 1}/{args.repeats}, samples/s of epochs 0..: local "
                + ", ".join(f"{e['samples_per_s']:,.0f}" for e in rep["local"])
                + " | store "
                + ", ".join(f"{e['samples_per_s']:,.0f}" for e in rep["store"])
            )
    settings = {
        **options,
        "fetch_ahead": args.fetch_ahead,
        "fetch_threads": args.fetch_threads,
        "repeats": args.repeats,
        "epochs": args.epochs,
    }
    return {
        "machine": machine(),
        "load_avg_end": os.getloadavg(),
        "dataset": {"name": data.name, "origin": data.origin, "path": str(data.path), **data.stats},
        "settings": settings,
        "upload": up,
        "repeats": repeats,
        "summary": summarize(repeats),
    }


# ---- summary and report ----------------------------------------------------------------------
def _spread(values: list[float]) -> dict:
    med = statistics.median(values)
    return {"best": max(values), "median": med, "worst": min(values), "all": values}


def _med(values) -> float:
    return statistics.median(list(values))


def summarize(repeats: list[dict]) -> dict:
    """Samples/s of each kind of epoch; paired ratios against the goals; CPU per sample; the
    store's counters of the first and the cached epochs."""
    kinds = {
        "local first": [r["local"][0] for r in repeats],
        "local": [e for r in repeats for e in r["local"][1:]],
        "store first": [r["store"][0] for r in repeats],
        "store cached": [e for r in repeats for e in r["store"][1:]],
    }
    kinds = {k: v for k, v in kinds.items() if v}
    out: dict = {
        "samples_per_s": {k: _spread([e["samples_per_s"] for e in v]) for k, v in kinds.items()},
        "tokens_per_s": {k: _med(e["tokens_per_s"] for e in v) for k, v in kinds.items()},
        "cpu_ms_per_1k_samples": {
            k: _med(1e6 * e["cpu_s"] / e["rows"] for e in v) for k, v in kinds.items()
        },
        "server_cpu_s": {k: _med(e["server_cpu_s"] for e in v) for k, v in kinds.items()},
    }
    cached, first, first_vs_first = [], [], []
    for r in repeats:
        loc, sto = r["local"], r["store"]
        pairs = zip(loc[1:], sto[1:], strict=True)
        cached += [s["samples_per_s"] / x["samples_per_s"] for x, s in pairs]
        ref = _med(e["samples_per_s"] for e in (loc[1:] or loc[:1]))
        first.append(sto[0]["samples_per_s"] / ref)
        first_vs_first.append(sto[0]["samples_per_s"] / loc[0]["samples_per_s"])
    out["ratios"] = {}
    for name, values, goal in (("cached", cached, CACHED_GOAL), ("first", first, FIRST_GOAL)):
        if values:
            sp = _spread(values)
            out["ratios"][name] = {**sp, "goal": goal, "goal_met": sp["median"] >= goal}
    out["first_vs_local_first"] = _spread(first_vs_first)
    first_epochs = kinds["store first"]
    st = [e["store"] for e in first_epochs]
    out["first_epoch"] = {
        "download_bytes": _med(s["download_bytes"] for s in st),
        "downloads": _med(s["downloads"] for s in st),
        "mb_per_s_over_epoch": _med(
            s["download_bytes"] / e["seconds"] / 1e6 for s, e in zip(st, first_epochs, strict=True)
        ),
        "mb_per_s_per_download": _med(
            s["download_bytes"] / s["download_s"] / 1e6 if s["download_s"] else 0.0 for s in st
        ),
        "wait_s": _med(s["wait_s"] for s in st),
        "seconds": _med(e["seconds"] for e in first_epochs),
        "first_batch_s": _med(e["first_batch_s"] or 0.0 for e in first_epochs),
        "open_s": _med(r["open_s"]["store"] for r in repeats),
        "local_open_s": _med(r["open_s"]["local"] for r in repeats),
        "hits": _med(s["hits"] for s in st),
        "misses": _med(s["misses"] for s in st),
        "ceiling_mb_per_s": _med(r["ceiling"]["mb_per_s"] for r in repeats),
    }
    if "store cached" in kinds:
        cs = [e["store"] for e in kinds["store cached"]]
        keys = ("hits", "misses", "downloads", "download_bytes")
        out["cached_epochs"] = {"epochs": len(cs), **{k: sum(s[k] for s in cs) for k in keys}}
    return out


LABELS = {
    "local first": "local, epoch 0",
    "local": "local, epochs 1+",
    "store first": "store, first (cold)",
    "store cached": "store, cached (1+)",
}


def print_report(report: dict) -> None:
    m, d, s, sm = report["machine"], report["dataset"], report["settings"], report["summary"]
    up = report["upload"]
    print(
        f"\n{m['date']}  {m['platform']}  {m['processor']}, {m['usable_cpus']} usable CPUs, "
        f"{m['memory_gb']} GB, Python {m['python']}, device {s['device']}; load average "
        f"{m['load_avg_at_start'][0]:.2f} at start, {report['load_avg_end'][0]:.2f} at end\n"
        f"dataset: {d['origin']}\n  {d['sequences']:,} sequences, {d['tokens'] / 1e6:.1f}M "
        f"tokens, {d['shards']} shards, {up['bytes'] / 1e6:.1f} MB uploaded in "
        f"{up['seconds']:.1f} s to moto's S3 server (its own process, loopback)\n"
        f"loaders: batch_size {s['batch_size']}, max_length {s['max_length']}, shuffle "
        f"{s['shuffle']}, shard_window {s['shard_window']}, seed 0; store: fetch_ahead {s['fetch_ahead']}, fetch_threads "
        f"{s['fetch_threads']}, cache_bytes default; {s['repeats']} repeats x {s['epochs']} epochs"
    )
    head = (
        f"{'epochs':20s} {'n':>3s} {'samples/s best':>15s} {'median':>9s} {'Mtok/s':>7s} "
        f"{'CPU ms/1k':>9s} {'server CPU s':>12s}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for name, v in sm["samples_per_s"].items():
        print(
            f"{LABELS[name]:20s} {len(v['all']):3d} {v['best']:15,.0f} {v['median']:9,.0f} "
            f"{sm['tokens_per_s'][name] / 1e6:7.1f} {sm['cpu_ms_per_1k_samples'][name]:9.1f} "
            f"{sm['server_cpu_s'][name]:12.2f}"
        )
    print("(medians but 'best'; CPU ms/1k: this process's CPU time per 1000 samples)")
    print("\nratios, each store epoch over the local epochs of its repeat (median [worst, best]):")
    for name, r in sm["ratios"].items():
        verdict = "met" if r["goal_met"] else "NOT met"
        print(
            f"  {name:6s} / local = {r['median']:.3f} [{r['worst']:.3f}, {r['best']:.3f}]   "
            f"goal >= {r['goal']:.3f}: {verdict}"
        )
    ff = sm["first_vs_local_first"]["median"]
    print(f"  (first / local epoch 0 = {ff:.3f}: both a new loader's first epoch)")
    f = sm["first_epoch"]
    print(
        f"\nfirst epoch (medians): {f['download_bytes'] / 1e6:.1f} MB in {f['downloads']:.0f} "
        f"downloads, {f['mb_per_s_over_epoch']:.0f} MB/s over the epoch's {f['seconds']:.2f} s, "
        f"{f['mb_per_s_per_download']:.0f} MB/s per download (its bytes / its own time, "
        f"{s['fetch_threads']} at a time);\n  batches waited {f['wait_s']:.2f} s for shards, the "
        f"first one came after {f['first_batch_s']:.2f} s; {f['hits']:.0f} hits, "
        f"{f['misses']:.0f} misses; make_loader (manifest, indexes, pipeline) took "
        f"{f['open_s']:.2f} s before it (local: {f['local_open_s']:.2f} s)\n  client ceiling: s3fs alone reads the same "
        f"objects at {f['ceiling_mb_per_s']:.0f} MB/s ({s['fetch_threads']} threads)"
    )
    if "cached_epochs" in sm:
        ce = sm["cached_epochs"]
        print(
            f"cached epochs ({ce['epochs']}): {ce['hits']} hits, {ce['misses']} misses, "
            f"{ce['downloads']} downloads ({ce['download_bytes']:,} bytes)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="loader device (default cpu)")
    ap.add_argument("--repeats", type=int, default=5, help="new loaders each (default 5)")
    ap.add_argument("--epochs", type=int, default=3, help="per loader and repeat (default 3)")
    ap.add_argument("--batch-size", type=int, default=64, help="default 64")
    ap.add_argument("--fetch-ahead", type=int, default=4, help="as make_loader's (default 4)")
    ap.add_argument("--fetch-threads", type=int, default=4, help="as make_loader's (default 4)")
    ap.add_argument(
        "--no-shuffle",
        dest="shuffle",
        action="store_false",
        help="read in shard order (fetch-ahead at work; a shuffled batch touches most shards)",
    )
    ap.add_argument(
        "--shard-window",
        type=int,
        default=None,
        metavar="K",
        help="shuffle within windows of K shards, both loaders (default: a global shuffle)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    add_data_args(ap)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.epochs < 1:
        ap.error("--repeats and --epochs must be at least 1")
    if args.real is not None:
        ap.error("--real is not benched here; give a preprocessed dataset with --shards DIR")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = bench_datasets(args)[0]
    report = run(args, data)
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
