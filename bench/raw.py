"""Bench: raw mode (``make_loader(raw=...)``: tokenizing in DALI workers, with the token cache)
against the approach it replaces and against the shard loader, epoch 1 (cold) and epoch 2 (warm).

Variants, each in its own subprocess (a process that has run DALI must not fork a DataLoader's
workers: it can hang, see shared/notes/dali.md), on each corpus (a synthetic one of ``--synth N``
sessions, written once into ``--data DIR``, and the real recorded corpus when present):

``single``      read_session + Tokenizer.encode of the files in one process: the single-core rate
``raw``         make_loader(raw=corpus, cache_dir=<empty>): epoch 1 tokenizes, epoch 2 is cached
``shards``      preprocess(--overflow truncate, same --max-tokens) then make_loader(shards)
``dataloader``  what raw mode replaces: a torch Dataset whose ``__getitem__`` reads and tokenizes
                the file (functools.lru_cache on it), DataLoader(num_workers=4), padded batches

Printed per corpus: samples/s of each epoch, time to the first batch, and the ratios beside their
goals: raw cold >= 0.8 x cores x the single-core rate; raw warm >= 1/2 of the shard loader's
warm epoch; raw >= 20x the replaced approach's cold epoch (warm raw epochs, which is what
training sees from epoch 2 on; cold against cold is printed too). Full size: ``--synth 31951``.

    python bench/raw.py [--synth N] [--data DIR] [--real DIR] [--batch-size B] [--max-tokens M]
                        [--device cpu|cuda] [--runs DIR] [--json PATH]
"""

# Heavy imports (torch, DALI) stay inside functions: DALI's spawned workers re-import this module,
# and a light module lets them start in a fraction of a second.
import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
_REPO = Path(_HERE).parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench._data import machine, synth_corpus  # noqa: E402

DEFAULT_REAL = _REPO.parent / "shared" / "corpus" / "recorded"
SCALING_GOAL = 0.8  # x cores x the single-core rate
WARM_GOAL = 0.5  # raw warm / shard loader warm ("within 2x")
REPLACED_GOAL = 20.0  # raw / replaced approach's cold epoch
DATALOADER_WORKERS = 4


# ---- variants (each runs in a subprocess) ---------------------------------------------------
def _files(corpus: str) -> list[str]:
    from rrweb_dali.external_source.raw import RawFiles

    return list(RawFiles.discover(corpus).paths)


def _meter(job: dict, label: str, extra: dict):
    if not job.get("runs"):
        return None
    from rrweb_dali.profiling import RunWriter, ThroughputMeter
    from rrweb_dali.profiling.system import environment_meta

    meta = {"kind": "bench", "bench": "raw", **environment_meta(), "job": job, **extra}
    writer = RunWriter(job["runs"], f"{label}-{job['corpus_name']}", meta)
    return ThroughputMeter(writer, interval_s=0.1)


def _cpu_seconds() -> float:
    """CPU time of this process and its descendants, live (DALI workers) and reaped (a
    DataLoader's workers of past epochs): unlike wall time, it holds on a busy machine."""
    import psutil

    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in psutil.Process().children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.Error:
            continue
        total += c.user + c.system
    return total


_COUNTED = ("hits", "misses", "evictions")


def _cache_counts(loader) -> dict | None:
    stats = loader.cache_stats() if hasattr(loader, "cache_stats") else None
    return None if stats is None else {k: stats[k] for k in _COUNTED}


def _since(base: dict | None, loader) -> dict | None:
    """The loader's cache counters since ``base`` (so each run shows its own epoch), and bytes."""
    stats = loader.cache_stats()
    if stats is None or base is None:
        return None
    return {**{k: stats[k] - base[k] for k in _COUNTED}, "bytes": stats["bytes"]}


def _epoch(loader, meter, dali: bool = False) -> dict:
    """Iterate one epoch; seconds from ``iter`` (worker start included) to the last batch, and
    the steady rate after the first batch (what a long epoch converges to)."""
    rows = tokens = first_rows = 0
    base = _cache_counts(loader) if dali else None
    cpu0 = _cpu_seconds()
    start = time.perf_counter()
    first = None
    iterable = meter.wrap(loader) if meter else loader
    for batch in iterable:
        n = int(batch["input_ids"].shape[0])
        t = int(batch["lengths"].sum())
        rows += n
        tokens += t
        if first is None:
            first, first_rows = time.perf_counter() - start, n
        if meter:
            extra = {}
            if dali:
                from rrweb_dali.profiling.recorder import loader_stages

                extra = {"stages": loader_stages(loader.stats()), "cache": _since(base, loader)}
            meter.batch(n, t, int(batch["input_ids"].numel()), **extra)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu0
    if meter:
        meter.finish(extra={"epoch_seconds": seconds, "cpu_seconds": cpu})
    after = seconds - (first or 0.0)
    steady = (rows - first_rows) / after if rows > first_rows and after > 0 else None
    return {
        "seconds": seconds,
        "rows": rows,
        "tokens": tokens,
        "first_batch_s": first,
        "steady_rows_per_s": steady,
        "cpu_seconds": cpu,
        "load_before": os.getloadavg()[0],
    }


