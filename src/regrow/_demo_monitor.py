"""The demo's monitor step beyond drift: estimates, multivariate drift, alerts, HTML report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regrow.monitoring import MonitorResult
    from regrow.workspace import Workspace

__all__ = ["monitor_summary"]


def monitor_summary(ws: Workspace, monitored: MonitorResult) -> dict[str, Any]:
    """What the monitor saw beyond drift, in a few lines, and its HTML report in the workspace."""
    from regrow.monitor.report_html import write_html

    report = monitored.to_dict()
    lines = []
    for m in report["multivariate"]:
        if m["chunk"] is None:
            lines.append(
                f"multivariate drift ({m['method']}): {m['value']:.3f}, threshold "
                f"{m['threshold']:.3f}: {'drifted' if m['drifted'] else 'no drift'}"
            )
    estimates = report["estimates"] or {}
    for row in estimates.get("rows", []):
        if row["chunk"] is None and row["metric"] in ("roc_auc", "accuracy"):
            realised = f", realised {row['realised']:.3f}" if row["realised"] is not None else ""
            lines.append(
                f"{row['metric']} estimated without labels ({estimates['method']}): "
                f"{row['value']:.3f} [{row['low']:.3f}, {row['high']:.3f}]{realised} "
                f"(reference {row['reference']:.3f})"
            )
    calibration = report.get("calibration") or {}
    if calibration.get("calibration_drift"):
        first = next(iter(calibration.get("warnings") or []), "")
        lines.append(
            f"the labels disagree with the estimates ({first}): how geography drives churn "
            "changed too, which no estimate without labels can see"
        )
    chunks = report["chunking"]["chunks"]
    alerts = report["alerts"]
    path = None
    if monitored.record is not None:
        path = write_html(
            {**report, "generated_at": str(monitored.record.created_at)},
            ws.home / "reports" / f"monitor-{monitored.record.id[:12]}.html",
        )
        lines.append(f"{len(chunks)} chunks, {len(alerts)} alerts; HTML report: {path}")
    return {
        "lines": lines,
        "chunks": len(chunks),
        "alerts": len(alerts),
        "multivariate_drifted": report["summary"]["multivariate_drifted"],
        "report": str(path) if path else None,
    }
