"""Is the training loop input-bound, and which loader option to change: a pure function of a run.

:func:`assess` reads a run's ``meta.json`` (the loader's options), its samples and its summary
(``epochs``) and returns what ``summary.json`` holds as ``verdict``, ``verdict_reason`` and
``advice``. Both ``rrweb-dali profile`` and the training-loop hook (``loader.profile(...)``) write
it when a run ends; the dashboard and the report recompute it from the files (so a live run has
one too).

The verdict is on the steady state's **wait share**: the share of wall time the loop spent inside
``next()`` waiting for a batch (see :mod:`.figures`):

* ``"input-bound"``: wait share >= :data:`INPUT_BOUND` (20%): the loop waits for data a fifth of
  the time or more; a faster loader makes training faster.
* ``"compute-bound"``: wait share <= :data:`COMPUTE_BOUND` (5%): the loader keeps up; the step is
  the bottleneck and a faster loader would gain at most that share.
* ``"balanced"``: in between.

(TensorBoard's input-pipeline analyzer draws the same lines: over 20% "highly", over 5%
"moderately" input-bound.)

Advice: each rule fires only when the run's own figures show its cause, and says why (with the
figure) and what to expect. In order:

1. ``rrweb-dali warm`` -- raw mode, the cold epochs (the cache missed) took at least
   :data:`COLD_DOMINATES` of the epochs' time and the run is not compute-bound.
2. ``fetch_ahead`` (and ``fetch_threads``, or a cache that holds the dataset) -- an ``s3://``
   dataset, input-bound, and the batch source's waits for shard downloads are at least
   :data:`SHARD_WAIT_DOMINATES` of the loop's wait.
3. ``py_workers`` -- raw mode, input-bound, tokenizing is at least :data:`TOKENIZE_DOMINATES` of
   the source's time and fewer workers run than the host has CPUs (or ``parallel`` is off).
4. ``max_length`` -- input-bound and rows average more than :data:`LONG_ROW` padded tokens with no
   cap (or a cap above it).
5. ``batches_per_call`` / ``prefetch`` -- input-bound and the timed stages explain less than
   :data:`FIXED_COST_SHARE` of the wall time per batch (the rest is the fixed cost of a DALI
   iteration): ``batches_per_call`` while a DALI iteration holds fewer than :data:`ROWS_PER_CALL`
   rows, else ``prefetch``.
6. ``bucketing`` -- padding efficiency under :data:`LOW_PADDING` (padded mode, bucketing off;
   with bucketing on already, ``packing``). Padding costs the model too, so this fires whatever
   the verdict.
7. ``parallel`` -- input-bound, on shards, the source gather is most of the time per batch and
   runs in the training process.

A compute-bound run with nothing to fix gets one item with ``option`` None: keep the loader.
"""

from __future__ import annotations

from collections.abc import Sequence

from rrweb_dali.external_source.options import ROWS_PER_CALL
from rrweb_dali.profiling.figures import (
    epoch_figures,
    steady_figures,
    store_totals,
    warmup_figures,
)

INPUT_BOUND = 0.20
COMPUTE_BOUND = 0.05
VERDICTS = ("input-bound", "balanced", "compute-bound")
COLD_DOMINATES = 0.5
TOKENIZE_DOMINATES = 0.5
LONG_ROW = 4096
SUGGESTED_MAX_LENGTH = 2048
FIXED_COST_SHARE = 0.5
LOW_PADDING = 0.8
SHARD_WAIT_DOMINATES = 0.5
DEFAULT_FETCH_AHEAD = 4  # make_loader's defaults, for runs whose meta.json does not say
DEFAULT_FETCH_THREADS = 4


def loader_options(meta: dict) -> dict:
    """The options the advice checks, from ``meta.json``'s ``loader`` (``describe()``) and
    ``host``; None where the run does not say (a bench loop)."""
    loader = meta.get("loader") if isinstance(meta.get("loader"), dict) else {}
    plan = loader.get("plan") or {}
    pipe = loader.get("pipeline") or {}
    source = loader.get("source") or {}
    transport = loader.get("transport") or {}
    # Fetching from an object store: the loader's own description when it gives it, else what
    # `rrweb-dali profile` was asked for.
    store = source.get("store") if isinstance(source.get("store"), dict) else {}
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    asked = settings.get("loader_options")
    asked = asked if isinstance(asked, dict) else {}
    return {
        "source": source.get("kind"),
        "batch_size": plan.get("batch_size"),
        "bucketing": plan.get("bucketing"),
        "max_length": plan.get("max_length"),
        "pad_to": plan.get("pad_to"),
        "packing": plan.get("packing"),
        "batches_per_call": transport.get("batches_per_call"),
        "prefetch": pipe.get("prefetch"),
        "parallel": pipe.get("parallel"),
        "py_workers": pipe.get("py_workers"),
        "cache_dir": source.get("cache_dir"),
        "cpus": (meta.get("host") or {}).get("cpu_count"),
        "fetch_ahead": store.get("fetch_ahead", asked.get("fetch_ahead")),
        "fetch_threads": store.get("fetch_threads", asked.get("fetch_threads")),
    }


