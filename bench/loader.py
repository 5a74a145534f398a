"""Bench: the DALI loader against the torch DataLoaders a user would otherwise write, same shards.

Measured side by side in one run, at each batch size (default 64 and 256), for ``--seconds`` each
after a short warm-up (pipeline build, worker start-up), epochs chained:

* ``dali padded`` / ``dali bucketing`` / ``dali packing``: ``make_loader`` (packing rows of
  ``--max-tokens``; its "samples" are packed rows, so compare it on tokens/s).
* ``torch DataLoader``: per-sample ``__getitem__`` (an int64 tensor from the shard memmap),
  ``pad_sequence`` collate with an attention mask, ``pin_memory`` on CUDA, ``.to(device,
  non_blocking=True)``, at 0, 1, 2, ... workers up to the CPU count (powers of two past 4); the best
  worker count is the baseline.
* ``batched DataLoader``: a sampler of index lists and one ``__getitem__`` per batch that gathers
  the memmap views and pads them with numpy (the strong hand-written baseline), same worker sweep.

Then the share of a training loop's time spent blocked in ``next(loader)`` (the bench's own
counting of rows and tokens happens after it, for every loader alike) when each step takes a
fixed time (``--steps-ms``, default 2 and 8 ms), for the DALI loader and the best of each
DataLoader. The step: on CUDA, ``torch.mm`` of 2048x2048 fp32 calibrated to that time plus a
``cuda.synchronize()`` (as a ``loss.item()`` would); on the CPU, a calibrated ``time.sleep``
(a GPU step leaves the host idle; a busy loop would steal the 2 cores from the loaders).

Every variant runs in its own subprocess: memory is isolated, and a DataLoader's forked workers
never share a process with a DALI pipeline (forking one can hang; see the notes on DALI). Goals:
on a CPU-only machine ``dali padded`` >= 3x the best per-sample DataLoader; on a GPU >= 5x and
< 1% wait. On the CPU torch runs one intra-op thread (``--torch-threads``): with its default
threads ``pad_sequence`` ran 3-5x slower on the busy 2-core dev machine, which would flatter us.

    python bench/loader.py [--device cpu|cuda] [--seconds S] [--batch-sizes 64,256]
                           [--shards DIR | --synth N] [--real] [--runs DIR] [--json PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, where a sibling may shadow a module; import from
# the repository root instead (bench._data is then a namespace-package import).
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rrweb_dali.external_source.reader import ShardReader  # noqa: E402

from bench._data import add_data_args, bench_datasets  # noqa: E402
from rrweb_dali.profiling import RunWriter, ThroughputMeter  # noqa: E402
from rrweb_dali.profiling.system import cpu_count, environment_meta, library_versions  # noqa: E402

DALI_VARIANTS = {
    "dali padded": {},
    "dali bucketing": {"bucketing": True},
    "dali packing": {"packing": None},  # None: --max-tokens
}
TORCH_VARIANTS = {"dataloader": "torch DataLoader", "batched": "batched DataLoader"}
GOALS = {"cpu": {"speedup": 3.0, "wait": None}, "cuda": {"speedup": 5.0, "wait": 0.01}}


# ---- the baselines (module level, so a DataLoader started with spawn can pickle them) ---------
class SessionDataset(torch.utils.data.Dataset):
    """One session per ``__getitem__``: what most training scripts do."""

    def __init__(self, root: str):
        self.root, self.reader, self.n = root, None, len(ShardReader(root))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if self.reader is None:  # opened in each worker: memory maps are not shared by pickling
            self.reader = ShardReader(self.root)
        return i, torch.from_numpy(self.reader[i].astype(np.int64))


def pad_collate(items) -> dict[str, torch.Tensor]:
    seqs = [s for _, s in items]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int32)
    ids = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    index = torch.tensor([i for i, _ in items], dtype=torch.int64)
    return {"input_ids": ids, "attention_mask": mask, "lengths": lengths, "index": index}


class BatchDataset(SessionDataset):
    """One whole batch per ``__getitem__`` (the sampler yields index lists): memmap views gathered
    and padded with numpy, like the DALI loader's CPU padding, but in DataLoader workers."""

    def __getitem__(self, ids):
        if self.reader is None:
            self.reader = ShardReader(self.root)
        ids = np.asarray(ids, dtype=np.int64)
        lengths = self.reader.lengths[ids]
        views = self.reader.views(ids, np.zeros_like(ids), lengths)
        width = max(8, -(-int(lengths.max()) // 8) * 8)
        out = np.zeros((ids.size, width), dtype=np.int64)
        mask = np.zeros((ids.size, width), dtype=np.int64)
        for b, v in enumerate(views):
            out[b, : v.size] = v
            mask[b, : v.size] = 1
        return {
            "input_ids": torch.from_numpy(out),
            "attention_mask": torch.from_numpy(mask),
            "lengths": torch.from_numpy(lengths.astype(np.int32)),
            "index": torch.from_numpy(ids),
        }


def torch_loader(kind: str, root: str, bs: int, workers: int, device: str, seed: int):
    """A DataLoader of ``kind`` ('dataloader' or 'batched'). This process has no DALI pipeline,
    so the platform's default start method (fork on Linux) is safe for its workers."""
    common = dict(
        num_workers=workers,
        pin_memory=device.startswith("cuda"),
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    if "nvidia.dali" in sys.modules:  # never fork a process that may hold DALI state
        common["multiprocessing_context"] = "spawn" if workers else None
    if kind == "dataloader":
        ds = SessionDataset(root)
        return torch.utils.data.DataLoader(
            ds, batch_size=bs, shuffle=True, collate_fn=pad_collate, **common
        )
    ds = BatchDataset(root)
    gen = torch.Generator().manual_seed(seed)
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(ds, generator=gen), bs, drop_last=False
    )
    return torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None, **common)


# ---- one measurement ------------------------------------------------------------------------
def torch_batches(dl, device: str):
    """Endless ``(device batch, count)``: ``count()`` gives ``(rows, tokens, slots), stages``,
    read on the host after the timed ``next()`` (the bench's bookkeeping is not loader time)."""
    while True:
        for cpu in dl:
            ids = cpu["input_ids"]
            batch = {k: v.to(device, non_blocking=True) for k, v in cpu.items()}
            yield (
                batch,
                lambda ids=ids, lengths=cpu["lengths"]: (
                    (ids.shape[0], int(lengths.sum()), ids.numel()),
                    None,
                ),
            )


def dali_batches(loader):
    """Endless ``(batch, count)``; the counts come from the loader's host-side counters, so no
    device tensor is read (that would wait for the GPU), after the timed ``next()``."""
    from rrweb_dali.profiling.recorder import loader_stages

    prev = [loader.stats()]

    def count():
        s = loader.stats()
        counts = tuple(s[k] - prev[0][k] for k in ("rows", "tokens", "slots"))
        prev[0] = s
        return counts, loader_stages(s)

    while True:
        for batch in loader:
            yield batch, count


def make_step(step_ms: float, device: str):
    """``(step function, description)``: a stand-in for a training step of ``step_ms``."""
    target = step_ms / 1000.0
    if device.startswith("cuda"):
        n = 2048
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        out = torch.empty_like(a)

        def mm(k: int) -> None:
            for _ in range(k):
                torch.mm(a, b, out=out)
            torch.cuda.synchronize()

        mm(10)
        t0 = time.perf_counter()
        mm(50)
        k = max(1, round(target / ((time.perf_counter() - t0) / 50)))
        return (lambda: mm(k)), f"{k} x torch.mm {n}x{n} fp32 + cuda.synchronize()"
    t0 = time.perf_counter()
    for _ in range(20):
        time.sleep(target)
    overshoot = (time.perf_counter() - t0) / 20 - target
    request = max(0.0, target - overshoot)
    return (lambda: time.sleep(request)), "time.sleep (calibrated; the host idles in a GPU step)"


def measure(batches, seconds: float, device: str, step=None, meter=None) -> dict:
    """Iterate ``batches`` for a warm-up, then ``seconds``; rates, wait share, step time."""
    clock = time.perf_counter
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    warmup_s = min(1.0, 0.2 * seconds)
    totals = dict.fromkeys(("batches", "rows", "tokens", "slots", "wait_s", "step_s"), 0.0)
    start = clock()
    measuring, n, t_begin = False, 0, start
    while True:
        t0 = clock()
        _batch, count = next(batches)
        t1 = clock()
        counts, stages = count()  # the bench's bookkeeping: neither wait nor step
        t_step = clock()
        if step is not None:
            step()
        t2 = clock()
        n += 1
        if meter is not None:
            meter.loop_wait_s += t1 - t0
            meter.batch(*counts, stages=stages)
        if measuring:
            totals["batches"] += 1
            for key, value in zip(("rows", "tokens", "slots"), counts, strict=True):
                totals[key] += value
            totals["wait_s"] += t1 - t0
            totals["step_s"] += t2 - t_step
            if t2 - t_begin >= seconds:
                break
        elif n >= 3 and t2 - start >= warmup_s:
            sync()
            measuring, t_begin = True, clock()
    sync()
    elapsed = clock() - t_begin
    return {
        "warmup_s": t_begin - start,
        "seconds": elapsed,
        **{k: int(v) for k, v in totals.items() if k not in ("wait_s", "step_s")},
        "samples_per_s": totals["rows"] / elapsed,
        "tokens_per_s": totals["tokens"] / elapsed,
        "padding_efficiency": totals["tokens"] / max(totals["slots"], 1),
        "wait_share": totals["wait_s"] / elapsed,
        "step_ms_actual": 1e3 * totals["step_s"] / max(totals["batches"], 1) if step else None,
    }


# ---- child process: one variant, every batch size (and step) ----------------------------------
def run_variant(job: dict) -> list[dict]:
    device, root = job["device"], job["shards"]
    if job["torch_threads"]:
        torch.set_num_threads(job["torch_threads"])
    results = []
    for bs in job["batch_sizes"]:
        for step_ms in job["steps_ms"] or [None]:
            step, step_desc = make_step(step_ms, device) if step_ms else (None, None)
            label = f"{job['dataset']}-{job['variant']}-bs{bs}" + (
                f"-step{step_ms:g}ms" if step_ms else ""
            )
            meter = None
            if job["runs"]:
                meta = {"kind": "bench", "bench": "loader", **environment_meta(), "job": job}
                meta.update(batch_size=bs, step_ms=step_ms, step=step_desc)
                gpu = 0 if device.startswith("cuda") else None
                meter = ThroughputMeter(RunWriter(job["runs"], label, meta), gpu_device=gpu)
            load = os.getloadavg()[0]
            if job["family"] == "dali":
                from rrweb_dali.loader import make_loader

                loader = make_loader(
                    root, batch_size=bs, device=device, seed=job["seed"], **job["options"]
                )
                row = measure(dali_batches(loader), job["seconds"], device, step, meter)
                loader.close()
            else:
                dl = torch_loader(job["family"], root, bs, job["workers"], device, job["seed"])
                row = measure(torch_batches(dl, device), job["seconds"], device, step, meter)
                del dl  # shuts persistent workers down before the next measurement
            if meter is not None:
                meter.finish()
                row["run_dir"] = str(meter.writer.path)
            row.update(variant=job["variant"], family=job["family"], workers=job["workers"])
            row.update(bs=bs, step_ms=step_ms, step=step_desc, load_avg=load)
            results.append(row)
    return results


def spawn_variant(job: dict) -> list[dict]:
    """Run ``job`` in a fresh interpreter; a failure or hang becomes an error row."""
    measurements = len(job["batch_sizes"]) * len(job["steps_ms"] or [None])
    timeout = 120 + measurements * (job["seconds"] + 60)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--job", json.dumps(job), "--job-out", str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if proc.returncode == 0 and out.is_file():
                return json.loads(out.read_text())
            error = f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"
        except subprocess.TimeoutExpired:
            error = f"no result after {timeout:.0f} s (killed)"
    print(f"  {job['variant']} FAILED: {error}", file=sys.stderr)
    return [{"variant": job["variant"], "family": job["family"], "error": error}]


# ---- parent: plan, run, report --------------------------------------------------------------
def worker_counts(cpus: int) -> list[int]:
    if cpus <= 4:
        return list(range(cpus + 1))
    counts = [0, 1, 2, 4]
    while counts[-1] * 2 < cpus:
        counts.append(counts[-1] * 2)
    return [*counts, cpus]


def machine_info(device: str) -> dict:
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    versions = library_versions()
    dali = {k: v for k, v in versions.items() if k.startswith("nvidia-dali")}
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dali": ", ".join(f"{k} {v}" for k, v in dali.items()) or None,
        "numpy": np.__version__,
        "load_avg_start": os.getloadavg(),
    }


