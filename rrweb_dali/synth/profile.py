"""Distributions of the synthetic corpus, measured once from the 120 real recordings.

WHY constants and not a run-time read of the corpus: the generator must run where the corpus is
absent (CI, a fresh clone) and must give the same bytes forever for a (seed, index), so the
numbers are frozen here.

How they were measured: a throwaway script loaded every file of ``corpus/recorded/`` (gzip, JSON
Lines and @rrweb/packer strings unpacked) and took numpy percentiles (0, 10, 25, 50, 75, 90, 95,
99, 100) of each quantity over all sessions / events / gaps / nodes, bytes being compact JSON
(``separators=(",", ":")``, UTF-8); counts and shares come from the same pass and from
MANIFEST.json ("interactions", "rrweb_options"). Totals: 120 sessions, 10,028 events, 186 full
snapshots, 9,908 gaps. Numbers marked *tuned* are not measured: they were chosen so that the
generated corpus reproduces the measured targets.

A ``*_Q`` table is an inverse CDF: :func:`quantile_draw` interpolates linearly between its
percentile points, which reproduces the measured shape (median and tail) without fitting a model.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Sequence

PERCENTILES: tuple[float, ...] = (0.0, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 1.0)

# ---------------------------------------------------------------------------------------------
# Targets: what the generated sessions must look like (tests and the bench compare against them)
# ---------------------------------------------------------------------------------------------
SESSION_EVENTS_Q: tuple[float, ...] = (6, 19.9, 30.75, 49, 76.5, 128.5, 217, 790, 1039)
# compact JSON bytes per session (the on-disk median is 191 KB: 24 of the 120 are compressed)
SESSION_BYTES_Q: tuple[float, ...] = (
    78_985, 117_258, 142_377, 240_969, 350_922, 606_739, 1_073_707, 1_771_516, 2_744_735,
)  # fmt: skip
EVENT_TYPE_COUNTS: dict[int, int] = {2: 186, 3: 9617, 4: 186, 5: 39}
INCREMENTAL_SOURCE_COUNTS: dict[int, int] = {
    0: 4932,
    1: 1255,
    2: 1749,
    3: 562,
    4: 39,
    5: 464,
    14: 616,
}
# MouseInteraction types: MouseUp, MouseDown, Click, DblClick, Focus, Blur
MOUSE_INTERACTION_COUNTS: dict[int, int] = {0: 343, 1: 343, 2: 369, 4: 30, 5: 381, 6: 283}
# Meta events per session: 1 (60 %), 2 (30 %), 3 (8 %), 4 (2 %); mean 1.55
GAP_Q: tuple[float, ...] = (0, 0, 1, 4, 80, 271, 500, 575, 2292)  # all gaps: 11.5 % are 0 ms
SNAPSHOT_BYTES_Q: tuple[float, ...] = (
    20151,
    96002,
    103303,
    116658,
    149929,
    174497,
    226777,
    434027,
    911265,
)
MUTATION_ADDS_Q: tuple[float, ...] = (0, 1, 13, 19, 23, 27, 31, 86, 10628)  # adds per mutation
MUTATION_BYTES_Q: tuple[float, ...] = (131, 282, 1558, 2206, 2604, 3097, 3383, 10039, 1_288_447)
INPUT_LENGTH_Q: tuple[float, ...] = (0, 1, 2, 5, 8, 11, 14, 19, 30)  # Input event text length
# compact JSON bytes per snapshot node, _cssText excluded: median 88 (api), 71 (guide)
BYTES_PER_NODE: dict[str, float] = {"api": 88.0, "guide": 70.8}
# share of snapshot nodes that are whitespace-only text: median 9 % (api), 24 % (guide)
WHITESPACE_NODE_FRACTION: dict[str, float] = {"api": 0.09, "guide": 0.24}

# ---------------------------------------------------------------------------------------------
# Inputs of the session model
# ---------------------------------------------------------------------------------------------
# session length, ms (last minus first timestamp): actions are performed until it is reached
SESSION_DURATION_Q: tuple[float, ...] = (501, 2857, 4768, 6453, 8112, 9553, 10202, 11281, 11388)
# mean count of each recorder interaction per session (MANIFEST "interactions")
ACTION_WEIGHTS: dict[str, float] = {
    "mousemove": 2.37,
    "wheel": 1.94,
    "hover": 1.16,
    "select": 0.95,  # select 0.73 + select-skipped 0.22 (a click that selected nothing)
    "toggle": 0.73,
    "wait": 0.64,
    "navigate": 0.45,
    "keys": 0.41,
    "resize": 0.375,
    "type": 0.33,
    "custom": 0.325,
    "hashlink": 0.29,
}
# sessions recorded with checkoutEveryNth / checkoutEveryNms: 21 of 120
CHECKOUT_SESSION_PROBABILITY = 21 / 120
# record option presets (one per session, as in the recordings)
INLINE_STYLESHEET_OFF_PROBABILITY = 12 / 120
MASK_ALL_INPUTS_PROBABILITY = 10 / 120
MASK_TEXT_PROBABILITY = 11 / 120
SLIM_DOM_PROBABILITY = 12 / 120
USER_TRIGGERED_INPUT_PROBABILITY = 0.04  # 18 of 464 Input events carry userTriggered
VIEWPORT_WEIGHTS: dict[tuple[int, int], int] = {
    (800, 600): 38, (1440, 900): 38, (1024, 768): 35, (1366, 768): 34, (1280, 720): 32,
}  # fmt: skip
RESIZE_SIZES: tuple[tuple[int, int], ...] = (
    (600, 800), (900, 700), (1440, 900), (1280, 720), (1024, 768), (1600, 900), (414, 800),
    (421, 766), (1401, 752), (748, 544), (1380, 955), (767, 590), (439, 791), (1366, 768),
)  # fmt: skip
# synthetic sessions start anywhere from 2023-11-14 to the recordings' date (ms since epoch)
FIRST_TIMESTAMP_RANGE: tuple[int, int] = (1_700_000_000_000, 1_795_717_717_490)

# gaps (ms) by the kinds of two consecutive events
META_TO_SNAPSHOT_GAP_Q: tuple[float, ...] = (11, 48, 68, 95, 130, 182, 221, 314, 376)
SNAPSHOT_TO_MUTATION_GAP_Q: tuple[float, ...] = (10, 28, 39, 64, 94, 156, 207, 550, 625)
MUTATION_TO_MUTATION_GAP_Q: tuple[float, ...] = (0, 0, 1, 1, 3, 19, 42, 166, 1701)
MOUSEMOVE_TO_MOUSEMOVE_GAP_Q: tuple[float, ...] = (488, 500, 500, 500, 501, 512, 738, 1290, 1588)
SELECTION_TO_SELECTION_GAP_Q: tuple[float, ...] = (11, 15, 16, 17, 20, 34, 50, 179, 406)
INPUT_TO_INPUT_GAP_Q: tuple[float, ...] = (0, 46, 71, 102, 139, 162, 174, 576, 642)
SCROLL_TO_SCROLL_GAP_Q: tuple[float, ...] = (99, 100, 100, 132, 209, 281, 300, 359, 597)
# between MouseInteractions of one click (MouseDown, Blur, Focus, MouseUp, Click): p0-p95 of the
# measured mi->mi gaps (0, 0, 0, 1, 2, 5, 12), the tail above being separate clicks
CLICK_STEP_GAP_Q: tuple[float, ...] = (0, 0, 0, 1, 2, 5, 8, 12, 12)
# inside a burst of search-result mutations: the body (to p90) of MUTATION_TO_MUTATION_GAP_Q
SEARCH_BURST_GAP_Q: tuple[float, ...] = (0, 0, 0, 1, 1, 2, 3, 12, 19)
# between events of other kinds, i.e. mostly from one action to the next
OTHER_GAP_Q: tuple[float, ...] = (0, 3, 12, 80, 209, 371, 454, 694, 2292)

# full snapshots: nodes per snapshot ("api" = the 118 rustdoc ones, "guide" = the 68 Node.js ones)
SNAPSHOT_NODES_BY_KIND_Q: dict[str, tuple[float, ...]] = {
    "api": (179, 224, 269, 480, 886, 1106, 1665, 4465, 10316),
    "guide": (769, 1092, 1271, 1446, 1684, 2292, 3253, 3404, 3587),
}
# textContent length of text nodes (98,347): median 5
TEXT_LENGTH_Q: tuple[float, ...] = (0, 1, 1, 5, 11, 22, 36, 98, 1370)
# inlined stylesheets: two <link>s per page, a big and a small one; <style> rare
CSS_SIZES: dict[str, tuple[int, int]] = {"api": (76_957, 1_712), "guide": (16_722, 2_482)}
STYLE_ELEMENT_CSS_CHARS = 109
INITIAL_OFFSET_NONZERO_PROBABILITY = 8 / 186

# incremental events
MOUSEMOVE_POSITIONS_Q: tuple[float, ...] = (1, 1, 1, 3, 5, 7, 8, 9, 14)  # per MouseMove event
MOUSEMOVE_TIME_OFFSET_Q: tuple[float, ...] = (-726, -446, -385, -251, -103, -16, 0, 0, 0)
SCROLL_DOCUMENT_PROBABILITY = 554 / 562  # the rest scroll an element
SCROLL_Y_Q: tuple[float, ...] = (0, 48, 233, 648, 1298, 2163, 3320, 11040, 11555)  # px
SELECTION_EMPTY_PROBABILITY = 0.03  # 3 % of Selection events have no range
CUSTOM_TAGS: dict[str, int] = {
    "checkpoint": 14,
    "feature-flag": 9,
    "user-note": 8,
    "route-change": 8,
}
# mutations right after a FullSnapshot (page scripts building UI): median 1 (28 adds)
LOAD_MUTATIONS_Q: tuple[float, ...] = (0, 0, 1, 1, 1, 2, 2, 3, 12)
MUTATION_ATTRIBUTE_NAMES: dict[str, int] = {
    "class": 703, "href": 213, "aria-expanded": 209, "hidden": 35, "open": 21, "style": 2,
}  # fmt: skip
MUTATION_ATTRIBUTE_NULL_FRACTION = 52 / 1183
# Mutation-heavy sessions: 7 of 120 hold 0.9-2.4 MB of mutations (search results rendered one
# row per mutation, or a type-alias page inserting ~10k nodes in one mutation). *Tuned* so that
# mutations per session come out at the measured p90 61, p95 162, p99 736.
SEARCH_BURST_PROBABILITY = 0.45  # of "type" actions on an api site
SEARCH_BURST_MUTATIONS_Q: tuple[float, ...] = (30, 50, 80, 160, 380, 750, 850, 950, 980)
SEARCH_BURST_SMALL_MUTATION_PROBABILITY = 0.1  # 1-add mutations between result rows
HUGE_INSERT_PAGE_PROBABILITY = 0.04  # of api page loads; 4 of 120 sessions hold one
HUGE_INSERT_ADDS_Q: tuple[float, ...] = (900, 1100, 1500, 2800, 3700, 10200, 10300, 10600, 10700)

# Rare kinds absent from the recordings but valid rrweb, so the tokenizer meets them at scale
# (*tuned*: a few hundred of each per 32k sessions)
RARE_EVENTS_SESSION_PROBABILITY = 0.03
RARE_KINDS: tuple[str, ...] = (
    "dom_content_loaded",  # type 0
    "load",  # type 1
    "plugin",  # type 6
    "touch_move",  # source 6
    "media",  # 7
    "stylesheet_rule",  # 8
    "canvas",  # 9
    "font",  # 10
    "log",  # 11
    "drag",  # 12
    "style_declaration",  # 13
    "adopted_stylesheet",  # 15
    "custom_element",  # 16
)

# SVG-heavy sessions (rrweb_dali.synth.svg: animated force graphs and charts), absent from the
# recordings: *tuned* so that a 2,000-session corpus holds ~80 of them (half force graphs, half
# charts), enough to measure the tokenizer's budget at scale without dominating the byte count.
SVG_SESSION_PROBABILITY = 0.04

# file formats per 120 sessions, like the corpus
FORMAT_WEIGHTS: dict[str, int] = {"json": 91, "json.gz": 12, "jsonl": 5, "packed": 12}


def quantile_draw(rng: random.Random, table: Sequence[float]) -> float:
    """Draw from a measured distribution given by its values at :data:`PERCENTILES`."""
    u = rng.random()
    i = max(1, bisect_left(PERCENTILES, u))
    lo, hi = PERCENTILES[i - 1], PERCENTILES[i]
    return table[i - 1] + (u - lo) / (hi - lo) * (table[i] - table[i - 1])