def classify(wait_share: float | None) -> str | None:
    """The verdict for a steady-state wait share (None when it is unknown)."""
    if wait_share is None:
        return None
    if wait_share >= INPUT_BOUND:
        return "input-bound"
    if wait_share <= COMPUTE_BOUND:
        return "compute-bound"
    return "balanced"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _item(option: str | None, why: str, expected: str) -> dict:
    return {"option": option, "why": why, "expected": expected}


def _cold_warm(verdict: str, epochs: dict, opts: dict, fig: dict) -> dict | None:
    cold, warm = epochs.get("cold"), epochs.get("warm")
    if cold is None or verdict == "compute-bound" or fig.get("store") is not None:
        return None  # an object store's cold epochs are downloads: see _shard_waits
    total = cold["seconds"] + (warm["seconds"] if warm else 0.0)
    if total <= 0 or cold["seconds"] / total < COLD_DOMINATES:
        return None
    why = (
        f"cold epochs (tokenizing every file) took {_pct(cold['seconds'] / total)} of the epochs' "
        f"time, at {cold['samples_per_s'] or 0:,.0f} samples/s"
    )
    if warm and warm["samples_per_s"]:
        expected = (
            f"every epoch at the warm rate seen here, {warm['samples_per_s']:,.0f} samples/s "
            f"({warm['samples_per_s'] / max(cold['samples_per_s'] or 1e-9, 1e-9):,.1f}x the cold "
            "epochs)"
        )
    else:
        expected = "the first epoch reads the cache instead of tokenizing (later epochs too)"
    option = "rrweb-dali warm" if opts.get("cache_dir") else "rrweb-dali warm (with cache_dir)"
    return _item(option, why + "; run `rrweb-dali warm` on the sources before training", expected)


def _shard_waits(verdict: str, fig: dict, epochs: dict, opts: dict) -> dict | None:
    store, loop_wait = fig.get("store"), fig.get("loop_wait_s")
    if verdict != "input-bound" or store is None or not loop_wait or not store.get("wait_s"):
        return None
    share = min(1.0, store["wait_s"] / loop_wait)
    if share < SHARD_WAIT_DOMINATES:
        return None
    uses = (store.get("hits") or 0) + (store.get("misses") or 0)
    why = (
        f"the batch source waited {store['wait_s']:.2f} s for shard downloads, {_pct(share)} of "
        f"the loop's {loop_wait:.2f} s of waiting"
    )
    if uses:
        why += f"; {store.get('misses') or 0} of {uses} shard uses were not local yet"
    if store.get("download_mib_per_s"):
        why += f"; downloads ran at {store['download_mib_per_s']:,.1f} MiB/s each"
    ahead, threads = opts.get("fetch_ahead"), opts.get("fetch_threads")
    more_ahead = max(DEFAULT_FETCH_AHEAD, 2 * (DEFAULT_FETCH_AHEAD if ahead is None else ahead))
    more_threads = 2 * (DEFAULT_FETCH_THREADS if threads is None else threads)
    expected = (
        f"fetch_ahead={more_ahead}, fetch_threads={more_threads}: more shards downloading, "
        "further ahead, so a batch finds its shard local (as far as the store's bandwidth allows)"
    )
    warm = epochs.get("warm")
    if warm and warm.get("samples_per_s"):
        expected += (
            f"; a cache_dir that holds the dataset, kept between runs, serves every epoch at "
            f"the cached rate seen here, {warm['samples_per_s']:,.0f} samples/s"
        )
    else:
        expected += (
            "; a cache_dir that holds the dataset, filled once (one epoch, or an earlier run), "
            "serves later epochs from the node's disk"
        )
    return _item("fetch_ahead", why, expected)


def _tokenizing(verdict: str, fig: dict, opts: dict) -> dict | None:
    if verdict != "input-bound" or opts.get("source") != "raw":
        return None
    tok = fig["ms_per_batch"].get("tokenize")
    gather = sum(v or 0.0 for k, v in fig["ms_per_batch"].items() if k in ("gather", "cache_read"))
    if not tok or tok / (tok + gather) < TOKENIZE_DOMINATES:
        return None
    workers = opts.get("py_workers") if opts.get("parallel") else 1
    cpus = opts.get("cpus")
    if workers is None or cpus is None or workers >= cpus:
        return None
    return _item(
        "py_workers",
        f"tokenizing is {_pct(tok / (tok + gather))} of the source's time "
        f"({tok:.1f} ms per batch) and it runs in {workers} process(es) of the {cpus} CPUs",
        f"py_workers={cpus} (parallel=True): up to {cpus / workers:.1f}x the tokenizing rate",
    )


