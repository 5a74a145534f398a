"""rrweb-dali runs dashboard: ``rrweb-dali dashboard RUNS`` runs this page under Streamlit.

Compares the run folders that ``rrweb-dali profile``, the bench scripts and the training hook
write (see ``rrweb_dali.profiling.runfiles``). The page layout lives here; reading and parsing is in
``data.py`` and the charts in ``charts.py``. The runs directory comes from ``--runs`` or the
``RRWEB_DALI_RUNS`` environment variable; nothing outside it is read.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import streamlit as st
from rrweb_dali.dashboard import charts, data

LIVE_REFRESH_S = 2.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# How a folder that cannot be shown is reported in the sidebar (anything else: a warning).
NOTE_LEVEL = {"not_run": "info"}


def sidebar(infos: list[data.RunInfo], runs_dir: Path) -> tuple[list[str], str | None, str, bool]:
    sb = st.sidebar
    sb.header("Runs")
    sb.caption(f"from `{runs_dir}`")
    address = st.get_option("server.address")
    if address not in LOOPBACK and address is not None:
        sb.warning(f"serving on {address}: reachable beyond this host")
    ok = [r.run_id for r in infos if r.ok]
    selected = sb.multiselect("runs to compare", ok, default=ok[:3], key="runs")
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
    for info in infos:
        if not info.ok:
            getattr(sb, NOTE_LEVEL.get(info.kind, "warning"))(f"`{info.run_id}`: {info.message}")
    return selected, baseline, metric, only_diff


def kpi_cards(label: str, info: data.RunInfo, values: dict, base: dict | None) -> None:
    st.markdown(f"**{label}** · {info.status}" + (" · baseline" if base is None else ""))
    for col, (key, title, _unit, higher_better) in zip(
        st.columns(len(data.KPI_SPECS)), data.KPI_SPECS, strict=True
    ):
        delta = None if base is None else data.kpi_delta(key, values[key], base[key])
        col.metric(
            title,
            data.format_kpi(key, values[key]),
            delta=delta,
            delta_color="normal" if higher_better else "inverse",
        )


def run_notes(info: data.RunInfo, store: dict, records: int) -> None:
    """Findings about a selected run: no samples, lines skipped or half-written, a newer schema."""
    if not records:
        st.info(f"`{info.run_id}`: no samples yet ({info.status})")
    elif info.message:
        st.warning(f"`{info.run_id}`: {info.message}")
    for rank, path in info.sample_files.items():
        entry = store.get(str(path))
        if entry is None:
            continue
        if entry.bad_lines:
            st.warning(
                f"`{info.run_id}` rank {rank}: {entry.bad_lines} lines that are not JSON skipped"
            )
        if entry.partial and info.status != "running":
            st.warning(f"`{info.run_id}` rank {rank}: the last line is incomplete (not shown)")


def render(
    runs_dir: Path, selected: list[str], baseline: str | None, metric: str, only_diff: bool
) -> None:
    """Everything that depends on the run files; re-run alone every few seconds while live."""
    root = runs_dir.resolve()
    infos = {rid: data.inspect_run(root, root / rid) for rid in selected}
    infos = {rid: i for rid, i in infos.items() if i.ok}
    store = st.session_state.setdefault("sample_store", {})
    samples = {rid: data.run_samples(store, info) for rid, info in infos.items()}
    for rid, info in infos.items():
        run_notes(info, store, sum(len(r) for r in samples[rid].values()))
    with_data = {rid: s for rid, s in samples.items() if any(s.values())}
    if not with_data:
        st.info("No samples to show yet: pick runs with samples in the sidebar.")
        return

    st.subheader("Key figures")
    values = {rid: data.kpis(s) for rid, s in with_data.items()}
    base = values.get(baseline) if baseline in with_data else None
    for rid in with_data:
        kpi_cards(rid, infos[rid], values[rid], None if rid == baseline else base)

    frame = data.frames_concat([data.samples_frame(infos[rid], s) for rid, s in with_data.items()])
    domain = sorted(frame["series"].unique().tolist())
    st.subheader("Throughput")
    st.altair_chart(
        charts.throughput(frame, data.warmup_marks(with_data, infos), metric), width="stretch"
    )

    st.subheader("Per-stage time")
    table, unmeasured = data.stage_table(with_data)
    if table.empty:
        st.info("No run reports per-stage times.")
    else:
        st.altair_chart(charts.stages(table), width="stretch")
    if unmeasured:
        st.caption(
            "Not separately measurable (null in the samples, not estimated): "
            + ", ".join(unmeasured)
        )

    left, right = st.columns(2)
    with left:
        st.subheader("Memory")
        mem = data.memory_table(frame)
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
    else:
        st.caption("None of these runs has a token cache.")

    st.subheader("Configuration")
    diff = data.config_diff({rid: infos[rid].meta for rid in with_data}, only_different=only_diff)
    if diff.empty:
        st.caption("The selected runs have the same settings.")
    else:
        st.dataframe(diff, width="stretch")

    st.subheader("Raw data")
    st.download_button(
        "samples (CSV)", data.csv_bytes(frame), "samples.csv", "text/csv", key="dl_csv"
    )
    runs_json = {
        rid: {"meta": infos[rid].meta, "summaries": infos[rid].summaries} for rid in with_data
    }
    st.download_button(
        "meta and summaries (JSON)",
        json.dumps(runs_json, indent=2, default=str),
        "runs.json",
        "application/json",
        key="dl_json",
    )

    live = any(i.status == "running" for i in infos.values())
    if st.session_state.get("live") and not live:
        st.session_state["live"] = False
        st.rerun()  # the runs ended: redraw the page without the timer


def main() -> None:
    st.set_page_config(page_title="rrweb-dali runs", layout="wide")
    st.title("rrweb-dali loader runs")
    runs_dir = data.runs_dir_from(sys.argv[1:], dict(os.environ))
    if runs_dir is None:
        st.info(
            "Start with `streamlit run dashboard/app.py -- --runs RUNS` (or set RRWEB_DALI_RUNS)."
        )
        return
    if not runs_dir.is_dir():
        st.warning(f"`{runs_dir}` is not a directory.")
        return
    infos = data.list_runs(runs_dir)
    if not infos:
        st.info(
            f"`{runs_dir}` holds no runs yet. Write one with `rrweb-dali profile SHARDS --out {runs_dir}`."
        )
        return
    selected, baseline, metric, only_diff = sidebar(infos, runs_dir)
    if not selected:
        st.info("Pick runs in the sidebar.")
        return
    by_id = {i.run_id: i for i in infos}
    live = any(by_id[r].status == "running" for r in selected if r in by_id)
    st.session_state["live"] = live
    view = st.fragment(render, run_every=LIVE_REFRESH_S if live else None)
    view(runs_dir, selected, baseline, metric, only_diff)


main()