def name_of(row: dict) -> str:
    if row["family"] == "dali":
        return row["variant"]
    return f"{TORCH_VARIANTS[row['family']]} w={row['workers']}"


def bench_dataset(data, args, device: str, workers: list[int]) -> dict:
    base = dict(
        dataset=data.name,
        shards=str(data.path),
        device=device,
        seconds=args.seconds,
        seed=0,
        runs=str(args.runs) if args.runs else None,
        torch_threads=args.torch_threads,
    )
    jobs = []
    for variant, options in DALI_VARIANTS.items():
        if variant.split()[1] in args.variants:
            opts = {k: (v or args.max_tokens) for k, v in options.items()}
            jobs.append(dict(base, variant=variant, family="dali", workers=None, options=opts))
    for family in TORCH_VARIANTS:
        if family in args.variants:
            for w in workers:
                jobs.append(dict(base, variant=f"{family} w={w}", family=family, workers=w))
    rows = []
    for job in jobs:
        print(f"  {data.name}: {job['variant']} ...", file=sys.stderr, flush=True)
        rows += spawn_variant(dict(job, batch_sizes=args.batch_sizes, steps_ms=None))
    ok = [r for r in rows if "error" not in r]
    best: dict[str, dict[int, dict]] = {}  # family -> bs -> its fastest row (tokens/s)
    for r in ok:
        if r["family"] != "dali":
            cur = best.setdefault(r["family"], {}).get(r["bs"])
            if cur is None or r["tokens_per_s"] > cur["tokens_per_s"]:
                best[r["family"]][r["bs"]] = r
    # Wait share: the DALI loader and the best worker count of each DataLoader, per batch size.
    # One subprocess per variant, with the batch sizes at which it is its family's best.
    wait_bs: dict[str, list[int]] = {}
    for bs in args.wait_bs:
        wait_bs.setdefault("dali padded", []).append(bs)
        for family in TORCH_VARIANTS:
            if bs in best.get(family, {}):
                wait_bs.setdefault(best[family][bs]["variant"], []).append(bs)
    waits = []
    for job in jobs:
        if job["variant"] in wait_bs:
            sizes = wait_bs[job["variant"]]
            print(f"  {data.name}: wait share, {job['variant']} bs {sizes} ...", file=sys.stderr)
            waits += spawn_variant(dict(job, batch_sizes=sizes, steps_ms=args.steps_ms))
    return {
        "name": data.name,
        "origin": data.origin,
        "path": str(data.path),
        "stats": data.stats,
        "throughput": rows,
        "best": {f: {str(bs): name_of(r) for bs, r in v.items()} for f, v in best.items() if v},
        "wait": waits,
        "ratios": ratios(ok, best, waits, device),
    }


