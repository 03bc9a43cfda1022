"""What the monitoring drill-down and the feature pages show, from the stored monitor reports.

A report is what ``regrow monitor`` stored (``regrow monitor list|show`` read the same
records): drift per feature, slice and chunk with each effect's interval, the reference and
window distributions, estimated and realised performance with their bands, and the
attribution of the drift to components. Across a system's reports, oldest first, each
feature's whole-window effect (per test and slice) becomes a series over time; a report split
into chunks also has the effect per chunk.

>>> series_key({"column": "age", "test": "ks", "slice": None})
('age', 'ks', '')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from regrow._hashing import jsonable
from regrow.errors import NotFound
from regrow.ui.systems import unknown_system

if TYPE_CHECKING:
    from regrow.catalog.records import MonitorReportRecord
    from regrow.workspace import Workspace

__all__ = [
    "chunk_rows",
    "effect_series",
    "feature",
    "monitoring",
    "over_time",
    "reports_of",
    "series_key",
]

#: Stored reports read for the series over time (the newest ones).
MAX_REPORTS = 50


def reports_of(ws: Workspace, system: str) -> list[MonitorReportRecord]:
    """The stored monitor reports of ``system``'s versions, newest first."""
    versions = {v.id for v in ws.catalog.list_system_versions(system)}
    if not versions:
        raise unknown_system(ws, system)
    return [r for r in ws.catalog.list_monitor_reports(limit=MAX_REPORTS * 4)
            if r.version_id in versions][:MAX_REPORTS]  # fmt: skip


def _chosen(records: Sequence[MonitorReportRecord], report: str | None) -> MonitorReportRecord:
    if report is None:
        return records[0]
    found = [r for r in records if r.id.startswith(report)] if len(report) >= 6 else []
    if len(found) != 1:
        raise NotFound(
            "monitor report",
            report,
            hint="pick one of the reports listed on the monitoring page",
        )
    return found[0]


