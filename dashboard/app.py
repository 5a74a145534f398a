"""rrweb-dali runs dashboard: ``rrweb-dali dashboard RUNS...`` runs this page under Streamlit.

Compares the run folders that ``rrweb-dali profile``, the bench scripts and the training hook
write (see ``rrweb_dali.profiling.runfiles``), from one or several runs directories. The page
opens with each run's verdict (input-bound, balanced, compute-bound) and the loader options to
change; then the steady-state KPIs, where the time goes, throughput, memory, padding, cache,
an object store's downloads (for runs over ``s3://`` data) and the configuration diff. Reading is in ``data.py``, labels/KPIs/verdicts in ``runs.py``, frames
in ``frames.py``, charts in ``charts.py``. The directories come from ``--runs`` (repeatable) or
the ``RRWEB_DALI_RUNS`` environment variable; nothing outside them is read.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st
from rrweb_dali.dashboard import charts, config, data, frames, runs

LIVE_REFRESH_S = 2.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# How a folder that cannot be shown is reported in the sidebar (anything else: a warning).
NOTE_LEVEL = {"not_run": "info"}
VERDICT_LEVEL = {"input-bound": "error", "balanced": "warning", "compute-bound": "success"}


def sidebar(
    labelled: dict[str, data.RunInfo], notes: list, dirs: list[Path]
) -> tuple[list[str], str | None, str, bool]:
    sb = st.sidebar
    sb.header("Runs")
    sb.caption("from " + ", ".join(f"`{d.name}`" for d in dirs))
    address = st.get_option("server.address")
    if address not in LOOPBACK and address is not None:
        sb.warning(f"serving on {address}: reachable beyond this host")
    options = list(labelled)
    selected = sb.multiselect("runs to compare", options, default=options[:3], key="runs")
    baseline = (
        sb.selectbox("baseline for deltas", selected, index=0, key="baseline") if selected else None
    )
    metric = sb.radio(
        "throughput in",
        ["samples_per_s", "tokens_per_s"],
        key="metric",
        format_func=charts.THROUGHPUT_LABELS.get,
    )
    only_diff = sb.checkbox("config: only settings that differ", value=True, key="only_diff")
    for root, info in notes:
        where = f"{root.name}/" if len(dirs) > 1 else ""
        getattr(sb, NOTE_LEVEL.get(info.kind, "warning"))(f"`{where}{info.run_id}`: {info.message}")
    return selected, baseline, metric, only_diff


def verdict_panel(view: runs.RunView, status: str) -> None:
    """The run's verdict, why, and the advice table: the first thing the page says."""
    out = view.assessment()
    verdict = out["verdict"]
    text = (
        f"**{view.label}** ({status}): **{verdict or 'no verdict yet'}**: {out['verdict_reason']}"
    )
    getattr(st, VERDICT_LEVEL.get(verdict, "info"))(text)
    lines = [
        f"{i}. **`{a['option']}`**: {a['why']}. *Expected:* {a['expected']}."
        if a["option"]
        else f"{i}. **keep the loader**: {a['why']}. *Expected:* {a['expected']}."
        for i, a in enumerate(out["advice"], 1)
    ]
    if lines:
        st.markdown("\n".join(lines))


def kpi_cards(view: runs.RunView, values: dict, base: dict | None) -> None:
    st.markdown(f"**{view.label}** · {view.info.status}" + (" · baseline" if base is None else ""))
    for col, (key, title, higher_better) in zip(
        st.columns(len(runs.KPI_SPECS)), runs.KPI_SPECS, strict=True
    ):
        delta = None if base is None else runs.kpi_delta(key, values[key], base[key])
        col.metric(
            title,
            runs.format_kpi(key, values[key]),
            delta=delta,
            delta_color="normal" if higher_better else "inverse",
        )


def store_cards(view: runs.RunView) -> None:
    """The object store's cards under a run's KPIs; nothing for a run over local shards."""
    values = runs.store_kpis(view.samples)
    if values is None:
        return
    st.markdown(f"*object store* · `{view.label}` (whole run)")
    for col, (key, title, _) in zip(
        st.columns(len(runs.STORE_KPI_SPECS)), runs.STORE_KPI_SPECS, strict=True
    ):
        col.metric(title, runs.format_store_kpi(key, values))


def store_panel(views: dict[str, runs.RunView], frame: pd.DataFrame) -> None:
    """Downloads over time for the runs that read an object store; nothing when none does."""
    table = frames.store_table(frame)
    if table.empty:
        return
    st.subheader("Object store")
    st.altair_chart(charts.store_downloads(table))
    local = [label for label, v in views.items() if runs.store_kpis(v.samples) is None]
    if local:
        st.caption(
            "Not drawn: " + ", ".join(f"`{x}`" for x in local) + " (these runs read local shards)."
        )


def run_notes(view: runs.RunView, store: dict) -> None:
    """Findings about a selected run: no samples, lines skipped or half-written, a newer schema."""
    info = view.info
    if not view.has_samples:
        st.info(f"`{view.label}`: no samples yet ({info.status})")
    elif info.message:
        st.warning(f"`{view.label}`: {info.message}")
    for rank, path in info.sample_files.items():
        entry = store.get(str(path))
        if entry is None:
            continue
        if entry.bad_lines:
            st.warning(
                f"`{view.label}` rank {rank}: {entry.bad_lines} lines that are not JSON skipped"
            )
        if entry.partial and info.status != "running":
            st.warning(f"`{view.label}` rank {rank}: the last line is incomplete (not shown)")


