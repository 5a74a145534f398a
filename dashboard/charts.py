"""The dashboard's Altair charts. Each takes a tidy frame from ``data.py`` and returns a chart;
colour is always the run (or run and rank), so one run keeps one colour across the page."""

from __future__ import annotations

import altair as alt
import pandas as pd

HEIGHT = 260
THROUGHPUT_LABELS = {"samples_per_s": "samples/s", "tokens_per_s": "tokens/s"}


def _series_color(domain: list[str], legend: bool = True) -> alt.Color:
    """Colour by run over the same sorted domain everywhere, so a run has one colour per page;
    the half-width charts leave the legend to the full-width throughput chart above them."""
    return alt.Color(
        "series:N",
        title="run",
        scale=alt.Scale(domain=domain),
        legend=alt.Legend(labelLimit=320) if legend else None,
    )


def throughput(
    frame: pd.DataFrame, warmups: pd.DataFrame, metric: str = "samples_per_s"
) -> alt.Chart:
    """Throughput over time, runs overlaid; a dashed rule marks where each run's warm-up ends."""
    label = THROUGHPUT_LABELS.get(metric, metric)
    data = frame[["series", "t", metric]].dropna()
    domain = sorted(frame["series"].unique().tolist())
    lines = (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=16))
        .encode(
            x=alt.X("t:Q", title="seconds since start"),
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


def stages(table: pd.DataFrame) -> alt.Chart:
    """Milliseconds per batch in each loader stage, stacked per run."""
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("run:N", title=None, axis=alt.Axis(labelAngle=0, labelLimit=260)),
            y=alt.Y("ms_per_batch:Q", title="ms per batch", stack="zero"),
            color=alt.Color("stage:N", title="stage"),
            order=alt.Order("stage:N"),
            tooltip=["run:N", "stage:N", alt.Tooltip("ms_per_batch:Q", format=".3f")],
        )
        .properties(height=HEIGHT, title="time per batch by stage")
    )


def memory(table: pd.DataFrame, series_domain: list[str]) -> alt.Chart:
    """Host RSS and GPU memory over time (solid RSS, dashed GPU) per run."""
    return (
        alt.Chart(table)
        .mark_line()
        .encode(
            x=alt.X("t:Q", title="seconds since start"),
            y=alt.Y("mib:Q", title="MiB"),
            color=_series_color(series_domain, legend=False),
            strokeDash=alt.StrokeDash("memory:N", title="memory"),
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
            x=alt.X("t:Q", title="seconds since start"),
            y=alt.Y("padding_efficiency:Q", title="tokens / slots", scale=alt.Scale(domain=[0, 1])),
            color=_series_color(sorted(frame["series"].unique().tolist()), legend=False),
            tooltip=["series:N", alt.Tooltip("padding_efficiency:Q", format=".3f")],
        )
        .properties(height=HEIGHT, title="padding efficiency")
    )


def cache(frame: pd.DataFrame) -> alt.Chart:
    """Cache hit rate per interval (line) over evictions per interval (bars)."""
    data = frame[["series", "t", "cache_hit_rate", "cache_evictions_delta"]].dropna(
        how="all", subset=["cache_hit_rate", "cache_evictions_delta"]
    )
    domain = sorted(frame["series"].unique().tolist())
    base = alt.Chart(data).encode(
        x=alt.X("t:Q", title="seconds since start"), color=_series_color(domain)
    )
    hit = base.mark_line().encode(
        y=alt.Y("cache_hit_rate:Q", title="hit rate", scale=alt.Scale(domain=[0, 1])),
        tooltip=["series:N", alt.Tooltip("cache_hit_rate:Q", format=".3f")],
    )
    evictions = base.mark_bar(opacity=0.35).encode(
        y=alt.Y("cache_evictions_delta:Q", title="evictions per interval"),
        tooltip=["series:N", "cache_evictions_delta:Q"],
    )
    return (
        alt.layer(evictions, hit)
        .resolve_scale(y="independent")
        .properties(height=HEIGHT, title="cache")
    )