def series_key(feature: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(column, test, slice)`` of a feature's drift row; the whole data is slice ``''``."""
    return str(feature.get("column")), str(feature.get("test")), str(feature.get("slice") or "")


def effect_series(
    records: Sequence[MonitorReportRecord], column: str
) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Each ``(column, test, slice)`` of ``column``: its whole-window effect with interval in
    each report, oldest report first (the tests a report runs per chunk can differ from the
    whole window's, so chunks are :func:`chunk_rows`, per report)."""
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in reversed(records):
        for f in _whole(record.report):
            if str(f.get("column")) != column:
                continue
            low, high = [*(f.get("effect_interval") or ()), None, None][:2]
            series.setdefault(series_key(f), []).append(
                {"label": f"{record.created_at:%m-%d %H:%M:%S}", "report": record.id,
                 "value": f.get("effect"), "low": low, "high": high,
                 "drifted": bool(f.get("drifted")), "margin": f.get("margin")}
            )  # fmt: skip
    return series


def chunk_rows(report: Mapping[str, Any], column: str) -> list[dict[str, Any]]:
    """``column``'s drift in each chunk of one report (none when it was not split)."""
    return [
        {"chunk": d.get("chunk"), "test": f.get("test"), "slice": f.get("slice"),
         "effect": f.get("effect"), "interval": f.get("effect_interval"),
         "drifted": bool(f.get("drifted")), "why": f.get("why")}
        for d in report.get("chunk_drift") or () if d.get("chunk") is not None
        for f in d.get("features") or () if str(f.get("column")) == column
    ]  # fmt: skip


def _whole(rep: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The whole-window drift rows of a report (every slice)."""
    return [f for d in rep.get("drift") or () if d.get("chunk") is None
            for f in d.get("features") or ()]  # fmt: skip


def _features(rep: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = _whole(rep)
    out = [
        {"column": f.get("column"), "test": f.get("test"), "slice": f.get("slice"),
         "effect": f.get("effect"), "interval": f.get("effect_interval"),
         "margin": f.get("margin"), "p_value": f.get("p_value"),
         "adjusted_p_value": f.get("adjusted_p_value"), "drifted": bool(f.get("drifted")),
         "why": f.get("why")}
        for f in rows
    ]  # fmt: skip
    return sorted(out, key=lambda f: (not f["drifted"], f["slice"] is not None, str(f["column"])))


def over_time(ws: Workspace, system: str, metric: str | None = None) -> dict[str, Any] | None:
    """``system``'s metric over its monitored windows (:func:`regrow.forecast.series_from_catalog`:
    realised where labels came, estimated with a band where not) and, with a threshold (the
    policy's ``watch.sla``, else its ``monitoring.alerts`` rule), the forecast of crossing it
    within ``watch.horizon`` windows. The metric is the SLA's, else ``metric``, else the first
    one the newest report with estimates has; None when no report holds one."""
    from regrow.errors import ConfigError
    from regrow.forecast import forecast, metric_bounds, series_from_catalog

    policy = ws.policy()
    sla = policy.watch.sla
    chosen = next(iter(sla), None) or metric
    if chosen is None:  # the first metric the newest report with estimates has
        rows = (
            row
            for record in reports_of(ws, system)
            for row in (record.report.get("estimates") or {}).get("rows") or ()
        )
        chosen = next((str(r["metric"]) for r in rows if r.get("metric")), None)
    if chosen is None:
        return None
    try:
        points = series_from_catalog(ws.catalog, system, chosen)
    except (ConfigError, NotFound):  # no report holds the metric
        return None
    rule = sla.get(chosen) or policy.monitoring.alerts.get(chosen)
    threshold = None if rule is None else rule.threshold
    found = None
    if rule is not None:
        found = forecast(
            points,
            threshold=rule.threshold,
            direction=rule.breach,
            horizon=policy.watch.horizon,
            bounds=metric_bounds(chosen),
        ).to_dict()
    return jsonable(  # type: ignore[no-any-return]
        {
            "metric": chosen,
            "threshold": threshold,
            "rule": "sla" if chosen in sla else "alert" if rule is not None else None,
            "series": [p.to_dict() for p in points],
            "forecast": found,
        }
    )


def monitoring(ws: Workspace, system: str, report: str | None = None) -> dict[str, Any]:
    """The drill-down of ``system``: its stored reports, and for ``report`` (default the
    newest) every feature's drift per slice, the drifted columns' effect over time, estimated
    vs realised performance per chunk, and the attribution to components."""
    records = reports_of(ws, system)
    if not records:
        return {"system": system, "reports": [], "report": None}
    chosen = _chosen(records, report)
    refs = {v.id: v.ref for v in ws.catalog.list_system_versions(system)}
    rep = chosen.report
    features = _features(rep)
    drifted = list(dict.fromkeys(str(f["column"]) for f in features if f["drifted"]))
    estimates = rep.get("estimates") or {}
    ever = {
        (str(f.get("column")), str(f.get("test"))): None
        for r in records for f in _whole(r.report)
        if f.get("drifted") and f.get("slice") is None
    }  # fmt: skip
    chunks = [str(c.get("label")) for c in (rep.get("chunking") or {}).get("chunks") or ()]
    return jsonable(  # type: ignore[no-any-return]
        {
            "system": system,
            "reports": [
                {
                    "id": r.id,
                    "version": refs.get(r.version_id),
                    "created_at": r.created_at,
                    "window": r.snapshot_id,
                    "rows": r.summary.get("rows"),
                    "drifted": list(r.summary.get("drifted") or []),
                    "alerts": r.summary.get("alerts"),
                    "candidates": list(r.summary.get("candidates") or []),
                }
                for r in records
            ],
            "report": {
                "id": chosen.id,
                "version": refs.get(chosen.version_id),
                "created_at": chosen.created_at,
                "summary": chosen.summary,
                "chunks": chunks,
                "drifted": drifted,
                "drifted_ever": [{"column": c, "test": t} for c, t in ever],
                "slices": sorted({str(f["slice"]) for f in features if f["slice"] is not None}),
                "features": features,
                "columns": sorted({str(f["column"]) for f in features}),
                "metrics": list(
                    dict.fromkeys(str(r.get("metric")) for r in estimates.get("rows") or ())
                ),
                "estimates": estimates,
                "performance": rep.get("performance") or {},
                "impacts": rep.get("impacts") or [],
                "alerts": rep.get("alerts") or [],
            },
            "over_time": over_time(ws, system),
        }
    )


def feature(ws: Workspace, system: str, column: str, report: str | None = None) -> dict[str, Any]:
    """One feature of ``system``: its drift per test and slice in ``report`` (default the
    newest), its reference and window distributions there, and its effect over time."""
    records = reports_of(ws, system)
    if not records:
        raise NotFound(
            "monitor report of system",
            system,
            hint="none yet: regrow monitor --version V --window W stores one",
        )
    chosen = _chosen(records, report)
    rows = [f for f in _features(chosen.report) if str(f["column"]) == column]
    if not rows:
        known = sorted({str(f["column"]) for f in _features(chosen.report)})
        raise NotFound(
            f"feature of monitor report {chosen.id[:12]}",
            column,
            hint=f"the report's features are {known}",
        )
    series = effect_series(records, column)
    return jsonable(  # type: ignore[no-any-return]
        {
            "system": system,
            "column": column,
            "report": chosen.id,
            "newest": records[0].id,
            "created_at": chosen.created_at,
            "rows": rows,
            "drifted": any(r["drifted"] for r in rows),
            "distribution": (chosen.report.get("distributions") or {}).get(column),
            "chunks": chunk_rows(chosen.report, column),
            "series": [
                {"test": test, "slice": cut or None, "points": points}
                for (_, test, cut), points in series.items()
            ],
        }
    )
