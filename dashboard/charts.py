"""The dashboard's Altair charts (the report renders the same ones). Each takes a tidy frame from
``frames.py`` and returns a chart; colour is always the run (or run and rank), over one sorted
domain and one fixed palette, so a run keeps one colour across the page and runs never share
one (up to 20 runs)."""

from __future__ import annotations

import altair as alt
import pandas as pd
from rrweb_dali.dashboard.frames import PART_ORDER

HEIGHT = 260
THROUGHPUT_LABELS = {"samples_per_s": "samples/s", "tokens_per_s": "tokens/s"}
# Tableau 10 then its light variants: 20 distinct colours, the strong ones first.
PALETTE = [
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#eeca3b",
    "#9d755d",
    "#ff9da6",
    "#bab0ac",
    "#9ecae9",
    "#ffbf79",
    "#88d27a",
    "#ff9d98",
    "#4c9b95",
    "#d6a5c9",
    "#f2cf5b",
    "#d8b5a5",
    "#79706e",
    "#439894",
]
PART_COLOURS = {
    "source gather": "#4c78a8",
    "waiting for shard downloads": "#b279a2",
    "tokenizing": "#e45756",
    "cache reads": "#72b7b2",
    "DALI (copy, cast)": "#bab0ac",
    "padding / finish": "#eeca3b",
    "loop waits for input": "#f58518",
    "step (the loop's own time)": "#54a24b",
}
X_TIME = alt.X("t:Q", title="seconds since start", scale=alt.Scale(domainMin=0, nice=False))


def _series_color(domain: list[str], legend: bool = True) -> alt.Color:
    """Colour by run over the same sorted domain everywhere, so a run has one colour per page;
    the half-width charts leave the legend to the full-width throughput chart above them."""
    return alt.Color(
        "series:N",
        title="run",
        scale=alt.Scale(domain=domain, range=PALETTE[: max(1, len(domain))]),
        legend=alt.Legend(labelLimit=320, orient="bottom", columns=2) if legend else None,
    )


def _domain(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["series"].unique().tolist()) if "series" in frame else []


def throughput(
    frame: pd.DataFrame, warmups: pd.DataFrame, metric: str = "samples_per_s"
) -> alt.LayerChart:
    """Throughput over time, runs overlaid; a dashed rule marks where each run's warm-up ends."""
    label = THROUGHPUT_LABELS.get(metric, metric)
    data = frame[["series", "t", metric]].dropna()
    domain = _domain(frame)
    lines = (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=16))
        .encode(
            x=X_TIME,
            y=alt.Y(f"{metric}:Q", title=label),
            color=_series_color(domain),
            tooltip=[
                "series:N",
                alt.Tooltip("t:Q", format=".1f"),
                alt.Tooltip(f"{metric}:Q", format=",.0f"),
            ],
        )
    )
    rules = (
        alt.Chart(warmups.assign(what="warm-up end"))
        .mark_rule(strokeDash=[4, 4], opacity=0.7)
        .encode(x="t:Q", color=_series_color(domain), tooltip=["series:N", "what:N", "t:Q"])
    )
    return alt.layer(lines, rules).properties(height=HEIGHT, title=f"{label} over time")


def parts(table: pd.DataFrame) -> alt.Chart:
    """Where the time goes over the steady state, per run: the loader's work per batch (summed
    over threads and workers) and the loop's wall time per batch (waiting vs its own step)."""
    order = {p: i for i, p in enumerate(PART_ORDER)}
    data = table.assign(order=table["part"].map(order))
    present = [p for p in PART_ORDER if p in set(table["part"])]
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("what:N", title=None, sort=["loop wall time", "loader work"]),
            x=alt.X("ms_per_batch:Q", title="ms per batch", stack="zero"),
            color=alt.Color(
                "part:N",
                title="part",
                sort=present,
                scale=alt.Scale(domain=present, range=[PART_COLOURS[p] for p in present]),
                legend=alt.Legend(orient="bottom", columns=4, labelLimit=260),
            ),
            order=alt.Order("order:Q"),
            row=alt.Row("run:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
            tooltip=["run:N", "part:N", alt.Tooltip("ms_per_batch:Q", format=".3f")],
        )
        .properties(height=50, width=700, title="where the time goes (steady state)")
    )


