"""A shareable report: one self-contained HTML file of runs (verdicts, advice, key figures, an
object store's downloads, the dashboard's charts, the configuration diff) that opens with no
server and no network.

The charts are the dashboard's own Altair charts (:mod:`.charts`) rendered to static SVG by
``vl-convert`` (Vega's renderer, bundled in its wheel: nothing is fetched), and inlined; the page
has no script at all, so any browser shows it, offline, and a mail filter has nothing to strip.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
from rrweb_dali.dashboard import charts, config, frames, runs
from rrweb_dali.dashboard.data import SampleFile

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.7rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.verdict { padding: .7rem 1rem; border-radius: .4rem; margin: .8rem 0 .3rem; }
.input-bound { background: #fde8e8; } .balanced { background: #fdf6dd; }
.compute-bound { background: #e5f5e8; } .none { background: #eef; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
td, th { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
"""


def _esc(x) -> str:
    return html.escape("" if x is None else str(x))


def _svg(chart) -> str:
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_dict())


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    return frame.to_html(index=index, border=0, escape=True, na_rep="n/a")


def verdict_html(view: runs.RunView) -> str:
    out = view.assessment()
    verdict = out["verdict"] or "none"
    items = "".join(
        f"<li><b><code>{_esc(a['option'] or 'keep the loader')}</code></b>: {_esc(a['why'])}. "
        f"<i>Expected:</i> {_esc(a['expected'])}.</li>"
        for a in out["advice"]
    )
    return (
        f'<div class="verdict {verdict}"><b>{_esc(view.label)}</b> ({_esc(view.info.status)}): '
        f"<b>{_esc(out['verdict'] or 'no verdict')}</b>: {_esc(out['verdict_reason'])}</div>"
        + (f"<ol>{items}</ol>" if items else "")
    )


def build(dirs: list[Path], title: str = "rrweb-dali loader runs") -> tuple[str, int]:
    """The report's HTML for every readable run with samples in ``dirs``, and how many runs."""
    labelled, _ = runs.discover(dirs)
    store: dict[str, SampleFile] = {}
    views = {k: v for k, v in runs.read_views(store, labelled, list(labelled)).items()}
    views = {k: v for k, v in views.items() if v.has_samples}
    parts = [f"<h1>{_esc(title)}</h1>"]
    parts.append("<p>From " + ", ".join(f"<code>{_esc(d.name)}</code>" for d in dirs) + ".</p>")
    if not views:
        parts.append("<p>No run with samples.</p>")
        return _page(title, parts), 0
    parts.append("<h2>Verdict</h2>")
    parts.extend(verdict_html(v) for v in views.values())

    parts.append("<h2>Key figures (steady state; the warm-up on its own)</h2>")
    rows = []
    for label, view in views.items():
        values = runs.kpis(view.samples)
        rows.append(
            {"run": label, **{t: runs.format_kpi(k, values[k]) for k, t, _ in runs.KPI_SPECS}}
        )
    parts.append(_table(pd.DataFrame(rows)))
    stores = [(label, runs.store_kpis(v.samples)) for label, v in views.items()]
    stores = [(label, values) for label, values in stores if values is not None]
    if stores:
        rows = [
            {
                "run": label,
                **{t: runs.format_store_kpi(k, values) for k, t, _ in runs.STORE_KPI_SPECS},
            }
            for label, values in stores
        ]
        parts.append("<h3>Object store (whole run)</h3>" + _table(pd.DataFrame(rows)))
    kinds = [
        {"run": label, "kind": kind, **agg}
        for label, v in views.items()
        for kind, agg in runs.cold_warm(v.epochs()).items()
    ]
    if any(k["kind"] in ("cold", "warm") for k in kinds):
        parts.append("<h3>Cold and warm epochs</h3>" + _table(pd.DataFrame(kinds)))

    frame = frames.frames_concat(
        [frames.samples_frame(label, v.world_size, v.samples) for label, v in views.items()]
    )
    steady = {label: v.assessment()["steady"] for label, v in views.items()}
    table, unmeasured = frames.parts_table(steady)
    figures = []
    if not table.empty:
        figures.append(charts.parts(table))
    split = frames.time_split(frame)
    if not split.empty:
        figures.append(charts.time_split(split))
    marks = frames.warmup_marks(
        {k: v.samples for k, v in views.items()}, {k: v.world_size for k, v in views.items()}
    )
    figures.append(charts.throughput(frame, marks).properties(width=900))
    mem = frames.memory_table(frame)
    domain = sorted(frame["series"].unique().tolist())
    if not mem.empty:
        figures.append(charts.memory(mem, domain).properties(width=900))
    figures.append(charts.padding(frame).properties(width=900))
    if frame["cache_hit_rate"].notna().any():
        figures.append(charts.cache(frame).properties(width=900))
    downloads = frames.store_table(frame)
    if not downloads.empty:
        figures.append(charts.store_downloads(downloads))
    parts.append("<h2>Charts</h2>")
    parts.extend(f"<figure>{_svg(c)}</figure>" for c in figures)
    notes = [
        f"<li><code>{_esc(k)}</code>: {_esc(', '.join(m))}</li>" for k, m in unmeasured.items() if m
    ]
    if notes:
        parts.append("<p>Not measured in the run's mode (not drawn):</p><ul>" + "".join(notes))
        parts.append("</ul>")

    parts.append("<h2>Configuration (settings that differ)</h2>")
    diff = config.config_diff({k: v.info.meta for k, v in views.items()})
    parts.append(
        _table(diff, index=True) if not diff.empty else "<p>The runs have the same settings.</p>"
    )
    return _page(title, parts), len(views)


def _page(title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
