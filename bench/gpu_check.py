"""Correctness checks and timings of the DALI loader on a GPU machine (or ``--device cpu``).

Run from the repository root::

    python bench/gpu_check.py                 # device cuda, JSON to $OUT (or the temp dir)
    python bench/gpu_check.py --device cpu --quick

1. Writes a synthetic dataset (random uint16 sessions, lengths 1..``--max-len``) to a temp dir.
2. Checks, on the device: every row equals the shard tokens of its ``index`` with PAD=0 after it,
   masks/lengths/labels/position ids agree, each session once per epoch, ranks of a world of 3
   with equal batch counts, resume at the exact next batch, packing reassembles
   every session, bucketing pads less, int32, and that the device batches equal the CPU
   loader's batch for batch (the torch padding path against the numpy one).
3. Times the loader (padded at bs 64/256/1024, bucketing, packing) against a plain torch
   ``DataLoader`` (per-sample ``__getitem__`` + ``pad_sequence`` collate, then ``.to(device)``),
   plus a probe of the alternative design (one DALI sample per session, ``fn.pad`` in DALI).
4. Prints a short table last and writes everything as JSON to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where a sibling module may shadow
# a module; import from the repository root instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rrweb_dali.external_source.reader import ShardReader  # noqa: E402

from bench.loader import SessionDataset  # noqa: E402
from rrweb_dali.loader import make_loader  # noqa: E402
from rrweb_dali.shards.format import ShardWriter  # noqa: E402
from rrweb_dali.shards.manifest import Manifest, write_manifest  # noqa: E402


def write_dataset(root: Path, n: int, max_len: int, shards: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    infos = []
    for s in range(shards):
        w = ShardWriter(root / "shards", f"shard-{s:06d}")
        fid = w.add_file(f"synthetic-{s}.json")
        for length in rng.integers(1, max_len + 1, size=n // shards):
            w.add(rng.integers(0, 65536, size=int(length), dtype=np.uint16), fid)
        infos.append(w.close())
    write_manifest(root, Manifest(tokenizer={"name": "synthetic"}, shards=infos))
    return root


# ---- checks -------------------------------------------------------------------------------
def check_padded(batch: dict, reader: ShardReader, cap: int | None = None) -> None:
    ids, mask = batch["input_ids"].cpu(), batch["attention_mask"].cpu()
    lengths, index = batch["lengths"].cpu(), batch["index"].cpu()
    for row, i in enumerate(index.tolist()):
        want = np.asarray(reader[i], dtype=np.int64)[:cap]
        n = int(lengths[row])
        assert n == want.size, (row, n, want.size)
        assert np.array_equal(ids[row, :n].numpy(), want)
        assert not ids[row, n:].any()
        assert mask[row, :n].all() and not mask[row, n:].any()
        if "labels" in batch:
            lab = batch["labels"][row].cpu()
            assert (lab[n:] == -100).all() and torch.equal(lab[:n], ids[row, :n])


def run_checks(root: Path, device: str) -> dict:
    reader = ShardReader(root)
    n = len(reader)
    results = {}

    ld = make_loader(root, batch_size=64, device=device, seed=1, labels=True, position_ids=True)
    seen = []
    for b in ld:
        check_padded(b, reader)
        assert b["input_ids"].device.type == torch.device(device).type
        assert b["input_ids"].shape[1] % 8 == 0
        seen.append(b["index"].cpu())
    seen = torch.cat(seen)
    assert sorted(seen.tolist()) == list(range(n))  # world size 1: the last batch is short
    results["padded_rows_once_per_epoch"] = True

    cpu = make_loader(root, batch_size=64, device="cpu", seed=1, labels=True, position_ids=True)
    dev = make_loader(root, batch_size=64, device=device, seed=1, labels=True, position_ids=True)
    held = list(dev)  # every batch kept to the end: none may change after it was handed out
    _sync(device)
    for a, b in zip(cpu, held, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k].cpu()), k
    results["device_equals_cpu_padded"] = True

    cpu = make_loader(root, batch_size=16, device="cpu", seed=2, packing=512, labels=True)
    dev = make_loader(root, batch_size=16, device=device, seed=2, packing=512, labels=True)
    pieces: dict[int, list] = {}
    for a, b in zip(cpu, dev, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key].cpu()), key
        flat, doc = b["input_ids"].cpu().reshape(-1), b["document_ids"].cpu().reshape(-1)
        cu = b["cu_seqlens"].cpu().tolist()
        for s, i in enumerate(b["index"].cpu().tolist()):
            if i >= 0:
                pieces.setdefault(i, []).append(flat[cu[s] : cu[s + 1]].numpy())
                assert (doc[cu[s] : cu[s + 1]] == i).all()
    for i in range(n):
        got = np.concatenate(pieces.get(i, [np.zeros(0, np.int64)]))
        assert np.array_equal(got, reader[i]), i
    results["packing_reassembles_sessions_and_equals_cpu"] = True

    counts = []
    per_rank = []
    for r in range(3):
        ldr = make_loader(root, batch_size=32, device=device, seed=3, rank=r, world_size=3)
        idx = [b["index"].cpu() for b in ldr]
        counts.append(len(idx))
        per_rank.append(set(torch.cat(idx).tolist()))
    assert len(set(counts)) == 1 and set().union(*per_rank) == set(range(n))
    results["world3_equal_batch_counts"] = counts[0]

    full = [b["index"].cpu() for b in make_loader(root, batch_size=32, device=device, seed=4)]
    ld = make_loader(root, batch_size=32, device=device, seed=4)
    it = iter(ld)
    for _ in range(5):
        next(it)
    state = ld.state_dict()
    resumed = make_loader(root, batch_size=32, device=device, seed=4)
    resumed.load_state_dict(state)
    rest = [b["index"].cpu() for b in resumed]
    assert all(torch.equal(a, b) for a, b in zip(full[5:], rest, strict=True))
    results["resume_exact"] = True

    plain = make_loader(root, batch_size=64, device=device, seed=5)
    bucket = make_loader(root, batch_size=64, device=device, seed=5, bucketing=True)
    for _ in plain:
        pass
    for _ in bucket:
        pass
    e0, e1 = plain.stats()["padding_efficiency"], bucket.stats()["padding_efficiency"]
    assert e1 > e0
    results["padding_efficiency"] = {"plain": round(e0, 4), "bucketing": round(e1, 4)}

    b32 = next(
        iter(
            make_loader(root, batch_size=8, device=device, dtype="int32", pad_to=4096, labels=True)
        )
    )
    assert b32["input_ids"].dtype == torch.int32 and b32["input_ids"].shape == (8, 4096)
    assert b32["labels"].dtype == torch.int64  # cross-entropy's target type, on the device too
    results["int32_ids_int64_labels_pad_to"] = True
    return results


# ---- timings ------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_iterable(make_iter, batches: int, device: str, warmup: int = 3) -> float:
    """Rows per second over ``batches`` batches after ``warmup``, epochs chained as needed."""
    done, rows, t0 = 0, 0, None
    while done < batches + warmup:
        for b in make_iter():
            done += 1
            if done == warmup:
                _sync(device)
                t0 = time.perf_counter()
            elif done > warmup:
                rows += b["input_ids"].shape[0]
            if done >= batches + warmup:
                break
    _sync(device)
    return rows / (time.perf_counter() - t0)


def pad_collate(items):
    index = torch.tensor([i for i, _ in items], dtype=torch.int64)
    seqs = [s for _, s in items]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int32)
    ids = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
    return {"input_ids": ids, "attention_mask": mask, "lengths": lengths, "index": index}


def baseline_iter(root: Path, bs: int, workers: int, device: str):
    dl = torch.utils.data.DataLoader(
        SessionDataset(str(root)),
        batch_size=bs,
        shuffle=True,
        num_workers=workers,
        collate_fn=pad_collate,
        pin_memory=device.startswith("cuda"),
        multiprocessing_context="spawn" if workers else None,  # never fork next to DALI
        persistent_workers=bool(workers),
        prefetch_factor=4 if workers else None,
    )

    def it():
        for b in dl:
            yield {k: v.to(device, non_blocking=True) for k, v in b.items()}

    return it


def probe_per_sample_pad(root: Path, bs: int, batches: int, device: str) -> float:
    """The design not taken: one DALI sample per session, fn.pad and the mask built in DALI."""
    from nvidia.dali import fn, types
    from nvidia.dali.pipeline import Pipeline

    reader = ShardReader(root)
    order = np.random.default_rng(0).permutation(len(reader))
    per_epoch = len(reader) // bs

    def source(info):
        k = info.iteration % per_epoch
        return [reader[i] for i in order[k * bs : (k + 1) * bs]]

    gpu = device.startswith("cuda")
    pipe = Pipeline(
        batch_size=bs, num_threads=4, device_id=0 if gpu else None, prefetch_queue_depth=2
    )
    with pipe:
        x = fn.external_source(source, batch=True, batch_info=True, dtype=types.UINT16)
        if gpu:
            x = x.gpu()
        ids = fn.pad(fn.cast(x, dtype=types.INT64), axes=(0,), fill_value=0, align=8)
        mask = fn.pad(fn.cast(fn.ones_like(x), dtype=types.INT64), axes=(0,), fill_value=0, align=8)
        pipe.set_outputs(ids, mask, x.shape(dtype=types.INT32))
    pipe.build()

    def it():
        for _ in range(batches + 3):
            outs = pipe.run(torch.cuda.current_stream()) if gpu else pipe.run()
            yield {"input_ids": torch.from_dlpack(outs[0].as_tensor())}

    return time_iterable(it, batches, device)


def run_timings(root: Path, device: str, quick: bool, workers: int, repeat: int) -> list[dict]:
    """Each case ``repeat`` times, interleaved (fairer on a shared machine); the median."""
    rows = []
    sizes = (64, 256) if quick else (64, 256, 1024)
    for bs in sizes:
        batches = max(20, (8000 if quick else 40000) // bs)
        cases = {
            "dali padded": lambda bs=bs: make_loader(root, batch_size=bs, device=device),
            "dali padded 1 per call": lambda bs=bs: make_loader(
                root, batch_size=bs, device=device, batches_per_call=1
            ),
            "dali padded bucketing": lambda bs=bs: make_loader(
                root, batch_size=bs, device=device, bucketing=True
            ),
            "dali packing 2048": lambda bs=bs: make_loader(
                root, batch_size=bs, device=device, packing=2048
            ),
        }
        loaders = {name: make() for name, make in cases.items()}
        baselines = {
            f"torch DataLoader w={w}": baseline_iter(root, bs, w, device) for w in {0, workers}
        }
        rates: dict[str, list[float]] = {name: [] for name in [*loaders, *baselines]}
        for _ in range(repeat):
            for name, ld in loaders.items():
                rates[name].append(time_iterable(lambda ld=ld: ld, batches, device))
            for name, it in baselines.items():
                rates[name].append(time_iterable(it, batches, device))
        for name, values in rates.items():
            row = {"case": name, "bs": bs, "rows_per_s": float(np.median(values)), "runs": values}
            if name in loaders:
                row["stats"] = loaders[name].stats()
                loaders[name].close()
            rows.append(row)
        if bs == 256:
            rate = probe_per_sample_pad(root, bs, batches, device)
            rows.append({"case": "probe: per-sample fn.pad", "bs": bs, "rows_per_s": rate})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument(
        "--out",
        default=os.environ.get("OUT") or str(Path(tempfile.gettempdir()) / "rrweb-dali-bench"),
        help="folder for gpu_check.json (default: $OUT, else a folder in the temp dir)",
    )
    ap.add_argument("--sessions", type=int, default=None)
    ap.add_argument("--max-len", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers of the baseline")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per case (median)")
    ap.add_argument("--skip-checks", action="store_true")
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: 1 with --device cpu, where torch's OpenMP threads "
        "slowed the baseline's pad_sequence ~10x on a busy 2-core machine; the loader's CPU path "
        "uses numpy and does not care)",
    )
    args = ap.parse_args(argv)
    threads = args.torch_threads or (1 if args.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    sessions = args.sessions or (8000 if args.quick else 40000)
    workers = args.workers if args.workers is not None else min(8, os.cpu_count() or 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "sessions": sessions,
        "max_len": args.max_len,
    }
    with tempfile.TemporaryDirectory() as tmp:
        check_root = write_dataset(Path(tmp) / "small", 600, 3000, seed=1)
        if not args.skip_checks:
            t0 = time.perf_counter()
            report["checks"] = run_checks(check_root, args.device)
            report["checks_s"] = time.perf_counter() - t0
            print("checks passed:", json.dumps(report["checks"]), flush=True)
        root = write_dataset(Path(tmp) / "bench", sessions, args.max_len)
        report["timings"] = run_timings(root, args.device, args.quick, workers, args.repeat)
    best: dict[int, float] = {}
    for r in report["timings"]:
        if r["case"].startswith("torch DataLoader"):
            best[r["bs"]] = max(best.get(r["bs"], 0.0), r["rows_per_s"])
    print(f"\n{'case':28s} {'bs':>5s} {'rows/s':>12s} {'x best DataLoader':>18s}")
    for r in report["timings"]:
        ratio = r["rows_per_s"] / best[r["bs"]] if best.get(r["bs"]) else float("nan")
        r["x_best_dataloader"] = ratio
        print(f"{r['case']:28s} {r['bs']:5d} {r['rows_per_s']:12.0f} {ratio:18.2f}")
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"device {args.device} ({report['gpu'] or 'no GPU'}), {report['cpus']} CPUs; json: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