def time_split(table: pd.DataFrame) -> alt.Chart:
    """Per interval, ms per batch waiting for input (orange) over the loop's own step (green),
    stacked: the step time split into input and compute, one panel per run."""
    present = [p for p in PART_ORDER if p in set(table["part"])]
    # No ``order`` channel: on an area it orders the path's points, not the stack.
    return (
        alt.Chart(table)
        .mark_area(interpolate="step-before", opacity=0.85)
        .encode(
            x=X_TIME,
            y=alt.Y("ms:Q", title="ms per batch", stack="zero"),
            color=alt.Color(
                "part:N",
                title=None,
                scale=alt.Scale(domain=present, range=[PART_COLOURS[p] for p in present]),
                legend=alt.Legend(orient="bottom"),
            ),
            row=alt.Row("series:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
            tooltip=["series:N", "part:N", alt.Tooltip("t:Q", format=".1f"), "ms:Q"],
        )
        .properties(height=120, width=700, title="step time: waiting for input vs the step")
    )


def memory(table: pd.DataFrame, series_domain: list[str]) -> alt.Chart:
    """The loader's memory over time per run (one dash pattern per kind of memory)."""
    return (
        alt.Chart(table)
        .mark_line()
        .encode(
            x=X_TIME,
            y=alt.Y("mib:Q", title="MiB"),
            color=_series_color(series_domain, legend=False),
            strokeDash=alt.StrokeDash(
                "memory:N", title="memory", legend=alt.Legend(orient="bottom", columns=2)
            ),
            tooltip=["series:N", "memory:N", alt.Tooltip("mib:Q", format=",.1f")],
        )
        .properties(height=HEIGHT, title="memory")
    )


def padding(frame: pd.DataFrame) -> alt.Chart:
    """Real tokens over padded slots, per interval."""
    data = frame[["series", "t", "padding_efficiency"]].dropna()
    return (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=X_TIME,
            y=alt.Y("padding_efficiency:Q", title="tokens / slots", scale=alt.Scale(domain=[0, 1])),
            color=_series_color(_domain(frame), legend=False),
            tooltip=["series:N", alt.Tooltip("padding_efficiency:Q", format=".3f")],
        )
        .properties(height=HEIGHT, title="padding efficiency")
    )


def cache(frame: pd.DataFrame) -> alt.LayerChart:
    """Cache hit rate per interval (a line through the intervals that read anything) over
    evictions per interval (ticks on whole numbers; bars would spill left of t = 0)."""
    domain = _domain(frame)
    hit_data = frame[["series", "t", "cache_hit_rate"]].dropna()
    ev_data = frame[["series", "t", "cache_evictions_delta"]].dropna()
    hit = (
        alt.Chart(hit_data)
        .mark_line(point=alt.OverlayMarkDef(size=16))
        .encode(
            x=X_TIME,
            y=alt.Y("cache_hit_rate:Q", title="hit rate", scale=alt.Scale(domain=[0, 1])),
            color=_series_color(domain),
            tooltip=["series:N", alt.Tooltip("t:Q", format=".1f"), "cache_hit_rate:Q"],
        )
    )
    evictions = (
        alt.Chart(ev_data)
        .mark_rule(opacity=0.45, strokeWidth=3)
        .encode(
            x=X_TIME,
            y=alt.Y(
                "cache_evictions_delta:Q",
                title="evictions per interval",
                axis=alt.Axis(format="~s", tickMinStep=1),
                scale=alt.Scale(domainMin=0),
            ),
            color=_series_color(domain),
            tooltip=["series:N", "cache_evictions_delta:Q"],
        )
    )
    return (
        alt.layer(evictions, hit)
        .resolve_scale(y="independent")
        .properties(height=HEIGHT, title="cache")
    )


def store_downloads(table: pd.DataFrame) -> alt.FacetChart:
    """An object store's downloads over time per run: the MiB downloaded so far (a run's first
    epoch climbs, a cached epoch stays flat) and the download rate per interval, one panel
    each with its own scale."""
    return (
        alt.Chart(table)
        .mark_line(point=alt.OverlayMarkDef(size=16), interpolate="linear")
        .encode(
            x=X_TIME,
            y=alt.Y("value:Q", title=None, scale=alt.Scale(domainMin=0)),
            color=_series_color(_domain(table)),
            tooltip=["series:N", "what:N", alt.Tooltip("t:Q", format=".1f"), "value:Q"],
        )
        .properties(height=HEIGHT // 2, width=700)
        .facet(
            row=alt.Row(
                "what:N",
                title=None,
                sort=["downloaded (MiB)", "download rate (MiB/s)"],
                header=alt.Header(labelAngle=0, labelAlign="left"),
            )
        )
        .resolve_scale(y="independent")
        .properties(title="object store downloads")
    )