def variant_single(job: dict) -> dict:
    from rrweb_dali.errors import SessionError
    from rrweb_dali.ingest import read_session
    from rrweb_dali.tokenizer import Tokenizer

    tok = Tokenizer()
    every = _files(job["corpus"])
    # A stride over the whole corpus: synthetic sessions come in runs of one site, which differ in
    # cost, so the first files alone would misstate the rate.
    files = every[:: max(1, len(every) // job["single_files"])][: job["single_files"]]
    cpu0 = _cpu_seconds()
    start = time.perf_counter()
    for path in files:
        with contextlib.suppress(SessionError):
            tok.encode(read_session(path))
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu0
    return {
        "files": len(files),
        "seconds": seconds,
        "files_per_s": len(files) / seconds,
        "cpu_s_per_file": cpu / len(files),
    }


def variant_raw(job: dict) -> dict:
    from rrweb_dali.loader import make_loader

    cache_dir = tempfile.mkdtemp(prefix="raw-cache-", dir=job["scratch"])
    t0 = time.perf_counter()
    loader = make_loader(
        raw=job["corpus"],
        batch_size=job["batch_size"],
        device=job["device"],
        seed=0,
        cache_dir=cache_dir,
        max_tokens=job["max_tokens"],
        py_workers=job["py_workers"],
    )
    make_s = time.perf_counter() - t0
    out = {"make_loader_s": make_s, "py_workers": loader.pipeline.py_workers, "epochs": []}
    try:
        for label in ("raw-cold", "raw-warm"):
            meter = _meter(job, label, {"variant": "raw"})
            out["epochs"].append(_epoch(loader, meter, dali=True))
        stats = loader.cache_stats()
        out["cache"] = {k: v for k, v in stats.items() if k != "epochs"}
        out["cache_epochs"] = stats["epochs"]
        out["cache_bytes_on_disk"] = sum(
            f.stat().st_size for f in Path(cache_dir).rglob("seg-*") if f.is_file()
        )
    finally:
        loader.close()
        shutil.rmtree(cache_dir, ignore_errors=True)
    return out


def variant_shards(job: dict) -> dict:
    from rrweb_dali.loader import make_loader
    from rrweb_dali.parallel import available_cpus
    from rrweb_dali.preprocess import PreprocessOptions, preprocess

    out_dir = Path(tempfile.mkdtemp(prefix="raw-shards-", dir=job["scratch"])) / "ds"
    options = PreprocessOptions(max_tokens=job["max_tokens"], overflow="truncate")
    t0 = time.perf_counter()
    preprocess([job["corpus"]], out_dir, options, workers=available_cpus())
    out = {"preprocess_s": time.perf_counter() - t0, "epochs": []}
    loader = make_loader(out_dir, batch_size=job["batch_size"], device=job["device"], seed=0)
    try:
        for label in ("shards-first", "shards-warm"):
            meter = _meter(job, label, {"variant": "shards"})
            out["epochs"].append(_epoch(loader, meter, dali=True))
    finally:
        loader.close()
        shutil.rmtree(out_dir.parent, ignore_errors=True)
    return out


class ReplacedDataset:
    """The approach raw mode replaces: read and tokenize in ``__getitem__``, an LRU on top."""

    def __init__(self, paths: list[str], max_tokens: int):
        import functools

        from rrweb_dali.tokenizer import Tokenizer

        self.paths, self.max_tokens, self.tok = paths, max_tokens, Tokenizer()
        self._cached = functools.lru_cache(maxsize=1024)(self._load)

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, i: int):
        import numpy as np
        import torch

        from rrweb_dali.errors import SessionError
        from rrweb_dali.ingest import read_session

        try:
            ids = self.tok.encode(read_session(self.paths[i]))[: self.max_tokens]
        except SessionError:
            ids = np.array([self.tok.BOS, self.tok.EOS], dtype=np.uint16)
        return torch.from_numpy(ids.astype(np.int64))

    def __getitem__(self, i: int):
        return self._cached(i)


def _collate(rows):
    import torch
    from torch.nn.utils.rnn import pad_sequence

    ids = pad_sequence(rows, batch_first=True)
    lengths = torch.tensor([r.numel() for r in rows], dtype=torch.int32)
    mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    return {"input_ids": ids, "attention_mask": mask.long(), "lengths": lengths}


def variant_dataloader(job: dict) -> dict:
    import torch
    from torch.utils.data import DataLoader

    dataset = ReplacedDataset(_files(job["corpus"]), job["max_tokens"])
    loader = DataLoader(
        dataset,
        batch_size=job["batch_size"],
        shuffle=True,
        num_workers=DATALOADER_WORKERS,
        collate_fn=_collate,
        generator=torch.Generator().manual_seed(0),
    )
    out = {"epochs": []}
    for label in ("dataloader-cold", "dataloader-warm"):
        out["epochs"].append(_epoch(loader, _meter(job, label, {"variant": "dataloader"})))
    return out


VARIANTS = {
    "single": variant_single,
    "raw": variant_raw,
    "shards": variant_shards,
    "dataloader": variant_dataloader,
}


# ---- driver ---------------------------------------------------------------------------------
def run_variant(name: str, job: dict) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".json", dir=job["scratch"]) as result:
        cmd = [sys.executable, __file__, "--variant", name, "--job", json.dumps(job)]
        cmd += ["--result", result.name]
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:
            return {"error": f"exit code {proc.returncode}"}
        return json.loads(Path(result.name).read_text())