def _long_rows(verdict: str, fig: dict, opts: dict) -> dict | None:
    width = fig.get("row_width")
    cap = opts.get("max_length") or opts.get("pad_to")
    if verdict != "input-bound" or width is None or width <= LONG_ROW or opts.get("packing"):
        return None
    if cap is not None and cap <= LONG_ROW:
        return None
    return _item(
        "max_length",
        f"rows average {width:,.0f} padded tokens"
        + (f" (max_length={cap})" if cap else " (no max_length)")
        + f" and the loop waits {_pct(fig['wait_share'])} of the time",
        f"max_length={SUGGESTED_MAX_LENGTH}: each batch carries at most "
        f"{SUGGESTED_MAX_LENGTH / width:.0%} of today's data per row, so the wait per batch "
        "falls about as much",
    )


def _fixed_cost(verdict: str, fig: dict, opts: dict) -> dict | None:
    ms, wall = fig["ms_per_batch"], fig.get("wall_ms_per_batch")
    if verdict != "input-bound" or not wall:
        return None
    timed = sum(v or 0.0 for k, v in ms.items() if k in ("gather", "tokenize", "cache_read", "pad"))
    if timed / wall >= FIXED_COST_SHARE:
        return None
    why = (
        f"the timed stages take {timed:.2f} ms of the {wall:.2f} ms per batch "
        f"({_pct(timed / wall)}): the rest is the fixed cost of each DALI iteration"
    )
    bs, bpc = opts.get("batch_size"), opts.get("batches_per_call")
    if bs and bpc and bs * bpc < ROWS_PER_CALL:
        more = max(bpc + 1, -(-ROWS_PER_CALL // bs))
        return _item(
            "batches_per_call",
            why + f", paid every {bs * bpc} rows",
            f"batches_per_call={more}: the fixed cost shared by {more} batches instead of {bpc}",
        )
    prefetch = opts.get("prefetch")
    more = f"prefetch={prefetch + 2}" if prefetch else "a larger prefetch"
    return _item(
        "prefetch", why, f"{more}: more iterations ready ahead, so a slow one is not waited for"
    )


def _padding(fig: dict, opts: dict) -> dict | None:
    eff = fig.get("padding_efficiency")
    if eff is None or eff >= LOW_PADDING or opts.get("packing"):
        return None
    why = f"padding efficiency is {eff:.2f}: {_pct(1 - eff)} of every batch is padding"
    if opts.get("bucketing"):
        return _item(
            "packing",
            why + " even with bucketing",
            "packing=L: dense rows, padding efficiency near 1.0",
        )
    return _item(
        "bucketing",
        why,
        f"bucketing=True: similar lengths in a batch, padding efficiency toward 0.9 or more "
        f"(up to {0.9 / eff:.1f}x the real tokens per padded slot)",
    )


def _parallel(verdict: str, fig: dict, opts: dict) -> dict | None:
    gather, wall = fig["ms_per_batch"].get("gather"), fig.get("wall_ms_per_batch")
    if verdict != "input-bound" or opts.get("source") != "shards" or opts.get("parallel"):
        return None
    if not gather or not wall or gather / wall < 0.5:
        return None
    workers = max(2, int(opts.get("cpus") or 2))
    return _item(
        "parallel",
        f"the source gather takes {gather:.2f} of the {wall:.2f} ms per batch, in the "
        "training process",
        f"parallel=True, py_workers={workers}: the gather spread over {workers} processes",
    )


def assess(meta: dict, samples: Sequence[dict], summary: dict | None = None) -> dict:
    """``verdict``, ``verdict_reason``, ``advice``, and the figures they rest on (``steady``,
    ``warmup``, ``epoch_kinds``, ``store``: None for local shards), from one rank's run files
    (see the module doc)."""
    summary = summary or {}
    fig = steady_figures(samples)
    epochs = epoch_figures(summary.get("epochs") or [])
    out: dict = {
        "steady": fig,
        "warmup": warmup_figures(samples),
        "epoch_kinds": epochs,
        "store": store_totals(samples),
        "verdict": None,
        "verdict_reason": "too few samples for a verdict",
        "advice": [],
    }
    if fig is None or fig.get("wait_share") is None:
        return out
    share = fig["wait_share"]
    verdict = classify(share)
    out["verdict"] = verdict
    window = "steady state" if fig["window"] == "steady" else "whole run (no steady state)"
    out["verdict_reason"] = (
        f"the loop waited for input {_pct(share)} of the {window} "
        f"({fig['seconds']:.1f} s; input-bound from {_pct(INPUT_BOUND)}, compute-bound up to "
        f"{_pct(COMPUTE_BOUND)})"
    )
    opts = loader_options(meta)
    rules = (
        _cold_warm(verdict, epochs, opts, fig),
        _shard_waits(verdict, fig, epochs, opts),
        _tokenizing(verdict, fig, opts),
        _long_rows(verdict, fig, opts),
        _fixed_cost(verdict, fig, opts),
        _padding(fig, opts),
        _parallel(verdict, fig, opts),
    )
    advice = [r for r in rules if r is not None]
    if not advice and verdict == "compute-bound":
        advice.append(
            _item(
                None,
                f"the loop waits only {_pct(share)} of the time: the step is the bottleneck",
                f"no loader change helps by more than {_pct(share)}; keep the loader as it is",
            )
        )
    out["advice"] = advice
    return out
