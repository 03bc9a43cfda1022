"""Monitoring reports: recorded, listed, audited, refused for unknown versions."""

from __future__ import annotations

from typing import Any

import pytest

from regrow.catalog import Catalog
from regrow.errors import NotFound, VersionNotFound


def test_record_and_list_monitor_reports(catalog: Catalog, build: Any) -> None:
    version = build.version("churn")
    window = build.snapshot("window")
    first = catalog.add_monitor_report(
        version_id=version.id,
        snapshot_id=window.id,
        summary={"drifted": ["distance_km"], "candidates": ["geo"]},
        report={"features": [{"column": "distance_km", "drifted": True}]},
    )
    second = catalog.add_monitor_report(
        version_id=version.id, snapshot_id=window.id, summary={"drifted": []}, report={}
    )
    assert catalog.get_monitor_report(first.id) == first
    assert [r.id for r in catalog.list_monitor_reports(version.id)] == [second.id, first.id]
    assert catalog.list_monitor_reports(build.version("other").id) == []
    [event, *_] = catalog.audit_events(subject="version:churn:v1")
    assert event.action == "monitor.report"
    assert event.payload["summary"] == {"drifted": []}
    assert catalog.verify_audit() > 0


def test_a_report_needs_a_known_version_and_snapshot(catalog: Catalog, build: Any) -> None:
    window = build.snapshot("window")
    with pytest.raises(VersionNotFound):
        catalog.add_monitor_report(
            version_id="f" * 32, snapshot_id=window.id, summary={}, report={}
        )
    version = build.version("churn")
    with pytest.raises(NotFound, match="snapshot"):
        catalog.add_monitor_report(
            version_id=version.id, snapshot_id="e" * 64, summary={}, report={}
        )
    assert catalog.list_monitor_reports() == []
    with pytest.raises(NotFound, match="unknown monitoring report 'nope'"):
        catalog.get_monitor_report("nope")
