"""The configuration diff: every setting a run recorded in ``meta.json``, runs side by side.

Lists are spread by position (``dataset.0.sessions``), so two runs that read different data, or
the same data with different cache options, differ in a row that names what differs.
"""

from __future__ import annotations

import json

import pandas as pd

# meta.json keys that differ between any two runs and say nothing about the configuration.
VOLATILE_META = {"run_id", "started_at", "status", "name"}


def flatten(obj, prefix: str = "") -> dict[str, str]:
    """Nested dicts and lists to ``a.b.0.c`` keys; scalars as compact text (an empty list or
    dict as ``[]``/``{}``, so it still shows)."""
    out: dict[str, str] = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, list) and obj and any(isinstance(v, (dict, list)) for v in obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}."))
        return out
    out[prefix[:-1]] = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, default=str)
    return out


def config_diff(metas: dict[str, dict], only_different: bool = True) -> pd.DataFrame:
    """Meta keys as rows, runs as columns; with ``only_different`` the rows where runs differ."""
    flat = {
        label: {k: v for k, v in flatten(m).items() if k.split(".")[0] not in VOLATILE_META}
        for label, m in metas.items()
    }
    keys = sorted(set().union(*flat.values())) if flat else []
    table = pd.DataFrame(
        {label: [f.get(k, "") for k in keys] for label, f in flat.items()}, index=keys
    )
    table.index.name = "setting"
    if only_different and len(flat) > 1:
        table = table[table.nunique(axis=1) > 1]
    return table