def ratios(rows: list[dict], best: dict, waits: list[dict], device: str) -> dict:
    """Per batch size: each DALI variant's tokens/s over the best per-sample DataLoader's (and
    over the best of any DataLoader), against the goals."""
    goal = GOALS["cuda" if device.startswith("cuda") else "cpu"]
    out = {}
    for r in rows:
        if r["family"] != "dali":
            continue
        ref = best.get("dataloader", {}).get(r["bs"])
        refs = [v[r["bs"]] for f, v in best.items() if r["bs"] in v]
        top = max(refs, key=lambda x: x["tokens_per_s"]) if refs else None
        entry = {
            "x_dataloader": r["tokens_per_s"] / ref["tokens_per_s"] if ref else None,
            "x_best_any_dataloader": r["tokens_per_s"] / top["tokens_per_s"] if top else None,
            "best_any": name_of(top) if top else None,
            "speedup_goal": goal["speedup"],
        }
        if r["variant"] == "dali padded":
            entry["speedup_goal_met"] = (
                entry["x_dataloader"] >= goal["speedup"] if ref is not None else None
            )
            for w in waits:
                if w.get("family") == "dali" and w.get("bs") == r["bs"]:
                    entry[f"wait_share_step{w['step_ms']:g}ms"] = w["wait_share"]
                    if goal["wait"] is not None:
                        met = w["wait_share"] < goal["wait"]
                        entry[f"wait_goal_met_step{w['step_ms']:g}ms"] = met
        out.setdefault(str(r["bs"]), {})[r["variant"]] = entry
    return out