def epochs_panel(views: dict[str, runs.RunView]) -> None:
    """Cold and warm epochs apart (raw mode's cache, an object store's shard cache), when a run
    has both kinds or either."""
    passes = {label: v.epochs() for label, v in views.items()}
    table = frames.epochs_table(passes)
    if table.empty or not (table["kind"] != "").any():
        return
    st.subheader("Cold and warm epochs")
    rows = []
    for label, eps in passes.items():
        for kind, agg in runs.cold_warm(eps).items():
            rows.append({"run": label, "kind": kind, **agg})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="epoch_kinds")


def where_time_goes(views: dict[str, runs.RunView], frame: pd.DataFrame) -> None:
    st.subheader("Where the time goes")
    steady = {label: v.assessment()["steady"] for label, v in views.items()}
    table, unmeasured = frames.parts_table(steady)
    if table.empty:
        st.info("No run has a steady state to break down yet.")
    else:
        st.altair_chart(charts.parts(table))
    for label, missing in unmeasured.items():
        if missing:
            st.caption(f"`{label}`: not measured in this mode (not drawn): " + ", ".join(missing))
    split = frames.time_split(frame)
    if not split.empty:
        st.altair_chart(charts.time_split(split))


def render(
    dirs: list[Path], selected: list[str], baseline: str | None, metric: str, only_diff: bool
) -> None:
    """Everything that depends on the run files; re-run alone every few seconds while live."""
    labelled, _ = runs.discover(dirs)
    store = st.session_state.setdefault("sample_store", {})
    views = runs.read_views(store, labelled, selected)
    for view in views.values():
        run_notes(view, store)
    live = any(v.info.status == "running" for v in views.values())
    if st.session_state.get("live") and not live:
        st.session_state["live"] = False
        st.rerun()  # the runs ended: redraw the page without the timer
    views = {label: v for label, v in views.items() if v.has_samples}
    if not views:
        st.info("No samples to show yet: pick runs with samples in the sidebar.")
        return

    st.subheader("Verdict")
    for view in views.values():
        verdict_panel(view, view.info.status)

    st.subheader("Key figures (steady state; the warm-up on its own)")
    values = {label: runs.kpis(v.samples) for label, v in views.items()}
    base = values.get(baseline) if baseline in views else None
    for label, view in views.items():
        kpi_cards(view, values[label], None if label == baseline else base)
        store_cards(view)
    epochs_panel(views)

    frame = frames.frames_concat(
        [frames.samples_frame(label, v.world_size, v.samples) for label, v in views.items()]
    )
    domain = sorted(frame["series"].unique().tolist())
    where_time_goes(views, frame)

    st.subheader("Throughput")
    marks = frames.warmup_marks(
        {label: v.samples for label, v in views.items()},
        {label: v.world_size for label, v in views.items()},
    )
    st.altair_chart(charts.throughput(frame, marks, metric), width="stretch")

    left, right = st.columns(2)
    with left:
        st.subheader("Memory")
        mem = frames.memory_table(frame)
        if mem.empty:
            st.info("No memory readings in these runs.")
        else:
            st.altair_chart(charts.memory(mem, domain), width="stretch")
    with right:
        st.subheader("Padding efficiency")
        st.altair_chart(charts.padding(frame), width="stretch")

    st.subheader("Cache")
    if frame["cache_hit_rate"].notna().any() or frame["cache_evictions_delta"].notna().any():
        st.altair_chart(charts.cache(frame), width="stretch")
        if frame["store_download_mib"].notna().any():
            st.caption(
                "Over an object store: the node's shard cache, counted per shard an epoch first "
                "reads (a miss waited for its download); raw mode: the token cache, per file."
            )
    else:
        st.caption("None of these runs has a token cache.")
    store_panel(views, frame)

    st.subheader("Configuration")
    diff = config.config_diff({k: v.info.meta for k, v in views.items()}, only_different=only_diff)
    if diff.empty:
        st.caption("The selected runs have the same settings.")
    else:
        st.dataframe(diff, width="stretch")

    st.subheader("Raw data")
    st.download_button(
        "samples (CSV)", frames.csv_bytes(frame), "samples.csv", "text/csv", key="dl_csv"
    )
    runs_json = {k: {"meta": v.info.meta, "summaries": v.info.summaries} for k, v in views.items()}
    st.download_button(
        "meta and summaries (JSON)",
        json.dumps(runs_json, indent=2, default=str),
        "runs.json",
        "application/json",
        key="dl_json",
    )


def main() -> None:
    st.set_page_config(page_title="rrweb-dali runs", layout="wide")
    st.title("rrweb-dali loader runs")
    dirs = data.runs_dirs_from(sys.argv[1:], dict(os.environ))
    if not dirs:
        st.info(
            "Start with `rrweb-dali dashboard RUNS` (or `streamlit run dashboard/app.py -- --runs "
            "RUNS`, or set RRWEB_DALI_RUNS)."
        )
        return
    missing = [d for d in dirs if not d.is_dir()]
    for d in missing:
        st.warning(f"`{d}` is not a directory.")
    dirs = [d for d in dirs if d.is_dir()]
    if not dirs:
        return
    labelled, notes = runs.discover(dirs)
    if not labelled and not notes:
        where = " ".join(str(d) for d in dirs)
        st.info(
            f"`{where}` holds no runs yet. Write one with `rrweb-dali profile SHARDS --out DIR`."
        )
        return
    selected, baseline, metric, only_diff = sidebar(labelled, notes, dirs)
    if not selected:
        st.info("Pick runs in the sidebar.")
        return
    live = any(labelled[r].status == "running" for r in selected if r in labelled)
    st.session_state["live"] = live
    view = st.fragment(render, run_every=LIVE_REFRESH_S if live else None)
    view(dirs, selected, baseline, metric, only_diff)


main()