def _rate(epoch: dict | None) -> float | None:
    if not epoch or not epoch.get("seconds"):
        return None
    return epoch["rows"] / epoch["seconds"]


def _cpu_ms(epoch: dict | None) -> float | None:
    if not epoch or not epoch.get("rows") or epoch.get("cpu_seconds") is None:
        return None
    return epoch["cpu_seconds"] / epoch["rows"] * 1e3


def _fmt(x: float | None, spec: str = ",.1f") -> str:
    return "-" if x is None else format(x, spec)


def _goal(name: str, value: float | None, goal: float, note: str = "") -> str:
    if value is None:
        return f"{name}: not measured"
    verdict = "met" if value >= goal else "NOT met"
    return f"{name}: {value:,.2f}x (goal >= {goal:,.2f}x: {verdict}){note}"


def report(name: str, files: int, mb: float, res: dict, cores: int) -> dict:
    print(f"\n{name}: {files:,} files, {mb:,.1f} MB on disk")
    singles = [r for r in (res["single"], res.get("single_again", {})) if r.get("files_per_s")]
    single = sum(r["files_per_s"] for r in singles) / len(singles) if singles else None
    header = (
        f"{'variant (samples/s)':<36} {'epoch 1 (cold)':>14} {'after 1st batch':>15} "
        f"{'epoch 2 (warm)':>14} {'1st batch s':>11} {'CPU ms/sample cold, warm':>25}"
    )
    print(header)
    print("-" * len(header))
    single_cpu = sum(r["cpu_s_per_file"] for r in singles) / len(singles) if singles else None
    single_ms = _fmt(None if single_cpu is None else single_cpu * 1e3, ".2f")
    print(
        f"{'single core read+tokenize':<36} {_fmt(single):>14} {'':>15} {'':>14} {'':>11} {single_ms:>25}"
    )
    rates = {}
    for key, label in (
        ("raw", f"raw (DALI, {res['raw'].get('py_workers', '?')} workers, cache)"),
        ("shards", "shards (preprocessed)"),
        ("dataloader", f"replaced: Dataset+lru, {DATALOADER_WORKERS} workers"),
    ):
        epochs = res[key].get("epochs") or [None, None]
        cold, warm = _rate(epochs[0]), _rate(epochs[1])
        steady = (epochs[0] or {}).get("steady_rows_per_s")
        rates[key] = (cold, warm, steady)
        first = (epochs[0] or {}).get("first_batch_s")
        cpu = " / ".join(_fmt(_cpu_ms(e), ".2f") for e in epochs)
        print(
            f"{label:<36} {_fmt(cold):>14} {_fmt(steady):>15} {_fmt(warm):>14} "
            f"{_fmt(first, '.2f'):>11} {cpu:>25}"
        )
        if "error" in res[key]:
            print(f"  {key} failed: {res[key]['error']}")
    spread = " / ".join(_fmt(r["files_per_s"]) for r in singles)
    print(f"(single core: the mean of a run before and one after the others: {spread})")
    if "preprocess_s" in res["shards"]:
        print(f"(preprocessing for the shard loader took {res['shards']['preprocess_s']:.1f} s)")
    raw_cold, raw_warm, raw_steady = rates["raw"]
    shard_warm = rates["shards"][1]
    dl_cold = rates["dataloader"][0]

    def ratio(a, b):
        return a / b if a is not None and b else None

    goals = {
        "cold_scaling": ratio(raw_cold, single),
        "cold_steady_scaling": ratio(raw_steady, single),
        "cold_scaling_goal": SCALING_GOAL * cores,
        "warm_vs_shards": ratio(raw_warm, shard_warm),
        "warm_vs_replaced_cold": ratio(raw_warm, dl_cold),
        "cold_vs_replaced_cold": ratio(raw_cold, dl_cold),
    }
    cores_note = f" ({SCALING_GOAL} x {cores} cores)"
    print(_goal("raw cold / single core", goals["cold_scaling"], SCALING_GOAL * cores, cores_note))
    print(
        _goal(
            "raw cold after the 1st batch / single core",
            goals["cold_steady_scaling"],
            SCALING_GOAL * cores,
            " (without the workers' start, which a long epoch amortises)",
        )
    )
    print(_goal("raw warm / shards warm", goals["warm_vs_shards"], WARM_GOAL, " (within 2x)"))
    print(_goal("raw warm / replaced cold", goals["warm_vs_replaced_cold"], REPLACED_GOAL))
    print(
        f"raw cold / replaced cold: {_fmt(goals['cold_vs_replaced_cold'], ',.2f')}x "
        "(both tokenize on the same cores with the same tokenizer)"
    )
    raw_epochs = res["raw"].get("epochs") or [None]
    raw_cpu = _cpu_ms(raw_epochs[0])
    if raw_cpu and single_cpu:
        print(
            f"CPU per sample, raw cold / single core: {raw_cpu / (single_cpu * 1e3):.2f} "
            "(1.00: tokenizing in DALI workers, caching and batching cost no extra CPU; unlike "
            "the wall-clock rates it holds on a busy machine)"
        )
    cache = res["raw"].get("cache")
    if cache:
        print(
            f"raw cache: epochs {res['raw'].get('cache_epochs')}, tokenize {cache['tokenize_s']:.1f} s "
            f"vs cached reads {cache['cached_read_s']:.2f} s (summed over workers), "
            f"{res['raw'].get('cache_bytes_on_disk', 0) / 1e6:,.1f} MB on disk, "
            f"bad files {cache['bad_files']}"
        )
    return {"results": res, "goals": goals}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--synth", type=int, default=2000, help="synthetic sessions (default 2000; 0: none)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=Path(".bench-data"))
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=65536)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--single-files", type=int, default=500, help="files for the 1-core rate")
    parser.add_argument(
        "--py-workers", type=int, default=None, help="raw mode's workers (default: usable CPUs)"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--runs", type=Path, default=None, help="write profile runs here")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.variant:  # a child: run one variant, write its result
        out = VARIANTS[args.variant](json.loads(args.job))
        Path(args.result).write_text(json.dumps(out, default=str))
        return 0

    import torch

    from rrweb_dali.parallel import available_cpus

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    info = machine()
    cores = available_cpus()
    print(f"{info['date']}  load averages {os.getloadavg()} (other work skews wall-clock rates)")
    print(
        f"{info['date']}  {info['platform']}  {info['processor']}  cpus={info['cpu_count']} "
        f"(usable {cores})  {info['memory_gb']} GB  python {info['python']}  "
        f"load {info['load_avg_at_start'][0]:.1f}  device {device}  batch {args.batch_size}  "
        f"max_tokens {args.max_tokens}"
    )
    args.data.mkdir(parents=True, exist_ok=True)
    corpora = []
    if args.synth > 0:
        corpora.append(
            (f"synthetic ({args.synth:,} sessions)", synth_corpus(args.data, args.synth, args.seed))
        )
    if args.real.is_dir():
        corpora.append((f"real ({args.real.name})", args.real))
    else:
        print(f"real corpus not found at {args.real}: skipped", file=sys.stderr)
    wanted = [v for v in args.variants.split(",") if v]
    results = {"machine": info, "device": device, "corpora": {}}
    scratch = tempfile.mkdtemp(prefix="bench-raw-", dir=args.data)
    try:
        for name, corpus in corpora:
            job = {
                "corpus": str(corpus),
                "corpus_name": "synth" if name.startswith("synth") else "real",
                "batch_size": args.batch_size,
                "max_tokens": args.max_tokens,
                "device": device,
                "single_files": args.single_files,
                "py_workers": args.py_workers,
                "runs": str(args.runs) if args.runs else None,
                "scratch": scratch,
            }
            res = {v: (run_variant(v, job) if v in wanted else {}) for v in VARIANTS}
            if "single" in wanted:  # again: this machine's speed drifts; use both
                res["single_again"] = run_variant("single", job)
            files = [
                p for p in Path(corpus).rglob("*") if p.is_file() and not p.name.startswith(".")
            ]
            mb = sum(p.stat().st_size for p in files) / 1e6
            results["corpora"][name] = report(name, len(files), mb, res, cores)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