def print_report(info: dict, settings: dict, result: dict) -> None:
    s = result["stats"]
    print(
        f"\n== {result['name']}: {result['origin']}\n   {s.get('sequences', 0):,} sequences, "
        f"{s.get('tokens', 0) / 1e6:.1f}M tokens, {s.get('shards', 0)} shards, length "
        f"median {s.get('median_len', 0):.0f} / mean {s.get('mean_len', 0):.0f} / "
        f"p5 {s.get('p5_len', 0):.0f} / max {s.get('max_len', 0)}"
    )
    ok = [r for r in result["throughput"] if "error" not in r]
    best_tok: dict[int, float] = {}
    for r in ok:
        if r["family"] == "dataloader":
            best_tok[r["bs"]] = max(best_tok.get(r["bs"], 0.0), r["tokens_per_s"])
    head = (
        f"{'variant':24s} {'bs':>4s} {'samples/s':>10s} {'Mtok/s':>8s} {'pad eff':>7s} "
        f"{'load':>5s} {'x DataLoader':>12s}"
    )
    print(head + "\n" + "-" * len(head))
    for r in sorted(ok, key=lambda r: (r["bs"], r["family"] != "dali")):
        ref = best_tok.get(r["bs"])
        x = f"{r['tokens_per_s'] / ref:12.2f}" if ref else f"{'-':>12s}"
        print(
            f"{name_of(r):24s} {r['bs']:4d} {r['samples_per_s']:10,.0f} "
            f"{r['tokens_per_s'] / 1e6:8.2f} {r['padding_efficiency']:7.3f} {r['load_avg']:5.1f} {x}"
        )
    for r in result["throughput"]:
        if "error" in r:
            print(f"{r['variant']:24s} FAILED: {r['error'][:200]}")
    print("(x DataLoader: tokens/s over the best per-sample torch DataLoader at that batch size)")
    if result["wait"]:
        steps = settings["steps_ms"]
        print(f"\nwait share = time blocked in next(loader) / loop time; step: {steps} ms of")
        print(f"  {next((w['step'] for w in result['wait'] if w.get('step')), '?')}")
        cells = {}
        for w in result["wait"]:
            if "error" not in w:
                cells.setdefault((name_of(w), w["bs"]), {})[w["step_ms"]] = w
        print(f"{'loader':24s} {'bs':>4s} " + " ".join(f"{f'{m:g} ms step':>20s}" for m in steps))
        for (name, bs), by_step in cells.items():
            parts = []
            for m in steps:
                w = by_step.get(m)
                parts.append(f"{w['wait_share']:6.1%} ({w['step_ms_actual']:.2f} ms)" if w else "-")
            print(f"{name:24s} {bs:4d} " + " ".join(f"{p:>20s}" for p in parts))
    goal = GOALS["cuda" if info["gpu"] else "cpu"]
    machine = "GPU machine" if info["gpu"] else "CPU-only machine"
    wait_goal = f" and < {goal['wait']:.0%} wait" if goal["wait"] is not None else ""
    print(f"\ngoals ({machine}): dali padded >= {goal['speedup']:g}x torch DataLoader{wait_goal}")
    for bs, variants in result["ratios"].items():
        for variant, e in variants.items():
            x = e["x_dataloader"]
            xa = e["x_best_any_dataloader"]
            line = f"  bs {bs:>4s} {variant:15s} {x:6.2f}x DataLoader" if x else f"  bs {bs}"
            if xa is not None:
                line += f", {xa:5.2f}x the best of all ({e['best_any']})"
            if "speedup_goal_met" in e and e["speedup_goal_met"] is not None:
                line += f"  speed goal {'met' if e['speedup_goal_met'] else 'NOT met'}"
            for k, v in e.items():
                if k.startswith("wait_goal_met"):
                    line += f"  wait {k.rsplit('_', 1)[1]} {'met' if v else 'NOT met'}"
            print(line)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    ap.add_argument("--batch-sizes", default="64,256", help="comma-separated (default 64,256)")
    ap.add_argument("--steps-ms", default="2,8", help="fixed step times for the wait share")
    ap.add_argument("--wait-batch-sizes", default=None, help="default: --batch-sizes")
    ap.add_argument("--workers", default=None, help="DataLoader worker counts, e.g. 0,1,2")
    ap.add_argument(
        "--variants",
        default="padded,bucketing,packing,dataloader,batched",
        help="which to run (default all: padded,bucketing,packing,dataloader,batched)",
    )
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch intra-op threads in every variant (default 1 with --device cpu, else torch's)",
    )
    ap.add_argument("--runs", type=Path, default=None, help="write one profile run per variant")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--job-out", help=argparse.SUPPRESS)
    add_data_args(ap)
    args = ap.parse_args(argv)
    args.batch_sizes = _ints(args.batch_sizes)
    args.wait_bs = _ints(args.wait_batch_sizes) if args.wait_batch_sizes else args.batch_sizes
    args.steps_ms = [float(x) for x in args.steps_ms.split(",") if x.strip()]
    args.variants = {v.strip() for v in args.variants.split(",")}
    if args.torch_threads is None and args.device == "cpu":
        args.torch_threads = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.job:  # child: one variant
        Path(args.job_out).write_text(json.dumps(run_variant(json.loads(args.job))))
        return 0
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no GPU; use --device cpu")
    info = machine_info(device)
    workers = _ints(args.workers) if args.workers else worker_counts(info["usable_cpus"] or 1)
    settings = {
        "device": device,
        "seconds": args.seconds,
        "batch_sizes": args.batch_sizes,
        "wait_batch_sizes": args.wait_bs,
        "steps_ms": args.steps_ms,
        "workers": workers,
        "variants": sorted(args.variants),
        "torch_threads": args.torch_threads,
        "max_tokens": args.max_tokens,
    }
    datasets = bench_datasets(args)
    started = time.perf_counter()
    results = [bench_dataset(d, args, device, workers) for d in datasets]
    info["load_avg_end"] = os.getloadavg()
    info["bench_seconds"] = time.perf_counter() - started
    print(
        f"\n{info['date']}  {info['platform']}  cpus={info['cpu_count']} (usable "
        f"{info['usable_cpus']})  GPU: {info['gpu'] or 'none'}  device={device}\n"
        f"python {info['python']}  torch {info['torch']} ({args.torch_threads or 'default'} "
        f"threads)  DALI {info['dali']}  numpy {info['numpy']}\n"
        f"load average {info['load_avg_start'][0]:.2f} at start, {info['load_avg_end'][0]:.2f} "
        f"at end; {args.seconds:g} s per measurement; DataLoader workers tried {workers}"
    )
    for r in results:
        print_report(info, settings, r)
    if args.json:
        report = {"machine": info, "settings": settings, "datasets": results}
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    failed = any("error" in r for d in results for r in d["throughput"] + d["wait"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
