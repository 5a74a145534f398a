"""Weighted mixtures of several datasets: an epoch's sequence as a pure function of (seed, epoch).

Like MosaicML streaming's ``Stream(proportion=...)``, each source ``i`` (a dataset directory, after
its selection) of ``n_i`` sequences gets weight ``w_i`` (normalised to sum to 1), and every
process recomputes the same plan from ``(seed, epoch)``. What an epoch is, by ``mixture``:

* ``"repeat"`` (default): the epoch ends once every source has been seen whole at least once:
  ``E = ceil(max_i n_i / w_i)`` rows. A source that runs out before the end starts over in a fresh
  seeded order (a new *pass*), so the smaller sources (relative to their weights) repeat.
* ``"exhaust"``: no row is seen twice in an epoch; the epoch ends as the first source runs out:
  ``E = floor(min_i n_i / w_i)`` rows. The other sources give a seeded subset of their rows,
  another one every epoch.

Source ``i`` contributes ``c_i`` rows, ``w_i * E`` rounded by largest remainder (ties to the
lower source number), so ``sum c_i = E`` and ``|c_i - w_i E| < 1``: over an epoch of a few thousand
rows the proportions are the weights to well within 1%. Its rows are the first ``c_i`` of its
passes' orders laid end to end (pass ``p`` is a permutation seeded by ``(seed, epoch, i, p)``).

Interleaving (a stratified merge): row ``j`` of source ``i`` gets a time ``(j + u) / c_i`` with
``u`` uniform in ``[0, 1)`` (seeded; ``0.5`` without shuffling), and the epoch's sequence is every
source's rows sorted by time. Each source's rows keep their order, and any prefix of ``t`` rows
holds about ``c_i t / E`` rows of source ``i`` (off by less than 2), so every stretch of the epoch
has the mixture's proportions, not only the whole.

The sequence never depends on the world size, so it is sharded, resumed and re-sharded exactly as
a single dataset's (see :mod:`.sampling`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

MIXTURES = ("repeat", "exhaust")

# Random streams of (seed, epoch, ...) distinct from those of .sampling (0 and 1).
_PASS_STREAM = 2
_TIME_STREAM = 3


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def check_weights(weights: Sequence[float], sources: int | None = None) -> tuple[float, ...]:
    """``weights`` as a tuple of positive finite floats (one per source when ``sources``)."""
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise ValueError(f"weights must be a list of numbers, got {weights!r}")
    out = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w <= 0:
            raise ValueError(f"every weight must be a positive finite number, got {w!r}")
        out.append(float(w))
    if not out:
        raise ValueError("weights must name at least one source")
    if sources is not None and len(out) != sources:
        raise ValueError(f"{len(out)} weights for {sources} dataset directories")
    return tuple(out)


def mixture_counts(sizes: Sequence[int], weights: Sequence[float], mixture: str) -> np.ndarray:
    """Rows of each source in an epoch (int64, one per source; see the module doc)."""
    if mixture not in MIXTURES:
        raise ValueError(f"mixture must be one of {MIXTURES}, got {mixture!r}")
    weights = check_weights(weights, len(sizes))
    empty = [i for i, n in enumerate(sizes) if n <= 0]
    if empty:
        raise ValueError(
            f"mixture source(s) {empty} hold no sequence (after the selection); a source with a "
            "weight must have rows to draw"
        )
    # Exact arithmetic on the weights as written (repr: 0.3 is 3/10, not the float nearest it),
    # so 0.7 / 0.3 of 1000 and 300 rows is an epoch of exactly 1000, never 999.
    w = [Fraction(repr(x)) for x in weights]
    total_w = sum(w)
    ratios = [Fraction(int(n)) * total_w / wi for n, wi in zip(sizes, w, strict=True)]
    epoch = math.ceil(max(ratios)) if mixture == "repeat" else math.floor(min(ratios))
    quotas = [wi * epoch / total_w for wi in w]
    counts = [math.floor(q) for q in quotas]
    left = epoch - sum(counts)
    by_remainder = sorted(range(len(w)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[:left]:
        counts[i] += 1
    return np.asarray(counts, dtype=np.int64)


def source_rows(
    n: int, count: int, seed: int, epoch: int, source: int, shuffle: bool
) -> np.ndarray:
    """Positions (``0..n-1``) of the ``count`` rows source ``source`` gives in ``epoch``: its
    passes' orders end to end, cut at ``count``."""
    passes = -(-count // n) if n else 0
    orders = [
        _rng(seed, epoch, _PASS_STREAM, source, p).permutation(n)
        if shuffle
        else np.arange(n, dtype=np.int64)
        for p in range(passes)
    ]
    rows = np.concatenate(orders) if orders else np.zeros(0, dtype=np.int64)
    return rows[:count].astype(np.int64, copy=False)


def interleave(counts: Sequence[int], seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The source of each position of the epoch (int64 ``[sum(counts)]``): a stratified merge."""
    times, labels = [], []
    rng = _rng(seed, epoch, _TIME_STREAM)
    for i, c in enumerate(int(c) for c in counts):
        u = rng.random(c) if shuffle else np.full(c, 0.5)
        times.append((np.arange(c) + u) / max(c, 1))
        labels.append(np.full(c, i, dtype=np.int64))
    if not times:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(np.concatenate(times), kind="stable")
    return np.concatenate(labels)[order]


def mixture_order(
    ids: Sequence[np.ndarray],
    weights: Sequence[float],
    mixture: str,
    seed: int,
    epoch: int,
    shuffle: bool = True,
) -> np.ndarray:
    """The epoch's sequence of global ids: ``ids[i]`` are source ``i``'s (selected) ids."""
    counts = mixture_counts([len(x) for x in ids], weights, mixture)
    rows = [
        np.asarray(x, dtype=np.int64)[source_rows(len(x), int(c), seed, epoch, i, shuffle)]
        for i, (x, c) in enumerate(zip(ids, counts, strict=True))
    ]
    labels = interleave(counts, seed, epoch, shuffle)
    out = np.empty(labels.size, dtype=np.int64)
    for i, r in enumerate(rows):
        out[labels == i] = r  # a source's rows keep their order: the merge is stable
    return out


def epoch_rows(sizes: Sequence[int], weights: Sequence[float], mixture: str) -> int:
    """Rows in one epoch of the mixture (the same every epoch)."""
    return int(mixture_counts(sizes, weights, mixture).sum())
